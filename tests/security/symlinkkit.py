"""What tests/security/test_symlinks_*.py share: the canary directory every planted link leads to
(``outside``), the hostile agents' building blocks, and the checks of a task failed for an
unsafe path."""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hatchctl.cmds.common import build_deps
from hatchctl.engine.commands import Commands
from hatchctl.project import Project
from hatchctl.runtime.scripts import builtin_root, mounts_under
from hatchctl.state.sync import sync_specs
from tests.integration.conftest import hatchctl_here
from tests.integration.test_scripts import script

SCRIPTS = builtin_root()
VIEW = "project-state-readonly"
SETTINGS = ".claude/settings.local.json"
CANARY = "canary: must survive\n"
# Modes that both `chmod -R a-w` (the copy) and `chmod -R u+w` (its removal) would change.
DIR_MODE, FILE_MODE = 0o570, 0o460


@dataclass(frozen=True)
class Outside:
    """A directory outside every project, with a canary file: the target of every link."""

    dir: Path

    @property
    def canary(self) -> Path:
        return self.dir / "canary.txt"

    def assert_untouched(self) -> None:
        assert sorted(os.listdir(self.dir)) == ["canary.txt"]
        assert self.canary.read_text() == CANARY
        assert self.canary.stat().st_mode & 0o7777 == FILE_MODE
        assert self.dir.stat().st_mode & 0o7777 == DIR_MODE
        assert mounts_under(self.dir) == []


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Outside]:
    out = Outside(tmp_path / "outside")
    out.dir.mkdir()
    out.canary.write_text(CANARY)
    out.canary.chmod(FILE_MODE)
    out.dir.chmod(DIR_MODE)
    out.assert_untouched()
    yield out
    out.dir.chmod(0o700)  # so that pytest can remove it


def new_worktree(repo: Path, task: str = "T") -> Path:
    wt = repo / ".hatch" / "worktrees" / task
    out = script("git/create_worktree.sh", str(repo), str(wt), task, "main")
    assert out.returncode == 0, out.stderr
    return wt


SIM = 'hatchctl sim-agent "$@"'
WORK = {"sim": {"files": {"work.txt": "done\n"}}}


def agent(*lines: str) -> dict[str, list[str]]:
    """An agent command: bash running these lines (the prompt is passed on to the sim agent)."""
    return {"command": ["bash", "-c", "\n".join(lines), "hostile-agent"]}


def replace_view(target: Path) -> str:
    """What a hostile agent does to the read-only view of its worktree (a copy: its own files)."""
    return (
        f'v="$HATCH_WORKTREE/{VIEW}"; chmod -R u+w "$v"; rm -rf "$v"; '
        f'ln -s {shlex.quote(str(target))} "$v"'
    )


def commit_all(message: str) -> str:
    return (
        "git -c user.name=hostile -c user.email=hostile@invalid add -f -A && "
        f"git -c user.name=hostile -c user.email=hostile@invalid commit -q -m {shlex.quote(message)}"
    )


def status_text(p: Project) -> str:
    """`hatchctl status`, read-only: run in this process (hatchctl_here)."""
    out = hatchctl_here("-C", str(p.root), "status")
    assert out.returncode in (0, 1), out.stderr
    return out.stdout


def retry(p: Project, task_id: str) -> None:
    deps = build_deps(p)
    try:
        sync_specs(deps.store, p.load_specs().specs)
        assert "pending again" in Commands(deps, lambda: None, lambda: None).retry(task_id)
    finally:
        deps.store.close()


def assert_unsafe(p: Project, task_id: str, named: str) -> None:
    """The task failed for the agent's unsafe path, in the store and in `hatchctl status`."""
    deps = build_deps(p)
    try:
        task = deps.store.task(task_id)
        assert task is not None
        assert (task.state, task.failure_class) == ("failed", "agent")
        assert task.errors and task.errors[-1]["reason"] == "unsafe_path"
        assert named in task.errors[-1]["detail"]
        assert (task.last_error or "").startswith("unsafe_path: ")
    finally:
        deps.store.close()
    line = next(ln for ln in status_text(p).splitlines() if ln.startswith(task_id + " "))
    assert "failed" in line and "unsafe_path" in line, line


@pytest.fixture
def copy_view(monkeypatch: pytest.MonkeyPatch) -> None:
    """The read-only copy (what a machine without bind mounts uses): the agent owns its files,
    so it can replace the view; a read-only bind mount would stop it before hatchctl is even
    asked to follow anything."""
    monkeypatch.setenv("HATCH_MOUNT_METHOD", "copy")
