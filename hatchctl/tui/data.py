"""What the control room shows, loaded off the UI thread: one Snapshot per refresh (the view
types are in tui/views.py).

The data source reads the store (a client never writes state, only commands), the tail of each
live agent's log, and /proc for CPU. A refresh costs what changed, not the store's size: only rows
changed since the last one are read (state/store.py RowCache), a TaskView is rebuilt only when its
rows changed or it shows a clock (a live run, a retry countdown; kept too if it shows the same,
see ``clock``), else the very object is reused, so the control room redraws only what changed on
screen: an idle agent's row once a minute. A live run's view is rebuilt every refresh while its
row is on screen (or every line is wanted); off screen, only with the CPU sample (every
CPU_INTERVAL) or when its rows change: its log's size is still sampled every refresh (the
sparkline), but its last line is not read and its row not redrawn while nobody sees it. A
finished run's last line is read once: when its row is on screen, or while every line is wanted
(a text filter, a search, a sort by a column that changes), a bounded amount per refresh.
Nothing here imports Textual."""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hatchctl.project import Project
from hatchctl.runtime import psinfo
from hatchctl.runtime.logpreview import last_line
from hatchctl.state import features, metrics
from hatchctl.state.lockfile import probe
from hatchctl.state.rows import EventRow, RunRow, TaskRow
from hatchctl.state.store import RowCache, Store
from hatchctl.state.timeline import Timeline, build
from hatchctl.state.transitions import RUN_LIVE
from hatchctl.tui.views import Snapshot, TaskView, sparkline

DELIVERY = ("delivered", "delivery_failed")
NEW_EVENTS = 1000  # read per refresh at most (the newest): a burst may skip older ones
CPU_INTERVAL = 5.0  # seconds between two CPU samples of the agents (a pass over all of /proc)
TIMELINE_EVENTS = ("strike", "restart_scheduled", "merged")  # and every task_* event
STATES = ("pending", "active", "blocked", "completed", "failed")
SCREEN = 60  # finished runs' last lines read at once while the rows on screen are unknown
FIRST = 100  # tasks in the first snapshot of a big store (read before the rest)
LINES_BUDGET = 0.1  # seconds per refresh reading the others' while all lines are wanted
SETTLE = 10.0  # seconds after a run ended during which its log is still read every refresh


