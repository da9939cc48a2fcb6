"""The timeline model on hand-made rows: bars, marks, spans and the critical path."""

from __future__ import annotations

from typing import Any

from hatchctl.state.rows import EventRow, RunRow, TaskRow
from hatchctl.state.timeline import build, critical_path

T0 = 1_800_000_000.0


def task(tid: str, state: str, deps: tuple[str, ...] = (), **kw: Any) -> TaskRow:
    fields: dict[str, Any] = dict(
        id=tid, title=f"Task {tid}", state=state, phase=None, priority=50, depends_on=list(deps),
        files=[], spec_path="", spec_digest="", pending_digest=None, iteration=1, attempt=1,
        strikes=0, restarts=0, restart_window_start=None, next_retry_at=None, resume_phase=None,
        branch=None, worktree=None, base_sha=None, pane_id=None, failure_class=None,
        last_error=None, errors=[], created_at=T0, updated_at=T0, version=1,
    )  # fmt: skip
    fields.update(kw)
    return TaskRow(**fields)


def run(
    rid: int, tid: str, role: str, start: float, end: float | None, state: str, **kw: Any
) -> RunRow:
    fields: dict[str, Any] = dict(
        id=rid, task_id=tid, role=role, iteration=1, attempt=1, state=state, window_name="w",
        pane_id=None, pane_pid=None, log_path="l", stop_path="s", summary_path="m", prompt_path="p",
        started_at=T0 + start, running_at=T0 + start, ended_at=None if end is None else T0 + end,
        exit_code=None, reason=None, stop_seen=None, summary_requests=0, prompt_sent=1,
        last_request_at=None, last_activity_at=None, log_size=0, version=1,
    )  # fmt: skip
    fields.update(kw)
    return RunRow(**fields)


_ids = iter(range(1, 10_000))


def event(at: float, tid: str, kind: str, frm: str | None = None, to: str | None = None,
          run_id: int | None = None, **data: Any) -> EventRow:  # fmt: skip
    return EventRow(next(_ids), T0 + at, tid, run_id, kind, frm, to, data)


def test_critical_path_is_the_heaviest_dependency_chain() -> None:
    deps = {"B": ["A"], "C": ["A"], "D": ["B", "C"], "E": []}
    assert critical_path({"A": 5, "B": 1, "C": 7, "D": 2, "E": 13}, deps) == ["A", "C", "D"]
    assert critical_path({"A": 5, "B": 1, "C": 7, "D": 2, "E": 15}, deps) == ["E"]
    # a tie goes to the smaller id; unknown dependencies and cycle edges are ignored
    assert critical_path({"X": 3, "Y": 3}, {"X": ["nope"], "Y": []}) == ["X"]
    assert critical_path({"P": 1, "Q": 2}, {"P": ["Q"], "Q": ["P"]}) in (["P", "Q"], ["Q", "P"])
    assert critical_path({"A": 0, "B": 0}, {"B": ["A"]}) == []
    assert critical_path({}, {}) == []


