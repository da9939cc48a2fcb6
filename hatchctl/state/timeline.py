"""The timeline model: what ran when, what waited on what, where the time went.

A pure function of the store's rows (tasks, runs, events) and the current time, so the HTML
report (``hatchctl report``) and the control room can draw the same thing: one lane per task, a
bar per agent run (role, outcome), marks for restarts, strikes, merges and end states, and the
critical path of the dependency graph.

Times in the model are seconds since ``Timeline.origin`` (the first thing that happened). A live
run's bar ends at ``now``. The critical path is the dependency chain with the largest sum of
task wall times (the classic critical path method, each task weighted by the time from its
first start to its end): however many agents run at once, the work cannot finish faster than
that chain; shortening anything else does not shorten the night.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hatchctl.state import metrics
from hatchctl.state.rows import EventRow, RunRow, TaskRow
from hatchctl.state.transitions import RUN_FINAL

TASK_ENDS = ("completed", "failed", "blocked")
LIVE = "live"  # the outcome of a run still going


@dataclass(frozen=True)
class Bar:
    """One agent run."""

    run_id: int
    task_id: str
    role: str  # factory | qa
    iteration: int
    attempt: int
    start: float
    end: float
    outcome: str  # succeeded | failed | timed_out | killed | crashed | live
    reason: str | None = None

    @property
    def label(self) -> str:
        text = f"{self.role} i{self.iteration} a{self.attempt}: {self.outcome}"
        return f"{text} ({self.reason})" if self.reason else text


@dataclass(frozen=True)
class Mark:
    """One moment on a lane: ``restart``, ``strike``, ``merged``, ``completed``, ``failed``,
    ``blocked``."""

    task_id: str
    at: float
    kind: str
    label: str
    run_id: int | None = None


@dataclass(frozen=True)
class Lane:
    task_id: str
    title: str
    state: str
    depends_on: tuple[str, ...]
    start: float | None  # the task's first start (None: it never started)
    end: float | None  # its end, or now while it is active
    attempts: int  # agent runs
    strikes: int
    restarts: int  # restarts scheduled over the task's whole life
    critical: bool
    bars: tuple[Bar, ...]
    marks: tuple[Mark, ...]
    metrics: Mapping[str, Any] = field(default_factory=dict)  # summed over its runs

    @property
    def wall(self) -> float:
        if self.start is None or self.end is None:
            return 0.0
        return max(0.0, self.end - self.start)


@dataclass(frozen=True)
class Timeline:
    origin: float  # epoch seconds of t = 0
    now: float  # relative, like every other time
    span: float  # from 0 to the last thing drawn
    lanes: tuple[Lane, ...]
    critical_path: tuple[str, ...]  # task ids, dependencies first

    def lane(self, task_id: str) -> Lane | None:
        return next((lane for lane in self.lanes if lane.task_id == task_id), None)


def _mark(event: EventRow, at: float) -> Mark | None:
    assert event.task_id is not None
    d = event.data if isinstance(event.data, dict) else {}
    if event.kind == "restart_scheduled":
        n, of = d.get("restart", "?"), d.get("of", "?")
        return Mark(event.task_id, at, "restart", f"restart {n}/{of}: {d.get('reason', '')}")
    if event.kind == "strike":
        label = f"strike {d.get('strike', '?')}: {d.get('reason', '')}"
        return Mark(event.task_id, at, "strike", label, event.run_id)
    if event.kind == "merged":
        return Mark(event.task_id, at, "merged", "merged", event.run_id)
    if _task_change(event) and event.to_state in TASK_ENDS:
        return Mark(event.task_id, at, event.to_state, event.to_state)
    return None


def _task_change(event: EventRow) -> bool:
    """A task's state change (``task_*`` events), not a run's (``run_state``...)."""
    return event.kind.startswith("task_") and event.from_state != event.to_state


def _bar(run: RunRow, origin: float, now: float) -> Bar:
    final = run.state in RUN_FINAL
    end_abs = run.ended_at if final else None
    if end_abs is None:
        end_abs = now if not final else (run.last_activity_at or run.running_at or run.started_at)
    return Bar(
        run_id=run.id,
        task_id=run.task_id,
        role=run.role,
        iteration=run.iteration,
        attempt=run.attempt,
        start=run.started_at - origin,
        end=max(end_abs, run.started_at) - origin,
        outcome=run.state if final else LIVE,
        reason=run.reason,
    )


def critical_path(weights: Mapping[str, float], deps: Mapping[str, Sequence[str]]) -> list[str]:
    """The dependency chain with the largest total weight, dependencies first. Unknown
    dependencies and the edges closing a cycle are ignored; ties go to the smaller task id.
    Empty when every weight is zero."""
    best: dict[str, tuple[float, str | None]] = {}  # task -> (chain weight, predecessor)
    visiting: set[str] = set()

    def visit(task: str) -> float:
        if task in best:
            return best[task][0]
        visiting.add(task)
        top, pred = 0.0, None
        for dep in sorted(set(deps.get(task, ()))):
            if dep not in weights or dep in visiting:
                continue
            value = visit(dep)
            if value > top:
                top, pred = value, dep
        visiting.discard(task)
        best[task] = (top + max(0.0, weights[task]), pred)
        return best[task][0]

    for task in sorted(weights):
        visit(task)
    if not best:
        return []
    last = min(best, key=lambda t: (-best[t][0], t))
    if best[last][0] <= 0:
        return []
    path: list[str] = []
    node: str | None = last
    while node is not None:
        path.append(node)
        node = best[node][1]
    return path[::-1]


def build(
    tasks: Iterable[TaskRow],
    runs: Iterable[RunRow],
    events: Iterable[EventRow],
    *,
    now: float,
) -> Timeline:
    """The timeline of ``tasks`` from their runs and events (other tasks' rows are ignored)."""
    tasks = list(tasks)
    ids = {t.id for t in tasks}
    runs = [r for r in runs if r.task_id in ids]
    events = [e for e in events if e.task_id in ids]
    starts = [r.started_at for r in runs]
    starts += [e.at for e in events if _task_change(e) and e.to_state == "active"]
    origin = min(starts) if starts else now
    rel_now = now - origin

    by_task_runs: dict[str, list[RunRow]] = {t.id: [] for t in tasks}
    for run in runs:
        by_task_runs[run.task_id].append(run)
    by_task_events: dict[str, list[EventRow]] = {t.id: [] for t in tasks}
    for event in events:
        assert event.task_id is not None
        by_task_events[event.task_id].append(event)

    spans: dict[str, tuple[float | None, float | None]] = {}
    parts: dict[str, tuple[list[Bar], list[Mark], int]] = {}
    for task in tasks:
        task_runs = sorted(by_task_runs[task.id], key=lambda r: (r.started_at, r.id))
        task_events = sorted(by_task_events[task.id], key=lambda e: (e.at, e.id))
        bars = [_bar(r, origin, now) for r in task_runs]
        marks = [m for e in task_events if (m := _mark(e, e.at - origin)) is not None]
        restarts = sum(1 for m in marks if m.kind == "restart")
        activated = [
            e.at - origin for e in task_events if _task_change(e) and e.to_state == "active"
        ]
        begin = min([*activated, *(b.start for b in bars)], default=None)
        end: float | None
        if task.state in TASK_ENDS:
            ended = [m.at for m in marks if m.kind == task.state]
            end = ended[-1] if ended else max((b.end for b in bars), default=None)
            if end is None and begin is not None:
                end = task.updated_at - origin
        elif task.state == "active":
            end = rel_now
        else:  # pending: whatever ran before a requeue
            end = max((b.end for b in bars), default=None)
        if begin is None:
            end = None
        spans[task.id] = (begin, end)
        parts[task.id] = (bars, marks, restarts)

    weights = {
        tid: (e - s if s is not None and e is not None else 0.0) for tid, (s, e) in spans.items()
    }
    path = critical_path(weights, {t.id: t.depends_on for t in tasks})
    on_path = set(path)
    lanes = []
    for task in tasks:
        bars, marks, restarts = parts[task.id]
        begin, end = spans[task.id]
        lanes.append(
            Lane(
                task_id=task.id,
                title=task.title,
                state=task.state,
                depends_on=tuple(task.depends_on),
                start=begin,
                end=end,
                attempts=len(bars),
                strikes=task.strikes,
                restarts=restarts,
                critical=task.id in on_path,
                bars=tuple(bars),
                marks=tuple(marks),
                metrics=metrics.total(r.metrics for r in by_task_runs[task.id]),
            )
        )
    lanes.sort(key=lambda lane: (lane.start is None, lane.start or 0.0, lane.task_id))
    ends = [x for lane in lanes for x in (lane.end, *(m.at for m in lane.marks)) if x is not None]
    span = max([*ends, *(b.end for lane in lanes for b in lane.bars)], default=0.0)
    return Timeline(
        origin=origin,
        now=rel_now,
        span=max(span, 0.0),
        lanes=tuple(lanes),
        critical_path=tuple(path),
    )
