"""The supervisor's launches: a run is placed and committed in the loop's thread, its pane
opened in a job (locally sandbox set-up, git and tmux take tens of ms; on an SSH host the push,
the worktree there, the copies and its tmux, ~10 calls: engine/remotelaunch.py), and the ticket
written in the loop once the pane is up. A stop file written meanwhile is handled at once, not
after the launch. A launch on a host that fails there counts against the host (drained when it
keeps failing: engine/remotehealth.py), not against the task."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from hatchctl.engine import launcher, lifecycle, placement, remotelaunch
from hatchctl.engine.deps import Deps
from hatchctl.engine.jobrunner import JobRunner
from hatchctl.errors import HatchError, SummaryError
from hatchctl.runtime.logfile import tail_lines
from hatchctl.state.rows import RunRow, TaskRow
from hatchctl.state.spec import TaskSpec
from hatchctl.state.summary import read_agent_file

LAUNCH = "launch"  # the job kind


class Launches:
    def __init__(
        self,
        deps: Deps,
        jobs: JobRunner,
        *,
        infra_failure: Callable[[str | None, str], None],
        raise_if_disk_full: Callable[[Exception], None],
    ) -> None:
        self.deps = deps
        self.jobs = jobs
        self.infra_failure = infra_failure
        self.raise_if_disk_full = raise_if_disk_full
        self.pending: dict[str, launcher.Pending] = {}
        jobs.handlers[LAUNCH] = self.opened

    def start(self, task: TaskRow, spec: TaskSpec, role: str) -> None:
        deps = self.deps
        previous = [
            r for r in deps.store.runs(task.id) if r.role == role and r.iteration == task.iteration
        ]
        attempt = max((r.attempt for r in previous), default=0) + 1
        try:
            host = placement.for_run(deps, spec, role)
        except placement.NoHost as exc:  # no host could ever take it: say so, once
            with deps.store.tx() as tx:
                lifecycle.fail(deps, tx, task, failure_class="infra", last_error=str(exc))
            return
        if host is None:
            return  # every host it may run on is full (or lost): the next pass tries again
        note = self.resume_note(previous[-1]) if previous else ""
        pending = launcher.begin(
            deps, task, spec, role, task.iteration, attempt, resume_note=note, host=host
        )
        if pending.host is None:
            self.pending[task.id] = pending
            self.jobs.submit(task.id, LAUNCH, launcher.open_pane, deps, pending)
            return
        try:  # the host prepared and its sandbox known (probed once per host)
            sandbox = remotelaunch.mode(deps.remote, pending.host, role)
        except HatchError as exc:
            self._host_failed(pending, exc)
            return
        self.pending[task.id] = pending
        self.jobs.submit(task.id, LAUNCH, remotelaunch.open_pane, deps.remote, pending, sandbox)

    def opened(self, task_id: str, future: Future[Any]) -> None:
        """The launch job is done: the run goes on, or its failure is a restart."""
        pending = self.pending.pop(task_id, None)
        if pending is None:
            return
        try:
            opened = future.result()
            if pending.host is not None:
                if remotelaunch.finish(self.deps.remote, pending, opened) is not None:
                    self.deps.remote.health.used.add(pending.host.name)
                return
        except HatchError as exc:
            if pending.host is not None:
                self._host_failed(pending, exc)
                return
            if not isinstance(exc, launcher.LaunchFailed):
                self._crashed(pending, exc)
                return
            self.raise_if_disk_full(exc)  # redone from the database once space returns
            self._failed(pending, str(exc))
            return
        except Exception as exc:
            self._crashed(pending, exc)
            return
        launcher.finish(self.deps, pending, opened)

    def _crashed(self, pending: launcher.Pending, exc: Exception) -> None:
        """A bug: the run must still end, not stay ``starting``."""
        run = pending.run
        self.deps.log.exception("launch_crashed", task_id=run.task_id, run_id=run.id)
        self._failed(pending, f"could not launch {run.window_name}: {exc!r}")

    def _host_failed(self, pending: launcher.Pending, exc: HatchError) -> None:
        """A launch that failed on its SSH host: the host's failure, counted against it (drained
        when it keeps failing), not against the task, which is placed again shortly."""
        deps, run, host = self.deps, pending.run, pending.host
        assert host is not None
        self.raise_if_disk_full(exc)
        error = str(exc)
        if not isinstance(exc, launcher.LaunchFailed):
            error = f"could not launch {run.window_name} on host {host.name}: {exc}"
        deps.remote.health.failed(host.name, f"launch {run.window_name}: {exc}")
        launcher.failed(deps, run.id, error)
        task = deps.store.task(run.task_id)
        if task is None or task.state != "active":
            return  # killed or cancelled while the pane opened
        with deps.store.tx() as tx:
            tx.update_task(
                task.id,
                phase="backoff",
                resume_phase=run.role,
                next_retry_at=tx.now + 1.0,
                pane_id=None,
                last_error=f"launch_failed: {error}"[:500],
            )
            tx.event("host_launch_failed", task_id=task.id, data={"host": host.name})

    def _failed(self, pending: launcher.Pending, error: str) -> None:
        deps, run = self.deps, pending.run
        launcher.failed(deps, run.id, error)
        task = deps.store.task(run.task_id)
        if task is None or task.state != "active":
            return  # killed or cancelled while the pane opened
        with deps.store.tx() as tx:
            lifecycle.schedule_restart(
                deps,
                tx,
                task,
                role=run.role,
                reason="launch_failed",
                detail=error,
                run_id=None,
                failure_class="infra",
            )
        self.infra_failure(task.id, error)

    def resume_note(self, run: RunRow) -> str:
        root = self.deps.project.root
        try:  # the agent wrote it: never read through a link, a FIFO or a huge file
            raw: bytes | None = read_agent_file(root / run.summary_path, "summary")
        except SummaryError:
            raw = None
        if raw is not None:
            text = raw[:4000].decode("utf-8", errors="replace")
            return f"A previous attempt ({run.attempt}) ended ({run.reason}). Its summary:\n{text}"
        tail = "\n".join(tail_lines(root / run.log_path, 40))
        return (
            f"A previous attempt ({run.attempt}) ended ({run.reason}); your partial work is in the "
            f"worktree. The end of its output:\n{tail}"
        )
