"""Jobs in flight: submitted to a thread pool, collected by the supervisor's loop, and their
results applied to the store in one transaction each (jobs themselves never touch the store)."""

from __future__ import annotations

import queue
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from hatchctl.engine import jobs, lifecycle, remotecleanup
from hatchctl.engine.deps import Deps
from hatchctl.errors import HatchError, UnsafePath
from hatchctl.state.rows import TaskRow


class JobRunner:
    def __init__(
        self,
        deps: Deps,
        env: jobs.JobEnv,
        wake: queue.Queue[tuple[str, str]],
        guard: Callable[..., None],
        infra_failure: Callable[[str | None, str], None],
    ) -> None:
        self.deps = deps
        self.env = env
        self.queue = wake
        self.guard = guard
        self.infra_failure = infra_failure
        self.jobs: dict[str, Future[Any]] = {}
        # kinds handed back to their owner whatever their task's state: kind -> handler(task_id,
        # future) (launches: engine/launching.py; reaps: engine/stops.py)
        self.handlers: dict[str, Callable[[str, Future[Any]], None]] = {}
        self.pool = ThreadPoolExecutor(
            max_workers=max(2, deps.limits.max_active), thread_name_prefix="job"
        )

    def __contains__(self, task_id: object) -> bool:
        return task_id in self.jobs

    def __bool__(self) -> bool:
        return bool(self.jobs)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, task_id: str, kind: str, fn: Callable[..., Any], *args: Any) -> None:
        future = self.pool.submit(fn, *args)
        future.add_done_callback(lambda _f: self.queue.put(("job", task_id)))
        future.kind = kind  # type: ignore[attr-defined]
        self.jobs[task_id] = future

    def kind(self, task_id: str) -> str | None:
        """The kind of the task's job in flight, if it has one."""
        future = self.jobs.get(task_id)
        return None if future is None else str(future.kind)  # type: ignore[attr-defined]

    def collect(self, between: Callable[[], None] | None = None) -> None:
        """Apply the finished jobs' results; ``between`` is called after each."""
        for task_id, future in list(self.jobs.items()):
            if not future.done():
                continue
            self._collect_one(task_id, future)
            if between is not None:
                between()

    def _collect_one(self, task_id: str, future: Future[Any]) -> None:
        if self.jobs.get(task_id) is not future:
            return  # (collected meanwhile)
        del self.jobs[task_id]
        kind: str = future.kind  # type: ignore[attr-defined]
        handler = self.handlers.get(kind)
        if handler is not None:
            self.guard(task_id, handler, task_id, future)
            return
        task = self.deps.store.task(task_id)
        if kind == "cleanup" or task is None or task.state != "active":
            self._finished_elsewhere(task_id, kind, future)
            return
        try:
            result = future.result()
        except UnsafePath as exc:
            self._unsafe_path(task, kind, str(exc))
            return
        except HatchError as exc:
            self._job_failed(task, kind, str(exc))
            return
        except Exception as exc:
            self.deps.log.exception("job_crashed", task_id=task_id, job=kind)
            self._job_failed(task, kind, f"internal error: {exc!r}")
            return
        self.guard(task_id, self._apply_job, task, kind, result)

    def _job_failed(self, task: TaskRow, kind: str, error: str) -> None:
        with self.deps.store.tx() as tx:
            tx.event("job_failed", task_id=task.id, data={"job": kind, "error": error[:500]})
            resume = {"setup": "factory", "restore": task.phase or "factory"}.get(kind, kind)
            lifecycle.schedule_restart(
                self.deps,
                tx,
                task,
                role=resume,
                reason=f"{kind}_failed",
                detail=error,
                run_id=None,
                failure_class="infra",
            )
        self.infra_failure(task.id, f"{kind}: {error}")

    def _unsafe_path(self, task: TaskRow, kind: str, error: str) -> None:
        """A link an agent left at a path hatchctl manages: the agent's failure, not the infra's."""
        with self.deps.store.tx() as tx:
            tx.event("unsafe_path", task_id=task.id, data={"job": kind, "error": error[:500]})
            lifecycle.strike(
                self.deps,
                tx,
                task,
                role=None,
                failure_class="agent",
                reason="unsafe_path",
                detail=error,
            )

    def _apply_job(self, task: TaskRow, kind: str, result: Any) -> None:
        deps = self.deps
        if kind == "setup":
            assert isinstance(result, jobs.SetupResult)
            with deps.store.tx() as tx:
                tx.update_task(task.id, base_sha=result.base_sha, worktree=result.worktree)
                tx.event(
                    "worktree_ready",
                    task_id=task.id,
                    data={
                        "base": result.base_sha[:12],
                        "mount": result.mount_method,
                        **result.data,
                    },
                )
                if result.fast_path == "passed":
                    lifecycle.complete(deps, tx, task, {"fast_path": True, "detail": result.detail})
                elif result.fast_path == "red_violation":
                    lifecycle.strike(
                        deps,
                        tx,
                        task,
                        role=None,
                        failure_class="red_violation",
                        reason="red_violation",
                        detail=result.detail,
                    )
            if result.fast_path == "passed":
                self.submit(task.id, "cleanup", jobs.remove_worktree, self.env, task.id)
        elif kind == "remount":
            with deps.store.tx() as tx:
                tx.event("view_mounted", task_id=task.id, data={"mount": str(result)})
        elif kind == "restore":
            with deps.store.tx() as tx:
                tx.event("worktree_recreated", task_id=task.id, data={"head": str(result)[:12]})
        elif kind == "verify":
            with deps.store.tx() as tx:
                if result.ok:
                    tx.update_task(task.id, phase="qa")
                    tx.event("verified", task_id=task.id, data=result.checks)
                else:
                    lifecycle.strike(
                        deps,
                        tx,
                        task,
                        role="factory",
                        failure_class=result.failure_class,
                        reason=result.reason,
                        detail=result.detail,
                    )
        elif kind == "merge":
            with deps.store.tx() as tx:
                if result.ok:
                    tx.event("merged", task_id=task.id, data={"commit": result.merged_sha[:12]})
                    lifecycle.complete(deps, tx, task, {"merged": result.merged_sha})
                else:
                    lifecycle.strike(
                        deps,
                        tx,
                        task,
                        role=None,
                        failure_class=result.failure_class,
                        reason=result.reason,
                        detail=result.detail,
                    )
            hosts = sorted({r.host for r in deps.store.runs(task.id) if r.host})
            if result.ok and hosts:  # its worktrees on the hosts it ran on (the branch is kept)
                rm = remotecleanup.remove_worktrees
                self.submit(task.id, "cleanup", rm, deps.remote, task.id, hosts)

    def _finished_elsewhere(self, task_id: str, kind: str, future: Future[Any]) -> None:
        """A job whose task is no longer active (or a cleanup): only its failure is recorded."""
        error = future.exception()
        if error is None:
            return
        with self.deps.store.tx() as tx:
            tx.event("job_failed", task_id=task_id, data={"job": kind, "error": str(error)[:500]})
        self.deps.log.warning("job_failed", task_id=task_id, job=kind, error=str(error))
