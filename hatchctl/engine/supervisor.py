"""The supervisor: one per project (it holds supervisor.lock), the only process that launches or
kills agents. Event-driven (inotify on hook, summary, spec and wake files) with a cheap tick for
timeouts, idle checks and psutil sampling. Its decisions are level-triggered: each pass derives
what to do from the database, so a supervisor killed at any moment resumes where it was.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import threading
from collections.abc import Callable
from typing import Any

from hatchctl.engine import housekeeping, jobs, placement, prompting, scheduling, startchecks
from hatchctl.engine.breaker import Breaker
from hatchctl.engine.commands import Commands
from hatchctl.engine.courier import Courier
from hatchctl.engine.deps import Deps
from hatchctl.engine.diskguard import DiskGuard
from hatchctl.engine.jobrunner import JobRunner
from hatchctl.engine.launching import Launches
from hatchctl.engine.monitor import Monitor
from hatchctl.engine.policy import plan
from hatchctl.engine.reconcile import reconcile
from hatchctl.engine.stops import Stops
from hatchctl.engine.tmuxwatch import TmuxServerWatch
from hatchctl.errors import HatchError, SpecError, StoreBusyError
from hatchctl.runtime import psinfo
from hatchctl.runtime.gitrepo import check_repository
from hatchctl.runtime.watcher import Watcher
from hatchctl.state.lockfile import SupervisorLock
from hatchctl.state.rows import TaskRow
from hatchctl.state.spec import TaskSpec
from hatchctl.state.store import RowCache
from hatchctl.state.sync import sync_specs


class Supervisor:
    def __init__(
        self,
        deps: Deps,
        *,
        until_drained: bool = False,
        on_pass: Callable[[], None] | None = None,
        time_limit: float | None = None,
    ) -> None:
        self.deps = deps
        self.until_drained = until_drained
        self.time_limit = time_limit
        self._old_handlers: dict[int, Any] = {}
        self.on_pass = on_pass
        self.queue: queue.Queue[tuple[str, str]] = queue.Queue()
        self.specs: dict[str, TaskSpec] = {}
        self.specs_stamp: frozenset[tuple[str, int, int]] = frozenset()
        self.courier = Courier(deps, self.queue)
        self.released: set[str] = set()  # failed tasks whose planning view was unmounted
        self.monitor = Monitor(deps, self.specs, self.courier)
        self.commands = Commands(
            deps, on_down=self._down, on_resume=self._resume, courier=self.courier
        )
        lim = deps.limits
        self.breaker = Breaker(lim.breaker.threshold, lim.breaker.window)
        self.disk = DiskGuard(deps)
        self.reconcile_due = False
        self.specs_pending = False  # a spec change seen while stops were drained mid-pass
        self.specs_prefix = str(deps.project.specs_dir)  # (resolved once: _wait runs per event)
        self.lock = SupervisorLock(deps.project.paths.supervisor_lock)
        self.stop_requested = False
        self.going_down = False
        self.tmux_server = TmuxServerWatch(deps, self._infra_failure)
        self.job_env = jobs.JobEnv(
            root=deps.project.root,
            paths=deps.project.paths,
            config=deps.project.config,
            scripts=deps.scripts,
            planning_dir=deps.project.planning_dir,
            confine=startchecks.confiner(deps),
        )
        self.jobs = JobRunner(deps, self.job_env, self.queue, self._guard, self._infra_failure)
        self.launches = Launches(
            deps,
            self.jobs,
            infra_failure=self._infra_failure,
            raise_if_disk_full=self._raise_if_disk_full,
        )
        self.stops = Stops(deps, self.monitor, self.jobs, drain=self._drain, guard=self._guard)
        self.rewake = False  # a checkpoint took a wake-up meant for the next pass
        self.woken = False  # the last look at the queue found more than stop files
        self.rows = RowCache(runs=False)  # the queue for planning, read as it changes

    # -- lifecycle -------------------------------------------------------------------------
    def run(self) -> int:
        deps = self.deps
        os.umask(0o077)  # the agents and files it starts are private (also when embedded)
        paths = deps.project.paths
        paths.ensure()
        self.lock.acquire()
        watcher = None
        try:
            # Jobs' processes (scripts, git, tests) carry the job key; whatever a killed
            # predecessor left running is stopped before anything is redone.
            orphans = psinfo.kill_orphaned_jobs(deps.job_key)
            os.environ[psinfo.JOB_KEY_ENV] = deps.job_key
            self._load_specs(strict=True)
            check_repository(
                deps.project.root, deps.project.config.project, deps.limits.git_timeout
            )
            startchecks.check_agents(self.deps)
            with deps.store.tx() as tx:
                tx.event(
                    "supervisor_started",
                    data={
                        "pid": os.getpid(),
                        "took_over_from": self.lock.took_over_from,
                        "orphaned_job_processes_killed": orphans,
                    },
                )
            self.disk.prepare()
            self.disk.adopt()
            self.tmux_server.start()
            deps.remote.attach(self.queue)  # a host's watcher wakes the loop like inotify
            reconcile(deps)
            for task in deps.store.tasks():  # a cleanup interrupted by a crash is finished now
                if task.state == "completed" and deps.project.paths.worktree(task.id).exists():
                    self.jobs.submit(
                        task.id, "cleanup", jobs.remove_worktree, self.job_env, task.id
                    )
            watcher = Watcher(
                [paths.wake.parent, deps.project.specs_dir], self.queue, recursive=[paths.io]
            )
            watcher.start()
            if self._specs_stamp() != self.specs_stamp:  # written while it started: no event
                self._load_specs(strict=False)
            self._install_signals()
            self.queue.put(("start", ""))  # the first pass now, not after a tick
            return self._loop()
        finally:
            os.environ.pop(psinfo.JOB_KEY_ENV, None)
            for sig, handler in self._old_handlers.items():
                signal.signal(sig, handler)
            if watcher is not None:
                watcher.stop()
            self.jobs.shutdown()
            self.courier.shutdown()
            # (on a full disk SQLite's own errors, not only HatchErrors, come out of a tx)
            with contextlib.suppress(Exception), deps.store.tx() as tx:
                tx.event("supervisor_stopped", data={"down": self.going_down})
            self.lock.release()
            deps.store.flush()  # current_state.json holds the final state when run() returns
            finished = self.going_down or (
                self.until_drained and not deps.store.runs(live_only=True)
            )
            if finished:
                deps.tmux.kill_server()
            with contextlib.suppress(Exception):
                deps.remote.shutdown(kill_servers=finished)
            deps.notifier.drain()

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def stop(_sig: int, _frame: object) -> None:
            self.stop_requested = True
            self.queue.put(("signal", ""))

        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old_handlers[sig] = signal.signal(sig, stop)

    def _specs_stamp(self) -> frozenset[tuple[str, int, int]]:
        """Name, mtime and size of every spec file: what the specs looked like when loaded."""
        out = set()
        for path in self.deps.project.specs_dir.glob("*.md"):
            try:
                st = path.lstat()
            except OSError:
                continue
            out.add((path.name, st.st_mtime_ns, st.st_size))
        return frozenset(out)

    def _load_specs(self, *, strict: bool) -> None:
        self.specs_stamp = self._specs_stamp()
        specset = self.deps.project.load_specs()
        if specset.problems:
            if strict:
                raise SpecError(
                    f"{len(specset.problems)} problem(s) in the specs, first: {specset.problems[0]} "
                    "(run `hatchctl validate`)",
                    specset.problems,
                )
            with self.deps.store.tx() as tx:
                tx.event("specs_invalid", data={"problems": specset.problems[:20]})
            return
        self.specs.clear()
        self.specs.update(specset.specs)
        sync_specs(self.deps.store, self.specs)

    # -- the loop --------------------------------------------------------------------------
    def _loop(self) -> int:
        tick = self.deps.limits.tick
        deadline = None if self.time_limit is None else self.deps.clock() + self.time_limit
        specs_changed, stops = False, set[str]()  # kept while the disk is full
        while not self.stop_requested:
            if deadline is not None and self.deps.clock() > deadline:
                with contextlib.suppress(Exception), self.deps.store.tx() as tx:  # (disk full)
                    tx.event("time_limit_reached", data={"seconds": self.time_limit})
                break
            wait = tick if deadline is None else max(0.0, min(tick, deadline - self.deps.clock()))
            if self.rewake or self.stops.pending():
                wait, self.rewake = 0.0, False
            changed, new_stops = self._wait(wait)
            specs_changed = specs_changed or changed or self.specs_pending
            stops, self.specs_pending = stops | new_stops | self.stops.take_deferred(), False
            if self.stop_requested:
                break
            if not self.disk.pass_allowed(on_return=self._space_returned):
                continue  # while the disk is full: only the probe, each tick
            try:
                if self.reconcile_due:  # a launch the full disk cut short, as after a restart
                    reconcile(self.deps)
                    self.reconcile_due = False
                if stops:  # recorded before anything else, then acted on
                    self.stops.record(stops, now=self.deps.clock())
                self.stops.act()
                if specs_changed:
                    self._load_specs(strict=False)
                specs_changed, stops = False, set()
                drained = self.step()
            except Exception as exc:
                if self.disk.entered(exc):
                    continue  # redone from the database once space returns
                specs_changed, stops = False, set()
                if isinstance(exc, StoreBusyError):
                    self.deps.log.warning("store_busy", error=str(exc))
                    continue
                self.deps.log.exception("supervisor_pass_failed", error=repr(exc))
                with contextlib.suppress(Exception):  # even recording it may fail
                    self._infra_failure(None, f"supervisor pass failed: {exc!r}")
                continue
            try:
                if self.on_pass is not None:
                    self.on_pass()
            except Exception as exc:  # e.g. progress printed to a file on the full disk
                if not self.disk.entered(exc):
                    raise
                continue
            if self.going_down:
                break
            if drained and self.until_drained:
                break
        return 0 if all(t.state == "completed" for t in self.deps.store.tasks()) else 1

    def _wait(self, tick: float) -> tuple[bool, set[str]]:
        """Wait for the watcher (or ``tick``): whether specs changed, and the stop files
        written meanwhile."""
        specs_dir = self.specs_prefix
        self.woken = False
        try:
            item = self.queue.get(timeout=tick) if tick > 0 else self.queue.get_nowait()
        except queue.Empty:
            return False, set()
        items = [item]
        while True:
            try:
                items.append(self.queue.get_nowait())
            except queue.Empty:
                break
        stops = {path for kind, path in items if kind == "stop"}
        specs_changed = any(p.startswith(specs_dir) and p.endswith(".md") for _, p in items)
        self.woken = len(stops) < len(items)  # woken for something else too
        return specs_changed, stops

    def _drain(self) -> set[str]:
        """A checkpoint's look at the queue: the stop files reported since the last look. Any
        other wake-up taken here (a job done, a summary written) makes the next pass start at
        once."""
        changed, stops = self._wait(0)
        self.specs_pending = self.specs_pending or changed
        self.rewake = self.rewake or self.woken
        return stops

    def step(self) -> bool:
        """One pass. Returns True when nothing can make progress any more."""
        deps = self.deps
        now = deps.clock()
        self.tmux_server.check(now)
        self.commands.process()
        if self.going_down:
            return False
        checkpoint = self.stops.checkpoint  # between any two pieces of work: stops recorded
        for run_id, kind, result in self.courier.collect():
            done = deps.store.run(run_id)
            if done is not None:
                self._guard(done.task_id, prompting.delivered, self.monitor, run_id, kind, result)
        checkpoint()
        for run in deps.store.runs(live_only=True) if self.monitor.due() else []:
            if self.stops.busy(run):
                continue  # recorded (maybe at a checkpoint of this loop): acted on by stops
            self._guard(run.task_id, self.monitor.check, run, deps.clock())
            checkpoint()
        self.stops.act()
        self._drop_disk_full_jobs()
        self.jobs.collect(between=checkpoint)
        paused = deps.store.meta("paused") == "1"
        slots = placement.capacity(deps.hosts, down=deps.remote.health.excluded(deps.remote.down))
        decision = plan(self.tasks(), deps.store.locks(), slots, paused)
        checkpoint()
        scheduling.apply_plan(self, decision.start, decision.block, decision.unblock)
        changed = decision.start or decision.block or decision.unblock
        live = {r.task_id for r in deps.store.runs(live_only=True)}
        # only the tasks this pass acts on are read again (not the whole queue: its cost would
        # grow with every task ever queued, and a stop written meanwhile waits for it)
        failed = set()
        for task in deps.store.tasks(states=("active", "failed")):
            if task.state == "active":
                self._guard(task.id, scheduling.advance, self, task, task.id in live, paused)
                checkpoint()
                continue
            failed.add(task.id)
            if task.id not in self.released:
                self.released.add(task.id)
                if task.id not in self.jobs and task.id not in live:
                    self.jobs.submit(task.id, "release", jobs.release_view, self.job_env, task.id)
        self.released &= failed
        if self.jobs or self.courier.inflight or deps.store.runs(live_only=True):
            return False
        if paused:
            return True
        return not changed and not deps.store.task_states().get("active", 0)

    def tasks(self) -> list[TaskRow]:
        """Every task in the queue's order, as committed now (only rows changed since the last
        call are read: reading the whole queue each pass held stop files up)."""
        self.rows.poll(self.deps.store)
        tasks = self.rows.tasks
        return [tasks[t] for t in self.rows.order]

    def _guard(self, task_id: str, fn: Callable[..., None], *args: Any) -> None:
        """Run one task's handling; an infrastructure error is recorded, never fatal."""
        try:
            fn(*args)
        except StoreBusyError:
            raise
        except HatchError as exc:
            self._raise_if_disk_full(exc)
            self._infra_failure(task_id, str(exc))
        except Exception as exc:  # a bug must not take the supervisor down with every agent
            self._raise_if_disk_full(exc)
            self.deps.log.exception("supervisor_error", task_id=task_id, error=repr(exc))
            self._infra_failure(task_id, f"internal error: {exc!r}")

    def _space_returned(self) -> None:
        self.breaker.reset()  # failures the full disk caused are not the infrastructure's
        self.reconcile_due = True

    def _raise_if_disk_full(self, exc: Exception) -> None:
        """A full disk is no task's failure (nor a strike against the infrastructure): the
        pass stops, the loop pauses for disk_full."""
        if self.disk.confirms(exc):
            raise exc

    def _drop_disk_full_jobs(self) -> None:
        """Jobs that failed for a full disk are dropped (jobs never touch the store) and
        submitted again from the database once space returns, at no cost to their task."""
        dropped, error = self.disk.failed_jobs(self.jobs.jobs)
        for task_id in dropped:
            del self.jobs.jobs[task_id]
            self.released.discard(task_id)
        if error is not None:
            raise error

    def _infra_failure(self, task_id: str | None, what: str) -> None:
        deps = self.deps
        deps.log.warning("infra_failure", task_id=task_id, error=what)
        with deps.store.tx() as tx:
            tx.event("infra_failure", task_id=task_id, data={"error": what[:500]})
        reason = self.breaker.record(deps.clock(), what)
        if reason and deps.store.meta("paused") != "1":
            with deps.store.tx() as tx:
                tx.set_meta("paused", "1")
                tx.set_meta("pause_reason", reason)
                tx.event("paused", data={"reason": reason, "by": "circuit_breaker"})
            deps.notifier.send("supervisor_paused", reason=reason)

    def _resume(self) -> None:
        self.breaker.reset()

    # -- down --------------------------------------------------------------------------------
    def _down(self) -> None:
        self.going_down = True
        housekeeping.down(self.deps, self.job_env)
