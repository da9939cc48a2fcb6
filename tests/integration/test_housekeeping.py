"""`hatchctl clean` removes kept worktrees (unmounted first, links never followed) and
`hatchctl forget ID` removes a task whose spec is gone; with or without a running supervisor."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import git, hatchctl
from tests.integration.conftest import Projects, SupervisorProcess, drain, hatchctl_here, wait_for


def _fail_a_and_complete_b(projects: Projects) -> tuple[Path, Path]:
    p = projects.make(
        {
            "A": {"priority": 90, "sim": {"factory": ["crash"]}},
            "B": {"priority": 10, "sim": {"files": {"b.txt": "b\n"}}},
        },
        config={"limits": {"max_strikes": 1, "restart": {"max_restarts": 0}}},
    )
    _, tasks, deps = drain(p)
    deps.store.close()
    assert (tasks["A"].state, tasks["B"].state) == ("failed", "completed")
    return p.root, p.paths.worktree("A")


def test_clean_then_forget_without_a_supervisor(projects: Projects, tmp_path: Path) -> None:
    """Clean removes a failed task's worktree and only a planted link; then forget refuses
    while the spec exists, then removes the task. One drained project serves both (clean
    removes the worktree; forget needs the task's row and its spec gone, not the worktree)."""
    root, kept = _fail_a_and_complete_b(projects)
    assert kept.is_dir()  # a failed task's worktree is kept for inspection
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine\n")
    planted = kept.parent / "EVIL"
    planted.symlink_to(outside)  # a link at hatchctl's worktree path, pointing out

    out = hatchctl("-C", str(root), "clean")
    assert out.returncode == 0, out.stderr
    assert "removed 1 worktree(s): A" in out.stdout
    assert not kept.exists() and planted.is_symlink()  # --failed leaves what is not a task's
    assert str(kept) not in git(root, "worktree", "list")
    assert git(root, "rev-parse", "--verify", "hatch/A")  # the work is kept on the branch

    out = hatchctl("-C", str(root), "clean", "--all")
    assert out.returncode == 0, out.stderr
    assert not planted.exists() and not planted.is_symlink()
    assert (outside / "keep.txt").read_text() == "mine\n"  # the link was removed, not followed

    # forget
    out = hatchctl("-C", str(root), "forget", "A")
    assert out.returncode != 0 and "spec still exists" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr

    (root / "specs" / "A.md").unlink()
    out = hatchctl("-C", str(root), "forget", "A")
    assert out.returncode == 0, out.stderr
    assert "forgot A (failed); its branch is kept" in out.stdout
    # (read-only queries run in this process, tests.integration.conftest.hatchctl_here)
    status = json.loads(hatchctl_here("-C", str(root), "status", "--json").stdout)
    assert [t["id"] for t in status["tasks"]] == ["B"]
    events = hatchctl_here("-C", str(root), "events", "--task", "A", "--json").stdout
    assert '"task_forgotten"' in events  # the audit trail stays
    assert git(root, "rev-parse", "--verify", "hatch/A")
    out = hatchctl("-C", str(root), "forget", "A")
    assert out.returncode != 0 and "no task 'A'" in out.stderr


def test_forget_and_clean_go_through_a_running_supervisor(projects: Projects) -> None:
    root, kept = _fail_a_and_complete_b(projects)
    (root / "specs" / "A.md").unlink()
    from hatchctl.project import Project

    sup = SupervisorProcess(Project.find(root))
    try:
        sup.wait_running()
        out = hatchctl("-C", str(root), "clean")
        assert out.returncode == 0, out.stderr + sup.output()
        assert "removed 1 worktree(s): A" in out.stdout and not kept.exists()
        out = hatchctl("-C", str(root), "forget", "A")
        assert out.returncode == 0, out.stderr + sup.output()
        events = hatchctl_here("-C", str(root), "events", "--json").stdout
        done = [json.loads(x) for x in events.splitlines() if '"command_done"' in x]
        assert {e["data"]["command"] for e in done} >= {"clean", "forget"}  # applied by it
        wait_for(lambda: sup.proc.poll() is None, what="the supervisor still running")
    finally:
        sup.stop()  # (not `hatchctl down`: not what this test is about)
        sup.kill()
