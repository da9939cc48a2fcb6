"""`hatchctl down` with a task mid-run leaves no mount behind (the project can be deleted);
the next supervisor mounts the task's read-only view again and the task completes."""

from __future__ import annotations

from hatchctl.engine.jobs import VIEW
from hatchctl.runtime.scripts import mounts_under
from tests.conftest import hatchctl
from tests.integration.conftest import Projects, SupervisorProcess, drain, kinds, wait_for


def test_down_releases_the_views_and_the_next_supervisor_mounts_them_again(
    projects: Projects,
) -> None:
    p = projects.make(
        {"A": {"sim": {"factory": ["chat"], "files": {"a.txt": "a\n"}}}},
        config={"limits": {"idle_timeout": "60s", "stall_after": "60s"}},
    )
    view = p.paths.worktree("A") / VIEW
    sup = SupervisorProcess(p)
    try:
        sup.wait_running()
        store = p.open_store()
        wait_for(lambda: any(r.state == "running" for r in store.runs("A")), what="A running")
        store.close()
        assert view.is_dir()
        out = hatchctl("-C", str(p.root), "down")
        assert out.returncode == 0, out.stderr
        assert sup.wait(timeout=30) is not None
    finally:
        sup.kill()
    assert mounts_under(p.root) == [] and not view.exists()  # nothing left mounted

    # the chat agent waits for a message; this time let it work (the spec's next attempt)
    spec = p.root / "specs" / "A.md"
    spec.write_text(spec.read_text().replace('"factory": ["chat"], ', ""))
    _, tasks, deps = drain(p)
    assert tasks["A"].state == "completed", tasks["A"].last_error
    assert "view_mounted" in kinds(deps, "A")
    assert mounts_under(p.root) == []
