"""What one row and one refresh of the control room show: a task's view (TaskView: its cells,
status and preview, compared by what it shows) and a snapshot of the project (Snapshot). Built
off the UI thread by tui/data.py's DataSource. Nothing here imports Textual."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from hatchctl.state.durations import format_duration
from hatchctl.state.rows import EventRow, RunRow, TaskRow
from hatchctl.state.timeline import Timeline
from hatchctl.state.transitions import RUN_LIVE

BARS = " ▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 10) -> str:
    """Unicode bars for the last ``width`` values, scaled to their maximum."""
    vals = values[-width:]
    top = max(vals, default=0.0)
    if top <= 0:
        return BARS[0] * len(vals) + " " * (width - len(vals))
    return "".join(BARS[min(len(BARS) - 1, round(v / top * (len(BARS) - 1)))] for v in vals).rjust(
        width
    )


def clock(seconds: float | None) -> str:
    """A clock cell (RUNTIME, IDLE): ``45s`` under a minute, then ``3m``, ``2h04m``: past a
    minute it changes once a minute, not every second (each change is a redraw)."""
    return format_duration(seconds, whole_minutes=True)


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
    def cpu_text(self) -> str:
        return f"{self.cpu:.0f}%" if self.cpu is not None else "-"

    def face(self) -> tuple[str, ...]:
        """What the row shows that a clock or a sample changes (the task and run rows aside)."""
        shown = (clock(self.runtime), clock(self.idle), self.cpu_text, self.activity, self.usage)
        return (*shown, self.last_line, self.status)

    @cached_property
    def haystack(self) -> str:
        """What the text filter and the search look in: what the row shows (a view does not
        change once built: the data source builds a new one)."""
        t = self.task
        text = f"{t.id} {t.title} {self.role} {self.status} {t.last_error or ''} {self.last_line}"
        return text.casefold()

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
    order: list[str] = field(default_factory=list)  # the same list while the order holds
    partial: bool = False  # only the first tasks: a big store's first screenful

    by_id: dict[str, TaskView] = field(default_factory=dict)  # the views by task id

    def __post_init__(self) -> None:
        if not self.by_id:
            self.by_id = {v.task.id: v for v in self.views}

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