class DataSource:
    """Builds snapshots. Called from a worker thread; keeps what it has read, the per-run history
    for sparklines and CPU, and the views it built (reused while their task does not change)."""

    def __init__(
        self, project: Project, store: Store, clock: Callable[[], float] = time.time
    ) -> None:
        self.project = project
        self.store = store
        self.clock = clock
        self.sizes: dict[int, deque[tuple[float, int]]] = {}
        self.cpu: dict[int, tuple[float, float]] = {}  # run id -> (when, CPU seconds)
        self.cpu_rates: dict[int, float] = {}  # run id -> % of a core, from the last sample
        self.cpu_at = float("-inf")
        self._lock = threading.Lock()  # a cancelled worker keeps running: loads must not overlap
        self.event_mark: int | None = None  # the last event id looked at
        self.want_timeline = False  # set by the control room while its timeline view is open
        self.timeline_events: list[EventRow] = []  # what the timeline draws, read incrementally
        self.timeline_mark = 0
        self.in_view: list[str] = []  # set by the control room: the task ids on screen
        self.want_lines = False  # set by the control room: every row's values, on screen or not
        self.cache = RowCache()  # every task and run, read as they change
        self.tasks, self.runs = self.cache.tasks, self.cache.runs
        self.views: dict[str, TaskView] = {}
        self.spent: dict[str, dict[str, Any]] = {}  # task id -> metrics of all its runs
        self.dynamic: set[str] = set()  # views that show a clock: rebuilt while on screen
        self.lines: dict[int, tuple[int, str]] = {}  # run id -> (its version, last line)
        self.paths: dict[int, str] = {}  # run id -> its log's path (for os.stat)
        self.unread: dict[str, None] = {}  # tasks whose finished run's line is not read yet
        self.counts: dict[str, int] = {}
        self.features: dict[str, dict[str, Any]] = {}
        self.paused = ("", "")
        self.last: Snapshot | None = None  # what the last load returned
        self.fresh = False  # a view was rebuilt during this load

    def _timeline_events(self) -> list[EventRow]:
        """The events the timeline draws (strikes, restarts, merges, task state changes): only
        the ones recorded since the last load are read."""
        kinds = ", ".join("?" for _ in TIMELINE_EVENTS)
        sql = (
            "SELECT * FROM events WHERE id > ? AND task_id IS NOT NULL AND "  # noqa: S608
            f"(kind IN ({kinds}) OR kind LIKE 'task!_%' ESCAPE '!') ORDER BY id"
        )
        with self.store.read() as conn:
            rows = conn.execute(sql, (self.timeline_mark, *TIMELINE_EVENTS)).fetchall()
        new = [EventRow.from_row(r) for r in rows]
        if new:
            self.timeline_mark = new[-1].id
            self.timeline_events.extend(new)
        return self.timeline_events

    def _deliveries(self) -> list[EventRow]:
        """The outcomes of messages to agents recorded since the last load."""
        if self.event_mark is None:
            self.event_mark = self.store.last_event_id()
            return []
        new = self.store.events(after=self.event_mark, limit=NEW_EVENTS)
        if new:
            self.event_mark = new[-1].id
        return [e for e in new if e.kind in DELIVERY and e.data.get("kind") == "message"]

    def _log(self, run: RunRow) -> Path:
        return self.project.root / run.log_path

    def _sample_size(self, run: RunRow, now: float) -> None:
        """The log's size now, for the sparkline (a live run's, every refresh)."""
        path = self.paths.get(run.id)
        if path is None:
            path = self.paths[run.id] = str(self._log(run))
        try:
            size = os.stat(path).st_size
        except OSError:
            size = 0
        self.sizes.setdefault(run.id, deque(maxlen=11)).append((now, size))

    def _activity(self, run: RunRow) -> str:
        hist = self.sizes.get(run.id) or deque()
        rates = [
            max(0.0, (b[1] - a[1]) / max(b[0] - a[0], 1e-3))
            for a, b in zip(hist, list(hist)[1:], strict=False)
        ]
        return sparkline(rates)

    def _sample_cpu(self, runs: list[RunRow], now: float) -> bool:
        """CPU of every live agent's process tree: one pass over /proc for all of them, at
        most every CPU_INTERVAL (the worker holds the GIL while it reads: keys wait). Whether
        it sampled now."""
        if now - self.cpu_at < CPU_INTERVAL:
            return False
        self.cpu_at = now
        live = [r for r in runs if r.pane_pid and r.state in RUN_LIVE]
        totals = psinfo.cpu_seconds_many(r.pane_pid for r in live if r.pane_pid)
        rates: dict[int, float] = {}
        for r in live:
            total = totals.get(r.pane_pid or 0, 0.0)
            prev = self.cpu.get(r.id)
            self.cpu[r.id] = (now, total)
            if prev is not None and now > prev[0]:
                rates[r.id] = max(0.0, (total - prev[1]) / (now - prev[0]) * 100)
        self.cpu_rates = rates
        return True

    def load(self) -> Snapshot:
        with self._lock:
            return self._load()

    def _sync(self) -> set[str] | None:
        """Take in the rows changed since the last load; the tasks whose view is out of date
        (None: nothing was committed since)."""
        polled = self.cache.poll(self.store)
        if polled is None:
            return None
        dirty, gone = polled
        for tid in gone:
            for mine in (self.views, self.spent, self.unread):
                mine.pop(tid, None)
            self.dynamic.discard(tid)
        for tid in dirty:
            runs = self.cache.task_runs.get(tid, {})
            self.spent[tid] = metrics.total([r.metrics for _, r in sorted(runs.items())])
        if dirty or gone:
            self.counts = dict.fromkeys(STATES, 0)
            for t in self.tasks.values():
                self.counts[t.state] += 1
            self.features = features.rollup(
                {"id": t.id, "feature": t.feature, "state": t.state, "metrics": self.spent[t.id]}
                for t in self.tasks.values()
                if t.feature
            )
        self.paused = (self.store.meta("paused") or "", self.store.meta("pause_reason") or "")
        return dirty

    @property
    def order(self) -> list[str]:
        return self.cache.order

    def _run(self, tid: str) -> RunRow | None:
        return current_run(self.cache.task_runs.get(tid, {}).values())

    def first(self, most: int = FIRST) -> Snapshot | None:
        """The first ``most`` tasks of a big store in the queue's order (the rows a screen
        shows first), read before everything else; None once loaded, or for a small store."""
        with self._lock:
            counts = {} if self.order else self.store.task_states()
            if sum(counts.values()) <= 2 * most:
                return None
            now = self.clock()
            tasks = self.store.tasks(limit=most)
            runs: dict[str, list[RunRow]] = {}
            for r in self.store.runs(task_ids=[t.id for t in tasks]):
                runs.setdefault(r.task_id, []).append(r)
            views = []
            for n, t in enumerate(tasks):
                self.spent[t.id] = metrics.total([r.metrics for r in runs.get(t.id, [])])
                views.append(self._view(t, current_run(runs.get(t.id, [])), now, n < SCREEN))
            lock = probe(self.project.paths.supervisor_lock)
            snap = self._snapshot(now, views, {}, lock.pid if lock.held else None)
            snap.counts, snap.partial = {k: counts.get(k, 0) for k in STATES}, True
            return snap

    def _line(self, tid: str, run: RunRow | None, now: float, read: bool) -> str:
        """The last line of the run's log: a live (or just ended) run's on every load, a
        finished run's once (when ``read``; until then it is unread and shows nothing)."""
        if run is None:
            return ""
        settling = run.ended_at is not None and now - run.ended_at < SETTLE
        known = self.lines.get(run.id)
        if run.state not in RUN_LIVE and not settling:
            if known is not None and known[0] == run.version:
                return known[1]
            if not read:
                self.unread[tid] = None
                return ""
        line = last_line(self._log(run))
        self.lines[run.id] = (run.version, line)
        self.unread.pop(tid, None)
        return line

    def _view(self, t: TaskRow, run: RunRow | None, now: float, read: bool) -> TaskView:
        live = run is not None and run.state in RUN_LIVE
        settling = run is not None and run.ended_at is not None and now - run.ended_at < SETTLE
        backoff = t.state == "active" and t.phase == "backoff" and t.next_retry_at is not None
        if live or settling or backoff:
            self.dynamic.add(t.id)
        else:
            self.dynamic.discard(t.id)
        spent = self.spent.get(t.id, {})
        view = TaskView(
            task=t,
            run=run,
            runtime=(now - (run.running_at or run.started_at)) if run and live else None,
            idle=(now - (run.last_activity_at or run.started_at)) if run and live else None,
            cpu=self.cpu_rates.get(run.id) if run and live and run.pane_pid else None,
            activity=self._activity(run) if run and live else "",
            last_line=self._line(t.id, run, now, read),
            retry_in=(t.next_retry_at - now) if t.next_retry_at is not None else None,
            usage=metrics.short(spent),
            usage_tokens=sum(int(spent.get(k) or 0) for k in metrics.TOKEN_KEYS),
        )
        old = self.views.get(t.id)
        if old is not None and old.task is t and old.run is run and old.face() == view.face():
            return old  # shows the same: the control room has nothing to redraw for it
        self.views[t.id] = view
        self.fresh = True
        return view

    def _load(self) -> Snapshot:
        now, self.fresh = self.clock(), False
        synced = self._sync()
        dirty = synced or set()
        deliveries = self._deliveries() if synced is not None else []
        shown = set(self.in_view or self.order[:SCREEN])
        runs = {tid: self._run(tid) for tid in dirty | self.dynamic if tid in self.tasks}
        for run in runs.values():
            if run is not None and run.state in RUN_LIVE:
                self._sample_size(run, now)
        sampled = self._sample_cpu([r for r in runs.values() if r is not None], now)
        # off screen, a live row is rebuilt with each CPU sample only (unless all are wanted)
        todo = dirty | (self.dynamic if sampled or self.want_lines else self.dynamic & shown)
        todo |= shown & self.unread.keys()
        for tid in todo:
            if tid not in self.tasks:
                continue
            run = runs[tid] if tid in runs else self._run(tid)
            self._view(self.tasks[tid], run, now, read=tid in shown)
        deadline = time.monotonic() + LINES_BUDGET
        for tid in list(self.unread) if self.want_lines else []:  # a bounded amount
            if time.monotonic() > deadline:
                break
            self._view(self.tasks[tid], self._run(tid), now, read=True)
        lock, last = probe(self.project.paths.supervisor_lock), self.last
        pid = lock.pid if lock.held else None
        quiet = synced is None and not self.fresh and not self.want_timeline
        if quiet and last is not None and last.supervisor_pid == pid:
            return last  # nothing new: the very snapshot again (the control room draws nothing)
        snap = self._snapshot(now, [self.views[tid] for tid in self.order], dict(self.views), pid)
        snap.deliveries, self.last = deliveries, snap
        return snap

    def _snapshot(
        self, now: float, views: list[TaskView], by_id: dict[str, TaskView], pid: int | None
    ) -> Snapshot:
        lim = self.project.config.limits
        return Snapshot(
            project=self.project.name,
            supervisor_pid=pid,
            paused=self.paused[0] == "1",
            pause_reason=self.paused[1],
            counts=dict(self.counts),
            views=views,
            max_strikes=lim.max_strikes,
            max_restarts=lim.restart.max_restarts,
            taken_at=now,
            timeline=self._timeline(now) if self.want_timeline else None,
            features=self.features,
            order=self.order,
            by_id=by_id,
        )

    def _timeline(self, now: float) -> Timeline:
        tasks = [self.tasks[tid] for tid in self.order]
        runs = [r for _, r in sorted(self.runs.items())]
        return build(tasks, runs, self._timeline_events(), now=now)


def current_run(runs: Iterable[RunRow]) -> RunRow | None:
    """A task's live run, else its latest one."""
    current: RunRow | None = None
    for r in sorted(runs, key=lambda r: r.id):
        if current is None or r.state in RUN_LIVE or current.state not in RUN_LIVE:
            current = r
    return current
