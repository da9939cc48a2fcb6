"""`hatchctl hold|unhold|cancel ID` through a running supervisor: a held task is not started
(an active one finishes its agent's run, then waits); cancel takes a task out of the queue."""

from __future__ import annotations

import json

from tests.conftest import hatchctl
from tests.integration.conftest import Projects, SupervisorProcess, hatchctl_here, wait_for


def _status(root: object) -> dict[str, dict[str, object]]:
    """`hatchctl status --json`, read-only: run in this process (hatchctl_here)."""
    doc = json.loads(hatchctl_here("-C", str(root), "status", "--json").stdout)
    return {t["id"]: t for t in doc["tasks"]}


def test_hold_unhold_and_cancel(projects: Projects) -> None:
    p = projects.make(
        {
            "A": {"priority": 90, "sim": {"factory": ["chat"], "files": {"a.txt": "a\n"}}},
            "B": {"priority": 50, "sim": {"files": {"b.txt": "b\n"}}},
            "C": {"priority": 10, "depends_on": ["B"], "sim": {"files": {"c.txt": "c\n"}}},
        },
        config={"limits": {"max_active": 1, "idle_timeout": "60s", "stall_after": "60s"}},
    )
    root = p.root
    sup = SupervisorProcess(p)
    try:
        sup.wait_running()
        store = p.open_store()  # polled directly: a `hatchctl status` per poll costs CPU

        def state(task_id: str) -> str:
            task = store.task(task_id)
            return task.state if task else ""

        # the supervisor has its lock before it has read the specs: B is a task once it has
        wait_for(lambda: state("B") == "pending", what="B known")
        out = hatchctl("-C", str(root), "hold", "B")  # pending: never started while held
        assert out.returncode == 0 and "held B" in out.stdout, out.stderr

        wait_for(lambda: state("A") == "active" and store.runs("A"), what="A's run launched")
        # A runs and waits for a message: hold it, then let its run finish
        out = hatchctl("-C", str(root), "hold", "A")
        assert out.returncode == 0 and "finishes its run first" in out.stdout, out.stderr
        out = hatchctl("-C", str(root), "send", "A", "finish")
        assert out.returncode == 0, out.stderr
        store = p.open_store()
        wait_for(lambda: [r.state for r in store.runs("A")] == ["succeeded"], what="A's run done")
        a = store.task("A")
        assert a is not None and a.state == "active" and a.phase == "verify"  # and it waits
        assert [r.role for r in store.runs("A")] == ["factory"]  # no QA launched while held
        b = _status(root)["B"]
        assert b["state"] == "pending" and b["held"]
        assert "pending (held)" in hatchctl_here("-C", str(root), "status").stdout

        assert hatchctl("-C", str(root), "unhold", "A").returncode == 0
        wait_for(lambda: state("A") == "completed", what="A completed")
        out = hatchctl("-C", str(root), "cancel", "B")  # pending -> failed; C is blocked
        assert out.returncode == 0 and "cancelled B" in out.stdout, out.stderr
        wait_for(lambda: state("C") == "blocked", what="C blocked")
        b = _status(root)["B"]
        assert b["state"] == "failed" and "cancelled by user" in str(b["last_error"])
        assert not store.runs("B")  # never started
        out = hatchctl("-C", str(root), "hold", "A")
        assert out.returncode != 0 and "completed: nothing to hold" in out.stderr
        store.close()
    finally:
        sup.stop()  # (not `hatchctl down`: not what this test is about)
        sup.kill()
