"""``hatchctl forget ID`` and ``hatchctl clean``: remove what a night left behind, safely; and
``hatchctl down``'s work inside the supervisor.

Both run inside the supervisor (as commands) when one runs, else in the client holding the
supervisor lock, so nothing starts the task meanwhile. Worktrees are removed by
``git/remove_worktree.sh``: everything mounted inside is unmounted first (it refuses while
anything stays mounted), and a symbolic link at the worktree is removed, never followed.
Branches are kept: they hold the work.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from hatchctl.engine import jobs, remotecleanup, runend
from hatchctl.engine.deps import Deps
from hatchctl.engine.jobs import INTEGRATION_DIR
from hatchctl.errors import HatchError, ScriptError
from hatchctl.state.ids import check_task_id
from hatchctl.state.rows import RunRow, TaskRow
from hatchctl.state.store import Tx

CLEAN_SCOPES = {
    "failed": ("failed",),
    "all": ("failed", "blocked", "pending", "completed"),
}


class HousekeepingError(HatchError):
    pass


def _remove_worktree(deps: Deps, path: Path) -> None:
    deps.scripts.run("git/remove_worktree.sh", str(deps.project.root), str(path))


def spec_exists(deps: Deps, task_id: str) -> bool:
    """A spec for ``task_id`` is still there (a valid one, or a file named for it)."""
    project = deps.project
    if (project.specs_dir / f"{task_id}.md").exists():
        return True
    return task_id in project.load_specs().specs


def forget(deps: Deps, task_id: str) -> str:
    """Remove a task whose spec is gone: its worktree, runs, locks and row (events are kept,
    with a ``task_forgotten`` one)."""
    check_task_id(task_id)
    task = deps.store.task(task_id)
    if task is None:
        raise HousekeepingError(f"no task {task_id!r}")
    if spec_exists(deps, task_id):
        raise HousekeepingError(
            f"{task_id}'s spec still exists: delete it first (or `hatchctl retry {task_id}`)"
        )
    if task.state == "active":
        raise HousekeepingError(f"{task_id} is active: `hatchctl kill {task_id}` first")
    dependents = [t.id for t in deps.store.tasks() if task_id in t.depends_on and t.id != task_id]
    worktree = deps.project.paths.worktree(task_id)
    if worktree.is_symlink() or worktree.exists():
        _remove_worktree(deps, worktree)
    hosts = {r.host for r in deps.store.runs(task_id) if r.host}
    if hosts:  # its worktrees on the hosts it ran on (a host that fails is logged, left)
        remotecleanup.remove_worktrees(deps.remote, task_id, hosts)
    with deps.store.tx() as tx:
        tx.delete_task(task_id)
        tx.event(
            "task_forgotten",
            task_id=task_id,
            data={"state": task.state, "strikes": task.strikes, "dependents": dependents},
        )
    deps.log.info("task_forgotten", task_id=task_id, state=task.state)
    note = f"; {', '.join(dependents)} still depend on it" if dependents else ""
    return f"forgot {task_id} ({task.state}); its branch is kept{note}"


def clean(deps: Deps, scope: str) -> str:
    """Remove the worktrees kept for tasks that are not active (``failed``: failed tasks only;
    ``all``: every non-active task's, and leftover directories that belong to no task). A retry
    recreates a removed worktree from the task's branch."""
    if scope not in CLEAN_SCOPES:
        raise HousekeepingError(f"unknown clean scope {scope!r} (failed or all)")
    tasks: dict[str, TaskRow] = {t.id: t for t in deps.store.tasks()}
    root = deps.project.paths.worktrees
    removed: list[str] = []
    kept_active: list[str] = []
    if not root.is_dir():
        return "nothing to clean"
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name == INTEGRATION_DIR:
            continue
        task = tasks.get(entry.name)
        if task is not None and task.state == "active":
            kept_active.append(entry.name)
            continue
        if task is None and scope != "all":
            continue
        if task is not None and task.state not in CLEAN_SCOPES[scope]:
            continue
        try:
            _remove_worktree(deps, entry)
        except ScriptError as exc:
            raise HousekeepingError(
                f"could not remove {entry.name}'s worktree ({len(removed)} removed before it): "
                f"{exc}"
            ) from None
        removed.append(entry.name)
    with deps.store.tx() as tx:
        tx.event("worktrees_cleaned", data={"scope": scope, "removed": removed})
    deps.log.info("worktrees_cleaned", scope=scope, removed=len(removed))
    out = f"removed {len(removed)} worktree(s)" + (f": {', '.join(removed)}" if removed else "")
    if kept_active:
        out += f"; kept {len(kept_active)} of active tasks"
    return out


def down(deps: Deps, env: jobs.JobEnv) -> None:
    """Stop every agent (they are relaunched, without penalty, by the next supervisor), and
    release every planning view: no mount outlives the agents (the next supervisor mounts
    them again)."""
    for run in deps.store.runs(live_only=True):
        runend.end_run(deps, run, "killed", "down", then=partial(_resume_later, run))
    for task in deps.store.tasks():
        if task.state == "active":
            try:
                jobs.release_view(env, task.id)
            except HatchError as exc:
                deps.log.warning("view_not_released", task_id=task.id, error=str(exc))


def _resume_later(run: RunRow, tx: Tx) -> None:
    """After `down`: the next supervisor relaunches the role at once, with no restart counted."""
    tx.update_task(
        run.task_id, phase="backoff", resume_phase=run.role, next_retry_at=tx.now, pane_id=None
    )
