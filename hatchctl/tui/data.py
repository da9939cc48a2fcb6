"""What the control room shows, loaded off the UI thread: one Snapshot per refresh.

The data source reads the store (a client never writes state, only commands), the tail of each
live agent's log, and psutil for CPU. Nothing here imports Textual.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hatchctl.project import Project
from hatchctl.runtime import psinfo
from hatchctl.runtime.logfile import last_line
from hatchctl.state import features, metrics
from hatchctl.state.durations import format_duration
from hatchctl.state.lockfile import probe
from hatchctl.state.rows import EventRow, RunRow, TaskRow
from hatchctl.state.store import Store
from hatchctl.state.timeline import Timeline, build
from hatchctl.state.transitions import RUN_LIVE

BARS = " ▁▂▃▄▅▆▇█"
DELIVERY = ("delivered", "delivery_failed")
NEW_EVENTS = 1000  # read per refresh at most (the newest): a burst may skip older ones
CPU_INTERVAL = 2.0  # seconds between two CPU samples of the agents
TIMELINE_EVENTS = ("strike", "restart_scheduled", "merged")  # and every task_* event


def sparkline(values: list[float], width: int = 10) -> str:
    """Unicode bars for the last ``width`` values, scaled to their maximum."""
    vals = values[-width:]
    top = max(vals, default=0.0)
    if top <= 0:
        return BARS[0] * len(vals) + " " * (width - len(vals))
    return "".join(BARS[min(len(BARS) - 1, round(v / top * (len(BARS) - 1)))] for v in vals).rjust(
        width
    )


@dataclass
class TaskView:
    task: TaskRow
    run: RunRow | None  # the live run, else the latest one
    runtime: float | None
    idle: float | None
    cpu: float | None  # percent of one core, for the live run's process tree
    activity: str
    last_line: str
    retry_in: float | None = None  # seconds until a task waiting to retry starts again
    usage: str = ""  # tokens and cost of every run of the task, where known
    usage_tokens: int = 0  # the same tokens, for sorting

    @property
    def role(self) -> str:
        return self.run.role if self.run else "-"

    @property
    def reason(self) -> bool:
        """A failed or blocked task's row shows why, before what the agent printed last."""
        return self.task.state in ("failed", "blocked") and bool(self.task.last_error)

    @property
    def last_text(self) -> str:
        """What the LAST LINE column shows."""
        if self.reason:
            return self.task.last_error or ""
        return self.last_line or self.task.last_error or ""

    @property
    def status(self) -> str:
        t = self.task
        held = "·held" if t.held else ""  # hatchctl hold / `h`: not started, no next step
        if t.state == "active" and t.phase == "backoff" and self.retry_in is not None:
            wait = f"retry in {format_duration(self.retry_in)}" if self.retry_in > 0 else "retrying"
            return wait + held
        if t.state != "active":
            return t.state + held
        if t.phase == "review":  # approved by QA, waiting for a person (A / R)
            return "review" + held
        return self._active_status() + held

    def _active_status(self) -> str:
        t = self.task
        if self.run is not None and self.run.state in RUN_LIVE:
            if self.run.waiting_since is not None:  # at a prompt or dialog: needs a person
                return f"{t.phase}:waiting"
            return f"{t.phase}:{self.run.state}"
        return t.phase or "active"


@dataclass
class Snapshot:
    project: str
    supervisor_pid: int | None
    paused: bool
    pause_reason: str
    counts: dict[str, int]
    views: list[TaskView]
    max_strikes: int
    max_restarts: int
    taken_at: float = field(default_factory=time.time)
    # outcomes of messages to agents recorded since the snapshot before (none in the first)
    deliveries: list[EventRow] = field(default_factory=list)
    timeline: Timeline | None = None  # built only while the timeline view is open
    features: dict[str, dict[str, Any]] = field(default_factory=dict)  # features.rollup

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def completed(self) -> int:
        return self.counts.get("completed", 0)

    @property
    def live_agents(self) -> int:
        return sum(1 for v in self.views if v.run is not None and v.run.state in RUN_LIVE)

    def progress_label(self) -> str:
        """``3/5 completed · 1 failed · 1 blocked``: failed and blocked are not progress."""
        parts = [f"{self.completed}/{self.total} completed"]
        parts += [f"{self.counts[k]} {k}" for k in ("failed", "blocked") if self.counts.get(k)]
        return " · ".join(parts)

    def feature_lines(self, most: int = 4) -> list[str]:
        """``calc 3/5 done · 1 failed · 1 blocked · 12m00s · $0.42``, one per feature (at most
        ``most`` lines: the last then counts the rest)."""
        lines = [feature_line(name, f) for name, f in self.features.items()]
        if len(lines) > most:
            rest = len(lines) - most + 1
            lines = [*lines[: most - 1], f"… {rest} more features (`hatchctl status` lists them)"]
        return lines


