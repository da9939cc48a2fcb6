"""`hatchctl send ID TEXT`: a person's message reaches the running agent through the running
supervisor, with the delivery confirmed, and both are events."""

from __future__ import annotations

from tests.conftest import hatchctl
from tests.integration.conftest import Projects, SupervisorProcess, wait_for


def test_a_message_reaches_the_running_agent_and_is_confirmed(projects: Projects) -> None:
    p = projects.make({"A": {"sim": {"factory": ["chat"], "files": {"a.txt": "a\n"}}}})
    sup = SupervisorProcess(p)
    root = p.root
    try:
        sup.wait_running()
        store = p.open_store()

        def waiting() -> bool:
            runs = [r for r in store.runs("A") if r.state == "running"]
            log = (root / runs[0].log_path) if runs else None
            return bool(log and log.exists() and "waiting for instructions" in log.read_text())

        wait_for(waiting, what="the agent waiting for a message")
        out = hatchctl("-C", str(root), "send", "A", "please", "add a.txt; then finish")
        assert out.returncode == 0, out.stderr + sup.output()
        assert "sending 29 characters to A.factory" in out.stdout and "delivered" in out.stdout
        wait_for(lambda: (t := store.task("A")) and t.state == "completed", what="A completed")
        kinds = {e.kind: e for e in store.events("A")}
        assert kinds["message_sent"].data["text"] == "please add a.txt; then finish"
        assert kinds["delivered"].data["kind"] == "message"
        factory = next(r for r in store.runs("A") if r.role == "factory")
        assert "received: please add a.txt; then finish" in (root / factory.log_path).read_text()

        out = hatchctl("-C", str(root), "send", "A", "anyone there?")  # nothing runs now
        assert out.returncode != 0 and "not active" in out.stderr
        store.close()
    finally:
        sup.stop()  # (not `hatchctl down`: not what this test is about)
        sup.kill()
