"""The supervisor pass's scheduling: the plan's decisions applied (tasks started, blocked,
unblocked), and each active task taken one step on (its worktree set up, its next run launched,
its verification or merge submitted as a job)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hatchctl.engine import jobs, lifecycle
from hatchctl.state.rows import TaskRow

if TYPE_CHECKING:
    from hatchctl.engine.supervisor import Supervisor


def apply_plan(sup: Supervisor, start: list[str], block: list[str], unblock: list[str]) -> None:
    for task_id in block:
        lifecycle.block(sup.deps, task_id)
    for task_id in unblock:
        lifecycle.unblock(sup.deps, task_id)
    for task_id in start:
        if task_id in sup.specs:
            lifecycle.start(sup.deps, task_id)
            sup.stops.checkpoint()


def advance(sup: Supervisor, task: TaskRow, has_live_run: bool, paused: bool) -> None:
    if task.id in sup.jobs or has_live_run or task.held:  # held: its run finishes, no more
        return
    deps, env = sup.deps, sup.job_env
    spec = sup.specs.get(task.id)
    if spec is None:
        with deps.store.tx() as tx:
            lifecycle.fail(
                deps, tx, task, failure_class="infra", last_error="its spec file is gone"
            )
        return
    if task.phase == "backoff":
        if paused or (task.next_retry_at is not None and deps.clock() < task.next_retry_at):
            return
        with deps.store.tx() as tx:
            task = tx.update_task(
                task.id,
                phase=task.resume_phase or "factory",
                next_retry_at=None,
                resume_phase=None,
            )
    if task.base_sha is None:
        sup.jobs.submit(task.id, "setup", jobs.setup, env, spec)
    elif not deps.project.paths.worktree(task.id).is_dir():  # deleted under the task
        sup.jobs.submit(task.id, "restore", jobs.restore, env, spec)
    elif task.phase in ("factory", "qa"):
        if paused:
            return
        view = deps.project.paths.worktree(task.id) / jobs.VIEW
        if not (view.exists() or view.is_symlink()):  # released by `down`: mount it again
            sup.jobs.submit(task.id, "remount", jobs.mount_view, env, task.id)
            return
        sup.launches.start(task, spec, task.phase)
    elif task.phase == "verify":
        sup.jobs.submit(task.id, "verify", jobs.verify, env, spec, task.iteration, task.base_sha)
    elif task.phase == "merge":
        done = [
            sup.specs[t.id]
            for t in sup.tasks()
            if t.state == "completed" and t.id in sup.specs and t.id != task.id
        ]
        sup.jobs.submit(task.id, "merge", jobs.merge, env, spec, done)