def feature_line(name: str, f: dict[str, Any]) -> str:
    parts = [f"{name} {f['completed']}/{f['total']} done"]
    parts += [f"{f[k]} {k}" for k in ("failed", "blocked") if f[k]]
    used = f.get("metrics") or {}
    if used.get("wall_seconds"):
        parts.append(format_duration(float(used["wall_seconds"])))
    if used.get("cost_usd") is not None:
        parts.append(f"${float(used['cost_usd']):.2f}")
    return " · ".join(parts)


class DataSource:
    """Builds snapshots. Called from a worker thread; keeps per-run history for sparklines."""

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
        # A cancelled thread worker keeps running: loads must not overlap (they share history).
        self._lock = threading.Lock()
        self.event_mark: int | None = None  # the last event id looked at
        self.want_timeline = False  # set by the control room while its timeline view is open
        self.timeline_events: list[EventRow] = []  # what the timeline draws, read incrementally
        self.timeline_mark = 0

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

    def _activity(self, run: RunRow, now: float) -> str:
        try:
            size = self._log(run).stat().st_size
        except OSError:
            size = 0
        hist = self.sizes.setdefault(run.id, deque(maxlen=11))
        hist.append((now, size))
        rates = [
            max(0.0, (b[1] - a[1]) / max(b[0] - a[0], 1e-3))
            for a, b in zip(hist, list(hist)[1:], strict=False)
        ]
        return sparkline(rates)

    def _sample_cpu(self, runs: list[RunRow], now: float) -> None:
        """CPU of every live agent's process tree: one pass over /proc for all of them, at
        most every CPU_INTERVAL (the worker holds the GIL while it reads: keys wait)."""
        if now - self.cpu_at < CPU_INTERVAL:
            return
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

    def _cpu(self, run: RunRow, now: float) -> float | None:
        if not run.pane_pid or run.state not in RUN_LIVE:
            return None
        return self.cpu_rates.get(run.id)

    def load(self) -> Snapshot:
        with self._lock:
            return self._load()

    def _load(self) -> Snapshot:
        now = self.clock()
        store = self.store
        deliveries = self._deliveries()
        tasks = store.tasks()
        runs: dict[str, RunRow] = {}
        used: dict[str, list[dict[str, object]]] = {}
        every_run = store.runs()
        for r in every_run:
            if r.metrics:
                used.setdefault(r.task_id, []).append(r.metrics)
            current = runs.get(r.task_id)
            if current is None or r.state in RUN_LIVE or current.state not in RUN_LIVE:
                runs[r.task_id] = r
        self._sample_cpu(list(runs.values()), now)
        views = []
        rows: list[dict[str, Any]] = []  # for the feature roll-ups
        for t in tasks:
            run = runs.get(t.id)
            live = run is not None and run.state in RUN_LIVE
            spent = metrics.total(used.get(t.id, []))
            if t.feature:
                rows.append({"id": t.id, "feature": t.feature, "state": t.state, "metrics": spent})
            views.append(
                TaskView(
                    task=t,
                    run=run,
                    runtime=(now - (run.running_at or run.started_at)) if run and live else None,
                    idle=(now - (run.last_activity_at or run.started_at)) if run and live else None,
                    cpu=self._cpu(run, now) if run else None,
                    activity=self._activity(run, now) if run and live else "",
                    last_line=last_line(self._log(run)) if run else "",
                    retry_in=(t.next_retry_at - now) if t.next_retry_at is not None else None,
                    usage=metrics.short(spent),
                    usage_tokens=sum(int(spent.get(k) or 0) for k in metrics.TOKEN_KEYS),
                )
            )
        counts = dict.fromkeys(("pending", "active", "blocked", "completed", "failed"), 0)
        for t in tasks:
            counts[t.state] += 1
        lock = probe(self.project.paths.supervisor_lock)
        lim = self.project.config.limits
        return Snapshot(
            project=self.project.name,
            supervisor_pid=lock.pid if lock.held else None,
            paused=store.meta("paused") == "1",
            pause_reason=store.meta("pause_reason") or "",
            counts=counts,
            views=views,
            max_strikes=lim.max_strikes,
            max_restarts=lim.restart.max_restarts,
            taken_at=now,
            deliveries=deliveries,
            timeline=(
                build(tasks, every_run, self._timeline_events(), now=now)
                if self.want_timeline
                else None
            ),
            features=features.rollup(rows),
        )
