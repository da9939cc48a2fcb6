"""A worktree deleted under a running task is recreated from the task's branch (its committed
work kept) instead of launching agents into a missing directory."""

from __future__ import annotations

import shutil
import threading
from typing import Any

from hatchctl.runtime.scripts import Scripts, builtin_root, unmount_all_under
from tests.conftest import git
from tests.integration.conftest import Projects, drain, kinds, wait_for

ADD = {"calc.py": "def add(a, b):\n    return a + b\n"}


def test_a_deleted_worktree_is_recreated_and_the_task_completes(projects: Projects) -> None:
    p = projects.make(
        {"W": {"files": list(ADD), "sim": {"files": ADD, "factory": ["slow"], "slow_seconds": 1}}}
    )
    result: list[Any] = []
    runner = threading.Thread(target=lambda: result.append(drain(p, time_limit=40)))
    runner.start()
    store = p.open_store()
    wt = p.paths.worktree("W")
    try:  # as soon as the factory runs, someone deletes its worktree
        wait_for(lambda: any(r.state == "running" for r in store.runs("W")), what="the factory")
        unmount_all_under(Scripts(builtin_root(), timeout=30), wt)
        shutil.rmtree(wt)
    finally:
        store.close()
        runner.join(timeout=60)
    code, tasks, deps = result[0]
    assert "worktree_recreated" in kinds(deps, "W")
    assert code == 0 and tasks["W"].state == "completed"
    assert "calc.py" in git(p.root, "ls-tree", "--name-only", "hatch/integration")
