"""The review gate end to end: QA-approved work waits in review (not holding an agent slot);
a person rejects it with a note that reaches the factory's next prompt, then approves the next
round; it merges, and `hatchctl land` brings it into main."""

from __future__ import annotations

import json

from tests.conftest import git, hatchctl
from tests.integration.conftest import Projects, SupervisorProcess, hatchctl_here, wait_for


def _task(root: object, task_id: str) -> dict[str, object]:
    doc = json.loads(hatchctl("-C", str(root), "status", "--json").stdout)
    return next(t for t in doc["tasks"] if t["id"] == task_id)


def test_reject_with_a_note_then_approve_merge_and_land(projects: Projects) -> None:
    p = projects.make(
        {
            "A": {"review": "human", "sim": {"files": {"a.txt": "a\n"}}},
            "B": {"priority": 10, "sim": {"files": {"b.txt": "b\n"}}},  # no review: not held up
        },
        config={"limits": {"max_active": 1}},
    )
    root = p.root
    sup = SupervisorProcess(p)
    try:
        sup.wait_running()
        store = p.open_store()  # polled directly: a `hatchctl status` per poll costs CPU

        def task(task_id: str) -> dict[str, object]:
            t = store.task(task_id)  # None until the supervisor has read the specs
            return {"phase": t.phase, "state": t.state, "iteration": t.iteration} if t else {}

        def in_review() -> bool:
            return task("A").get("phase") == "review"

        wait_for(in_review, what="A waiting for review")
        out = hatchctl_here("-C", str(root), "review")  # (read-only: in this process)
        assert "A  Task A  (iteration 1)" in out.stdout and "a.txt" in out.stdout, out.stderr
        # B runs although max_active = 1: a task in review holds no agent slot
        wait_for(lambda: task("B").get("state") == "completed", what="B completed")

        out = hatchctl("-C", str(root), "reject", "A", "--note", "name the file alpha.txt")
        assert out.returncode == 0 and "iteration 2" in out.stdout, out.stderr + sup.output()
        wait_for(lambda: task("A").get("iteration") == 2 and in_review(), what="round 2")
        prompt = p.paths.prompt_file("A", "factory", 2, 1).read_text()
        assert "name the file alpha.txt" in prompt  # the note reached the factory

        out = hatchctl("-C", str(root), "approve", "A")
        assert out.returncode == 0 and "approved A" in out.stdout, out.stderr
        wait_for(lambda: task("A").get("state") == "completed", what="A merged")
        out = hatchctl("-C", str(root), "approve", "A")
        assert out.returncode != 0 and "not waiting for review" in out.stderr
        kinds = [e.kind for e in store.events("A")]
        store.close()
        assert kinds.count("review_waiting") == 2 and "review_rejected" in kinds
        assert "review_approved" in kinds
    finally:
        hatchctl("-C", str(root), "down")
        sup.wait(timeout=30)
        sup.kill()
    out = hatchctl("-C", str(root), "land")
    assert out.returncode == 0, out.stderr
    assert "tasks: A, B" in out.stdout
    assert (root / "a.txt").exists() and git(root, "status", "--porcelain", "-uno") == ""