def test_bars_marks_and_spans_from_rows() -> None:
    tasks = [
        task("LATE", "active", ("A",)),
        task("A", "completed"),
        task("FAST", "completed"),
        task("BAD", "failed", strikes=2),
        task("WAIT", "blocked", ("BAD",)),
    ]
    runs = [
        run(1, "A", "factory", 0, 10, "killed", reason="idle_timeout"),
        run(2, "A", "factory", 11, 30, "succeeded", metrics={"tokens_in": 100, "cost_usd": 0.5}),
        run(3, "A", "qa", 30, 40, "succeeded", metrics={"tokens_in": 50, "cost_usd": 0.25}),
        run(4, "BAD", "factory", 5, 15, "failed", reason="no_summary"),
        run(5, "BAD", "factory", 16, 20, "crashed"),
        run(6, "LATE", "factory", 45, None, "running"),
    ]
    events = [
        event(0, "A", "task_started", "pending", "active"),
        event(10, "A", "restart_scheduled", restart=1, of=3, reason="idle_timeout"),
        event(40.5, "A", "merged"),
        event(41, "A", "task_completed", "active", "completed"),
        event(2, "FAST", "task_started", "pending", "active"),
        event(3, "FAST", "task_completed", "active", "completed"),
        event(5, "BAD", "task_started", "pending", "active"),
        event(15, "BAD", "run_state", "running", "failed", run_id=4),  # a run's, not the task's
        event(15, "BAD", "strike", run_id=4, strike=1, reason="no_summary"),
        event(20, "BAD", "strike", run_id=5, strike=2, reason="crashed"),
        event(20, "BAD", "task_failed", "active", "failed"),
        event(20, "WAIT", "task_blocked", "pending", "blocked"),
        event(44, "LATE", "task_started", "pending", "active"),
        event(99, "OTHER", "strike", strike=1),  # a task not shown: ignored
    ]
    tl = build(tasks, runs, events, now=T0 + 50)
    assert tl.origin == T0 and tl.now == 50 and tl.span == 50
    assert [lane.task_id for lane in tl.lanes] == ["A", "FAST", "BAD", "LATE", "WAIT"]

    a = tl.lane("A")
    assert a is not None and (a.start, a.end, a.wall) == (0, 41, 41)
    assert [(b.run_id, b.role, b.start, b.end, b.outcome) for b in a.bars] == [
        (1, "factory", 0, 10, "killed"),
        (2, "factory", 11, 30, "succeeded"),
        (3, "qa", 30, 40, "succeeded"),
    ]
    assert a.bars[0].label == "factory i1 a1: killed (idle_timeout)"
    assert [(m.kind, m.at) for m in a.marks] == [
        ("restart", 10),
        ("merged", 40.5),
        ("completed", 41),
    ]
    assert a.marks[0].label == "restart 1/3: idle_timeout"
    assert (a.attempts, a.restarts, a.strikes) == (3, 1, 0)
    assert a.metrics == {"tokens_in": 150, "cost_usd": 0.75}

    fast = tl.lane("FAST")  # the fast path: no agent ran, the span is still known
    assert fast is not None and (fast.start, fast.end, fast.attempts, fast.bars) == (2, 3, 0, ())

    bad = tl.lane("BAD")
    assert bad is not None and (bad.start, bad.end, bad.strikes) == (5, 20, 2)
    assert [(m.kind, m.label) for m in bad.marks] == [
        ("strike", "strike 1: no_summary"),
        ("strike", "strike 2: crashed"),
        ("failed", "failed"),
    ]
    assert [b.outcome for b in bad.bars] == ["failed", "crashed"]

    late = tl.lane("LATE")  # live: its bar and its span end now
    assert late is not None and (late.start, late.end) == (44, 50)
    assert [(b.start, b.end, b.outcome) for b in late.bars] == [(45, 50, "live")]

    wait = tl.lane("WAIT")  # never started: no span, a blocked mark
    assert wait is not None and (wait.start, wait.end, wait.wall) == (None, None, 0.0)
    assert [m.kind for m in wait.marks] == ["blocked"]

    # A (41 s) then LATE (6 s so far) outweighs BAD (15 s) then WAIT (0 s)
    assert tl.critical_path == ("A", "LATE")
    assert [lane.task_id for lane in tl.lanes if lane.critical] == ["A", "LATE"]


def test_an_empty_project_and_a_retried_task() -> None:
    empty = build([], [], [], now=T0)
    assert (empty.lanes, empty.critical_path, empty.span) == ((), (), 0.0)
    # failed, retried (back to pending): the span covers what ran; no end mark after the retry
    tasks = [task("R", "pending", strikes=0)]
    runs = [run(1, "R", "factory", 0, 8, "failed")]
    events = [
        event(0, "R", "task_started", "pending", "active"),
        event(8, "R", "task_failed", "active", "failed"),
        event(9, "R", "task_retried", "failed", "pending"),
    ]
    tl = build(tasks, runs, events, now=T0 + 20)
    lane = tl.lane("R")
    assert lane is not None and (lane.start, lane.end, lane.state) == (0, 8, "pending")
    assert [m.kind for m in lane.marks] == ["failed"]
