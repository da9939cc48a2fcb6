"""A failed task keeps its worktree but not its read-only planning mount: nothing stays mounted
under the project once its agents are gone (a leftover mount made `rm -rf` fail)."""

from __future__ import annotations

import shutil

from hatchctl.runtime.scripts import mounts_under
from tests.integration.conftest import Projects, drain


def test_a_failed_task_keeps_its_worktree_and_leaves_no_mount(projects: Projects) -> None:
    p = projects.make({"F": {"sim": {"factory": ["false_claims"]}}}, {"limits": {"max_strikes": 1}})
    _, tasks, _ = drain(p)
    assert tasks["F"].state == "failed"
    assert p.paths.worktree("F").is_dir()  # kept for inspection
    assert mounts_under(p.root) == []
    shutil.rmtree(p.root)  # the whole project can be deleted
