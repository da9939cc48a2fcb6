"""A task created the way the control room's `n` writes it (hatchctl/tui/specedit.py) is
picked up by a running supervisor and runs to completion, even when it is written while the
supervisor starts (between its first read of the specs and its watcher's start)."""

from __future__ import annotations

from hatchctl.tui.specedit import check, new_spec_text, write_new
from tests.integration.conftest import Projects, SupervisorProcess, wait_for


def test_a_spec_written_like_n_does_is_picked_up_and_completes(projects: Projects) -> None:
    p = projects.make({"A": {"sim": {"files": {"a.txt": "a\n"}}}})
    sup = SupervisorProcess(p)
    try:
        sup.wait_running()
        store = p.open_store()
        text = new_spec_text("NEW-1", "Made in the control room", "A", "", "ui", body="Do it.\n")
        text = text.replace("---\nDo it.", "sim:\n  files:\n    n.txt: |\n      n\n---\nDo it.")
        checked = check(p.specs_dir, "specs", text, name="NEW-1.md", new=True)
        assert checked.problems == [], checked.problems
        path = write_new(p.specs_dir, "NEW-1", text)
        assert path.stat().st_mode & 0o777 == 0o600

        def done() -> bool:
            t = store.task("NEW-1")  # None until the watcher has told the supervisor
            return t is not None and t.state == "completed"

        wait_for(done, what="NEW-1 picked up and completed", timeout=30)
        task = store.task("NEW-1")
        assert task is not None and task.feature == "ui" and task.depends_on == ["A"]
        store.close()
    finally:
        sup.stop()  # (not `hatchctl down`: not what this test is about)
        sup.kill()
