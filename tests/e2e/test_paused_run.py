"""`run --until-drained` on a paused project says so and exits non-zero (it used to exit at once
as if drained); `--resume` resumes it first and the work gets done."""

from __future__ import annotations

from tests.forkrun import Hatchctl
from tests.integration.conftest import Projects
from tests.integration.conftest import projects as projects


def test_until_drained_on_a_paused_project_refuses_then_resumes(
    projects: Projects, hatchctl: Hatchctl
) -> None:
    p = projects.make({"A": {"sim": {"files": {"a.txt": "a\n"}}}})
    root = str(p.root)
    store = p.open_store()
    with store.tx() as tx:
        tx.set_meta("paused", "1")
        tx.set_meta("pause_reason", "3 infrastructure failures")
    store.close()
    out = hatchctl("-C", root, "run", "--until-drained", "--max-time", "30s")
    assert out.returncode != 0
    assert out.stderr.count("\n") == 1 and "paused (3 infrastructure failures)" in out.stderr
    ok = hatchctl("-C", root, "run", "--until-drained", "--resume", "--max-time", "30s")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "completed" in ok.stdout
