"""The supervisor's stop files: recorded as soon as the loop sees them, acted on after.

Recording a stop (the file verified, run -> ``stopped`` in one transaction: Monitor.record_stop)
is what the agent's handover waits on; acting on it (what is left of the agent killed, its refs
taken back, its summary checked, the next phase) takes /proc scans, signals and git. So the loop
records at checkpoints between any two pieces of its work (``checkpoint``: one look at the queue
when no stop came) and acts on the recorded stops afterwards, one at a time, each followed by a
checkpoint. The kill of an exited local run's leftover processes (runend.reap) runs in a job: the
run stays ``stopped`` and its task has a job in flight until it is done, so nothing uses the
worktree beside them before that (a task is not advanced while it has a job or a live run); the
same job then takes the run's refs back (confinement.reclaim: git, no store), and the rest
(Monitor.after_stop) follows in the loop. A supervisor killed in between finds the run
``stopped`` and acts on it again (Monitor.check).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from hatchctl.engine import confinement, reclaimcheck, runend
from hatchctl.engine.deps import Deps
from hatchctl.engine.jobrunner import JobRunner
from hatchctl.engine.monitor import Monitor
from hatchctl.runtime.psinfo import KillReport
from hatchctl.state.rows import RunRow

REAP = "reap"  # the job kind


class Stops:
    def __init__(
        self,
        deps: Deps,
        monitor: Monitor,
        jobs: JobRunner,
        *,
        drain: Callable[[], set[str]],
        guard: Callable[..., None],
    ) -> None:
        self.deps = deps
        self.monitor = monitor
        self.jobs = jobs
        self.drain = drain  # the stop files the watcher reported since the last look
        self.guard = guard
        self.to_act: dict[int, bool] = {}  # recorded, not acted on yet: run id -> exited
        self.deferred: set[str] = set()  # stop files of remote runs, for the next pass
        self.reaping: dict[str, RunRow] = {}  # task id -> its run whose leftovers a job kills
        jobs.handlers[REAP] = self._reaped
        monitor.between = self.checkpoint
        monitor.on_recorded = self._recorded

    def pending(self) -> bool:
        """Recorded stops not acted on yet, or stops left for the next pass."""
        return bool(self.to_act or self.deferred)

    def busy(self, run: RunRow) -> bool:
        """The run's stop is recorded and waits to be acted on here (Monitor.check leaves it)."""
        if run.id in self.to_act:
            return True
        held = self.reaping.get(run.task_id)
        return held is not None and held.id == run.id and self.jobs.kind(run.task_id) == REAP

    def checkpoint(self) -> None:
        """Record the stops written since the last look (only record: acting waits)."""
        stops = self.drain()
        if stops:
            self.record(stops)

    def take_deferred(self) -> set[str]:
        out, self.deferred = self.deferred, set()
        return out

    def record(self, stops: set[str], *, now: float | None = None) -> None:
        """Record the stops of these files' live runs. A remote run's stop is brought back
        from its host first (Monitor.check, which also acts on it): only when ``now`` is given
        (at the start of a pass), else it waits for the next pass."""
        root = self.deps.project.root
        for run in self.deps.store.runs(live_only=True):
            path = str(root / run.stop_path)
            if path not in stops or run.id in self.to_act:
                continue
            if run.remote:
                if now is None:
                    self.deferred.add(path)
                else:
                    self.guard(run.task_id, self.monitor.check, run, now)
                continue
            if run.state in ("starting", "stopped"):
                continue  # (a stopped run: Monitor.check acts on it in the pass)
            self.guard(run.task_id, self._record_one, run)

    def _record_one(self, run: RunRow) -> None:
        sig = self.monitor._stop_signature(run)
        if sig is None or sig == run.stop_seen:
            return
        recorded = self.monitor.record_stop(run, sig)
        if recorded is not None:
            self._recorded(*recorded)

    def _recorded(self, run: RunRow, exited: bool) -> None:
        self.to_act[run.id] = exited

    def act(self) -> None:
        """Act on the recorded stops, a checkpoint after each."""
        while self.to_act:
            run_id = next(iter(self.to_act))
            exited = self.to_act.pop(run_id)
            run = self.deps.store.run(run_id)
            if run is None or run.state != "stopped":
                continue  # acted on elsewhere meanwhile
            self.guard(run.task_id, self._act_one, run, exited)
            self.checkpoint()

    def _act_one(self, run: RunRow, exited: bool) -> None:
        if exited and not run.remote and run.task_id not in self.jobs:
            self.reaping[run.task_id] = run
            self.jobs.submit(run.task_id, REAP, reap, self.deps, run)
            return
        self.monitor.act_on_stop(run, exited)

    def _reaped(self, task_id: str, future: Future[Any]) -> None:
        """The job killed what was left of the run (or found nothing): the stop is acted on."""
        held = self.reaping.pop(task_id, None)
        if held is None:
            return
        run = self.deps.store.run(held.id)
        if run is None or run.state != "stopped":
            return  # ended meanwhile (a command, `down`)
        try:
            report, reclaimed = future.result()
        except Exception as exc:  # done here instead, before anything uses the worktree
            self.deps.log.warning("reap_failed", task_id=task_id, run_id=run.id, error=repr(exc))
            self.monitor.act_on_stop(run, True)
            return
        self.monitor.note_survivors(run, report)
        reclaimcheck.note(self.deps, run, reclaimed)
        self.checkpoint()
        self.monitor.after_stop(run, True, reclaimed)


def reap(deps: Deps, run: RunRow) -> tuple[KillReport | None, confinement.Reclaimed]:
    """The job: what is left of the exited run killed, then its refs taken back (in this
    order: nothing of the agent runs while its refs are checked)."""
    return runend.reap(deps, run), confinement.reclaim(deps, run)
