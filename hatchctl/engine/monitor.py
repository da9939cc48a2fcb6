"""Watch live runs: stop files, summaries, run and idle timeouts, vanished panes.

Called for every live run on each tick and whenever the watcher reports a hook or summary file.
No tmux call per agent per tick: liveness and idleness come from psutil and the log's size.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hatchctl.engine import (
    confinement,
    derived,
    handover,
    lifecycle,
    observe,
    prompting,
    reclaimcheck,
    remotecheck,
    runend,
)
from hatchctl.engine.activity import Activity
from hatchctl.engine.courier import Courier
from hatchctl.engine.deps import Deps
from hatchctl.errors import ForgedSignal, SummaryError
from hatchctl.runtime import psinfo
from hatchctl.state import secret
from hatchctl.state.rows import RunRow, TaskRow
from hatchctl.state.spec import TaskSpec
from hatchctl.state.summary import StopSignal, Summary, load_stop, load_summary

ACTIVE = prompting.ACTIVE  # ("running", "stalled")


class Monitor:
    def __init__(
        self, deps: Deps, specs: dict[str, TaskSpec], courier: Courier | None = None
    ) -> None:
        self.deps = deps
        self.specs = specs
        self.courier = courier or Courier(deps)
        self.activity = Activity(self)
        # called between the expensive steps of acting on a stop (the supervisor records stop
        # files written meanwhile there: recording a stop never waits for another's handling)
        self.between: Callable[[], None] = lambda: None
        # when set, a stop recorded here is handed over (run, exited), not acted on at once
        self.on_recorded: Callable[[RunRow, bool], None] | None = None
        self.checked_at = -1e9  # time.monotonic() of the last pass that checked the live runs

    def due(self) -> bool:
        """Whether this pass checks the live runs (pane alive, timeouts, activity): at most
        twice a tick. A burst of launches wakes a pass per finished job, and each looking at
        every live run again made a burst cost the square of its size."""
        now = time.monotonic()
        if now - self.checked_at < self.deps.limits.tick / 2:
            return False
        self.checked_at = now
        return True

    # -- helpers ---------------------------------------------------------------------------
    def _path(self, rel: str) -> Path:
        return self.deps.project.root / rel

    def _stop_signature(self, run: RunRow) -> str | None:
        try:
            st = os.stat(self._path(run.stop_path))
        except FileNotFoundError:
            return None
        return f"{st.st_ino}:{st.st_mtime_ns}"

    def fresh_summary(self, run: RunRow) -> Summary:
        """The run's summary, if it is valid and was written during this run."""
        path = self._path(run.summary_path)
        try:
            if path.stat().st_mtime < run.started_at - 1.0:
                raise SummaryError(f"summary {path.name} is older than this run")
        except FileNotFoundError:
            raise SummaryError(f"summary {path.name} does not exist") from None
        return load_summary(path, task_id=run.task_id, role=run.role, iteration=run.iteration)

    def _log_size(self, run: RunRow) -> int:
        if run.remote:  # as its host's watcher last listed it
            size = self.deps.remote.log_size(run)
            return run.log_size if size is None else size
        try:
            return self._path(run.log_path).stat().st_size
        except FileNotFoundError:
            return 0

    def _task(self, run: RunRow) -> TaskRow:
        task = self.deps.store.task(run.task_id)
        assert task is not None
        return task

    # -- entry point -----------------------------------------------------------------------
    def check(self, run: RunRow, now: float) -> None:
        if run.state == "starting":
            return  # only seen during reconcile, which handles it
        if run.remote:  # a stop its host reported is brought back first (engine/remote.py)
            remotecheck.collect_reported(self.deps, run)
        sig = self._stop_signature(run)
        if run.state == "stopped":  # a supervisor stopped between recording and acting on it
            try:
                stop = self._read_stop(run)
                exited = stop.reason == "exit"
                if sig != run.stop_seen:  # the agent stopped again since: record the newest
                    with self.deps.store.tx() as tx:
                        extra = {"exit_code": stop.exit_code, "ended_at": tx.now} if exited else {}
                        run = tx.update_run(run.id, stop_seen=sig, **extra)
            except SummaryError:
                exited = not psinfo.alive_since(run.pane_pid, run.running_at or run.started_at)
            if exited:  # killed between recording the stop and acting on it: check again
                self._kill_survivors(run)
            self.after_stop(run, exited)
            return
        if sig is not None and sig != run.stop_seen:
            self.on_stop(run, sig)
        elif run.state in ACTIVE:
            self._check_active(run, now)
        elif run.state == "summarizing":
            self._check_summarizing(run, now)

    def _check_active(self, run: RunRow, now: float) -> None:
        deps = self.deps
        if run.remote:
            remotecheck.check_active(self, run, now)
            return
        started = run.running_at or run.started_at
        if not psinfo.alive_since(run.pane_pid, started):
            sig = self._stop_signature(run)  # the wrapper writes .stop just before it exits
            if sig is not None and sig != run.stop_seen:
                self.on_stop(run, sig)
                return
            reason = "vanished" if runend.claimed(deps, run.id) else "never_started"
            self.restart(run, reason, "the agent's pane is gone and it wrote no .stop file")
            return
        if self.past_run_timeout(run, now, started):
            return
        if run.role and getattr(deps.project.config.agents, run.role).prompt_delivery == "paste":
            prompting.paste_prompt(self, run)
        run = observe.check_waiting(deps, run)
        self._check_idle(run, now, started)

    def past_run_timeout(self, run: RunRow, now: float, started: float) -> bool:
        """Past its spec's timeout (else ``run_timeout``): ended ``timed_out`` with a strike."""
        spec = self.specs.get(run.task_id)
        limit = spec.timeout if spec is not None and spec.timeout else self.deps.limits.run_timeout
        if now - started <= limit:
            return False
        detail = f"ran longer than {limit:g}s"
        self._end_and_strike(run, "timed_out", "run_timeout", "timeout", detail, {"limit": limit})
        return True

    def _check_idle(self, run: RunRow, now: float, started: float) -> None:
        self.activity.check_idle(run, now, started)

    def _check_summarizing(self, run: RunRow, now: float) -> None:
        try:
            summary = self.fresh_summary(run)
        except SummaryError:
            if self.courier.busy(run.id):
                return  # the request is still being delivered
            if now - (run.last_request_at or now) > self.deps.limits.summary_timeout:
                prompting.request_or_fail(self, run, "summary_timeout")
            return
        if run.remote and not remotecheck.settle(self.deps, run):
            return  # its branch is not here yet (a summary came with a stop not recorded)
        self.succeed(run, summary, kill_pane=True)

    # -- stop files ------------------------------------------------------------------------
    def on_stop(self, run: RunRow, sig: str) -> None:
        """A new .stop file: record it (run -> stopped) and act on it, in two steps that are each
        safe to repeat: a supervisor killed in between finds the run stopped and acts again."""
        recorded = self.record_stop(run, sig)
        if recorded is None:
            return
        if self.on_recorded is not None:
            self.on_recorded(*recorded)
        else:
            self.act_on_stop(*recorded)

    def act_on_stop(self, run: RunRow, exited: bool) -> None:
        """The second step: what is left of an exited agent is killed, then the stop is acted
        on (``after_stop``)."""
        if exited:
            self._kill_survivors(run)
            self.between()
        self.after_stop(run, exited)

    def record_stop(self, run: RunRow, sig: str) -> tuple[RunRow, bool] | None:
        """The first step: the stop file is verified (a forged or invalid one is refused and
        noted) and recorded, run -> ``stopped``, in one transaction. The stopped run and whether
        the agent exited; None when it was refused."""
        deps = self.deps
        try:
            stop = self._read_stop(run)
        except ForgedSignal as exc:
            with deps.store.tx() as tx:
                tx.update_run(run.id, stop_seen=sig)
                tx.event(
                    "forged_signal", task_id=run.task_id, run_id=run.id, data={"error": str(exc)}
                )
            deps.log.warning("forged_signal", task_id=run.task_id, run_id=run.id, error=str(exc))
            return None
        except SummaryError as exc:
            with deps.store.tx() as tx:
                tx.update_run(run.id, stop_seen=sig)
                tx.event(
                    "stop_file_invalid",
                    task_id=run.task_id,
                    run_id=run.id,
                    data={"error": str(exc)},
                )
            return None
        exited = stop.reason == "exit"
        with deps.store.tx() as tx:  # first: the stop is recorded at once, in one transaction
            fields: dict[str, Any] = {"stop_seen": sig}
            if exited:
                fields.update(exit_code=stop.exit_code, ended_at=tx.now)
            if (transcript := observe.transcript_path(run, stop)) is not None:
                fields["transcript_path"] = transcript
            if run.waiting_since is not None:
                fields.update(waiting_since=None, waiting_reason=None)
                tx.event(
                    "agent_resumed", task_id=run.task_id, run_id=run.id, data={"why": "stopped"}
                )
            run = tx.transition_run(
                run.id,
                run.state,
                "stopped",
                data={"reason": stop.reason, "exit_code": stop.exit_code},
                **fields,
            )
        return run, exited

    def _kill_survivors(self, run: RunRow) -> None:
        """A stop that says "exited" while the agent's processes live (forged by the agent
        itself, or a wrapper killed oddly): they are killed before anything else (the summary
        check, the next run) uses the worktree beside them."""
        self.note_survivors(run, runend.reap(self.deps, run))

    def note_survivors(self, run: RunRow, report: psinfo.KillReport | None) -> None:
        """What ``runend.reap`` killed of an exited run, recorded."""
        if report is not None:
            with self.deps.store.tx() as tx:
                tx.event(
                    "exited_but_alive",
                    task_id=run.task_id,
                    run_id=run.id,
                    data={"kill": report.as_dict()},
                )

    def _read_stop(self, run: RunRow) -> StopSignal:
        stop = load_stop(self._path(run.stop_path))
        ours = (run.task_id, run.role, run.iteration, run.attempt)
        if (stop.task_id, stop.role, stop.iteration, stop.attempt) != ours:
            raise SummaryError(f"stop file {run.stop_path} is for another run")
        extra = stop.model_extra or {}
        if not secret.token_ok(self.deps.secret, run.id, extra.get("token")):
            raise ForgedSignal(f"stop file {run.stop_path} does not carry run {run.id}'s token")
        return stop

    def after_stop(
        self, run: RunRow, exited: bool, reclaimed: confinement.Reclaimed | None = None
    ) -> None:
        """The run is ``stopped``: the agent exited, or paused (a hook stop). ``reclaimed``:
        its refs were already reclaimed (and that recorded), in the job that killed it."""
        if run.remote and not remotecheck.settle(self.deps, run):
            return  # its branch is not here yet: the host does not answer (next pass)
        if not self._reclaim(run, reclaimed):
            return
        self.between()
        try:
            summary = self.fresh_summary(run)
        except SummaryError as exc:
            if not exited:
                prompting.request_or_fail(self, run, "no_summary")
                return
            known = observe.known_failure(self.deps, run) if run.exit_code else None
            if known is not None:  # restarting would only repeat it
                detail = known.detail
                self._end_and_strike(run, "failed", known.reason, "infra", detail, {})
                return
            if run.exit_code not in (0, None):
                self.restart(
                    run,
                    f"exit_{run.exit_code}",
                    f"the agent exited with {run.exit_code} and no summary",
                )
                return
            derived_summary = derived.derive(self.deps, run, exc)  # a CLI that cannot write one
            if derived_summary is not None:
                self.succeed(run, derived_summary, kill_pane=False)
                return
            missing = "does not exist" in str(exc) or "older" in str(exc)
            reason = "no_summary" if missing else "bad_summary"
            with self.deps.store.tx() as tx:
                tx.transition_run(
                    run.id, "stopped", "failed", reason=reason, data={"error": str(exc)}
                )
                lifecycle.strike(
                    self.deps,
                    tx,
                    self._task(run),
                    role=run.role,
                    failure_class="agent",
                    reason=reason,
                    detail=str(exc),
                    run_id=run.id,
                )
            return
        self.succeed(run, summary, kill_pane=not exited)

    def _reclaim(self, run: RunRow, got: confinement.Reclaimed | None = None) -> bool:
        """Take back the run's branch and check the refs it must not touch (unless ``got``
        says what that found). False when the run tampered with them (the task has failed)."""
        found = reclaimcheck.tampering(
            got if got is not None else reclaimcheck.record(self.deps, run)
        )
        if found is None:
            return True
        self._end_and_strike(run, "failed", "ref_tampering", "agent", found[0], found[1])
        return False

    # -- outcomes --------------------------------------------------------------------------
    def _end_and_strike(
        self,
        run: RunRow,
        to_state: str,
        reason: str,
        failure_class: str,
        detail: str,
        data: dict[str, Any],
    ) -> None:
        """Kill what is left of the run, record its end and the task's strike together."""
        runend.end_run(
            self.deps,
            run,
            to_state,
            reason,
            data=data,
            then=lambda tx: lifecycle.strike(
                self.deps,
                tx,
                self._task(run),
                role=run.role,
                failure_class=failure_class,
                reason=reason,
                detail=detail,
                run_id=run.id,
            ),
        )

    def succeed(self, run: RunRow, summary: Summary, *, kill_pane: bool) -> None:
        deps = self.deps
        if kill_pane:
            runend.kill(deps, run)
        with deps.store.tx() as tx:
            tx.transition_run(
                run.id,
                run.state,
                "succeeded",
                ended_at=run.ended_at or tx.now,
                reason=summary.status,
                data={"status": summary.status},
            )
            handover.advance(deps, self.specs, tx, run, summary)
        observe.collect(deps, deps.store.run(run.id) or run, summary)

    def restart(self, run: RunRow, reason: str, detail: str) -> None:
        """A crashed or vanished agent: clean up what is left of it, then restart by policy."""
        deps = self.deps
        stable = (run.ended_at or deps.clock()) - (run.running_at or run.started_at)
        runend.end_run(
            deps,
            run,
            "crashed",
            reason,
            data={"detail": detail},
            then=lambda tx: lifecycle.schedule_restart(
                deps,
                tx,
                self._task(run),
                role=run.role,
                reason=reason,
                detail=detail,
                run_id=run.id,
                stable_for=stable,
            ),
        )
