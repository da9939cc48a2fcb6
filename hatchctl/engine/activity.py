"""Is a live run doing anything? Its log growing, else its process tree's CPU (sampled at most
every tenth of the stall time per run, from one /proc pass for all runs; a run on a host: on
its host, in a round off the loop, engine/remotesample.py); quiet for ``stall_seconds``:
stalled (and its screen looked at for a prompt it waits at or a known failure; a host's: on
the pass its capture there lands, engine/remotesample.Screens); quiet for
``idle_timeout``: ended and restarted. An agent that prints in a loop it cannot leave is caught
by its screen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hatchctl import agents
from hatchctl.engine import lifecycle, observe, remotesample, runend
from hatchctl.runtime import psinfo
from hatchctl.state.rows import RunRow

if TYPE_CHECKING:
    from hatchctl.engine.monitor import Monitor


class Activity:
    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.deps = monitor.deps
        self.cpu_at: dict[int, float] = {}
        self.cpu: dict[int, float] = {}
        self.screen_at: dict[int, float] = {}  # run id -> when its screen was last looked at
        self.failing_since: dict[int, float] = {}  # run id -> since when a failure shows
        self.cpu_table = psinfo.CpuTable(max_age=0.5)  # one /proc pass serves a whole pass
        self.remote_cpu: dict[int, remotesample.Sample] = {}  # run id -> its last host sample
        self.log_at: dict[int, float] = {}  # run id -> when its log last grew (a host's run)
        self.screen_due: set[int] = set()  # stalled runs whose screen is to be looked at (hosts)

    def check_idle(self, run: RunRow, now: float, started: float) -> None:
        deps, lim = self.deps, self.deps.limits
        size = self.monitor._log_size(run)
        # CPU of the process tree costs a scan of /proc: only when the log says nothing, and at
        # most every `every` seconds per run: a tenth of the time a stall takes to be decided
        # (2 s for a 20 s stall; 10 s at most, the default 150 s), never under 1 s
        grew = size != run.log_size
        previous = self.cpu.get(run.id)
        cpu = previous
        last = run.last_activity_at or started
        decide = min(lim.stall_seconds, lim.idle_timeout)
        every = min(10.0, max(1.0, decide / 10))
        # nor while it was active a moment ago (well before any stall could be decided): a
        # printing agent's log says enough, and a /proc pass holds up the loop (tens of ms on a
        # busy machine)
        quiet = now - last >= min(1.0, decide / 2)
        sampled_at = self.cpu_at.get(run.id, -1e9)
        if run.remote:  # sampled on its host, off the loop: a round's result, when one came
            # quiet: its log (not its CPU, found busy a moment ago: the rounds go on, one per
            # host every `every` seconds, and a result waits for the next pass)
            if grew:
                self.log_at[run.id] = now
            log_quiet = not grew and now - self.log_at.get(run.id, last) >= min(1.0, decide / 2)
            used, span = self._remote_cpu(run, now, log_quiet, every)
        else:
            if not grew and quiet and run.pane_pid and now - sampled_at >= every:
                cpu = self.cpu_table.seconds(run.pane_pid)
                self.cpu[run.id], self.cpu_at[run.id] = cpu, now
            used = (cpu - previous) if previous is not None and cpu is not None else 0.0
            span = now - sampled_at
        # busy: more than 1 % of a core since the last sample (0.02 s over 2 s, as before)
        busy = grew or used > 0.01 * max(2.0, span)
        if busy:
            self.screen_due.discard(run.id)
            if run.waiting_since is not None and size != run.log_size:
                run = observe.clear_waiting(deps, run, "output")
            if run.state == "stalled":
                with deps.store.tx() as tx:
                    tx.transition_run(
                        run.id,
                        "stalled",
                        "running",
                        last_activity_at=now,
                        log_size=size,
                        data={"note": "activity resumed"},
                    )
            elif now - last >= 1.0 or size != run.log_size:
                with deps.store.tx() as tx:  # at most about once a second per run
                    tx.update_run(run.id, last_activity_at=now, log_size=size)
            self._check_busy_failure(run, now)
            return
        idle = now - last
        if idle >= lim.idle_timeout and run.state == "stalled":  # always shown stalled first
            # an agent at a prompt or dialog is not hung: its own reason, with what it asked
            reason = "waiting_for_input" if run.waiting_since is not None else "idle_timeout"
            detail = f"no output and no CPU for {idle:.1f}s"
            if run.waiting_reason:
                detail = f"waited for input for {idle:.1f}s: {run.waiting_reason}"
            runend.end_run(
                deps,
                run,
                "timed_out",
                reason,
                data={"idle": round(idle, 2)},
                then=lambda tx: lifecycle.schedule_restart(
                    deps,
                    tx,
                    self.monitor._task(run),
                    role=run.role,
                    reason=reason,
                    detail=detail,
                    run_id=run.id,
                    stable_for=last - started,
                    failure_class="timeout",
                ),
            )
        elif idle >= min(lim.stall_seconds, lim.idle_timeout) and run.state == "running":
            with deps.store.tx() as tx:
                tx.transition_run(run.id, "running", "stalled", data={"idle": round(idle, 2)})
            self._check_screen(run)
        elif run.state == "stalled" and run.id in self.screen_due:
            self._check_screen(run)  # a host's capture landed (or is asked for again)

    def _check_screen(self, run: RunRow) -> None:
        """A stalled agent's screen: a prompt it waits at, or a known failure. A run on a host:
        looked at again on later passes until its capture there landed (off the loop)."""
        looked, known = observe.check_screen(self.deps, run)
        if looked:
            self.screen_due.discard(run.id)
        else:
            self.screen_due.add(run.id)
        if known is not None:
            self.screen_due.discard(run.id)
            self.monitor._end_and_strike(run, "failed", known.reason, "infra", known.detail, {})

    def _remote_cpu(
        self, run: RunRow, now: float, quiet: bool, every: float
    ) -> tuple[float, float]:
        """(CPU seconds its tree used, over how many seconds of its host's clock) between the
        run's last two samples, when the newer one came since the last pass; else (0, 0). A
        quiet run is sampled in its host's rounds (engine/remotesample.py), an active one not."""
        samples = self.deps.remote.samples
        if not quiet:
            samples.forget(run)
            return 0.0, 0.0
        samples.want(run, now, every)
        new = samples.take(run.id)
        if new is None:
            return 0.0, 0.0
        old, self.remote_cpu[run.id] = self.remote_cpu.get(run.id), new
        if old is None or old.pid != new.pid or new.clock <= old.clock:
            return 0.0, 0.0  # its first sample, or its pane's process is another one
        return new.cpu - old.cpu, new.clock - old.clock

    def _check_busy_failure(self, run: RunRow, now: float) -> None:
        """An agent printing in a loop it cannot leave (codex reconnecting forever) is never
        idle: its screen is looked at every idle_timeout / 2 while it prints, and a known
        ``while_busy`` failure shown for longer than idle_timeout ends the run."""
        window = self.deps.limits.idle_timeout
        if now - self.screen_at.get(run.id, -1e9) < window / 2:
            return
        preset = agents.for_agent(getattr(self.deps.project.config.agents, run.role))
        if not any(p.while_busy for p in preset.failure_patterns):
            return
        shown = observe.screen(self.deps, run)
        if shown is None:  # a host's capture under way: looked at on the pass it lands
            return
        self.screen_at[run.id] = now
        found = observe.busy_failure(self.deps, run, shown[0])
        if found is None:
            self.failing_since.pop(run.id, None)
            return
        since = self.failing_since.setdefault(run.id, now)
        if now - since >= window:
            detail = f"{found.detail} (on its screen for {now - since:.0f}s)"
            self.monitor._end_and_strike(run, "failed", found.reason, "infra", detail, {})
