"""The one transition table for task and run states (DESIGN.md §4).

The store checks it in code (compare-and-set) and installs it in SQLite, where a trigger rejects any
update it does not allow, even one written with plain SQL from outside hatchctl.
"""

from __future__ import annotations

TASK_STATES = ("pending", "active", "blocked", "completed", "failed")
TASK_PHASES = ("factory", "verify", "qa", "review", "merge", "backoff")
RUN_STATES = (
    "starting",
    "running",
    "stalled",
    "stopped",
    "summarizing",
    "succeeded",
    "failed",
    "timed_out",
    "killed",
    "crashed",
)
RUN_FINAL = frozenset({"succeeded", "failed", "timed_out", "killed", "crashed"})
RUN_LIVE = frozenset(RUN_STATES) - RUN_FINAL
FAILURE_CLASSES = (
    "code",
    "regression",
    "agent",
    "timeout",
    "infra",
    "merge_conflict",
    "red_violation",
)

TASK_TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        ("pending", "active"),
        ("pending", "blocked"),
        ("active", "completed"),
        ("active", "failed"),
        ("active", "pending"),  # requeued (e.g. the circuit breaker or a spec change)
        ("blocked", "pending"),
        ("failed", "pending"),  # hatchctl retry
        ("pending", "failed"),  # hatchctl cancel
        ("blocked", "failed"),  # hatchctl cancel
    }
)

_ENDS = ("failed", "timed_out", "killed", "crashed")
RUN_TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        ("starting", "running"),
        ("starting", "crashed"),  # the pane never claimed its ticket, or vanished
        ("starting", "killed"),
        ("running", "stalled"),
        ("stalled", "running"),
        ("running", "stopped"),
        ("stalled", "stopped"),
        ("stopped", "running"),  # a hook stop: the agent paused, then went on working
        ("stopped", "summarizing"),
        ("stopped", "succeeded"),
        ("summarizing", "succeeded"),
        ("summarizing", "stopped"),  # answered the request with another pause, still no summary
        *(("running", end) for end in _ENDS),
        *(("stalled", end) for end in _ENDS),
        *(("stopped", end) for end in _ENDS),
        *(("summarizing", end) for end in _ENDS),
    }
)


def task_transition_allowed(frm: str, to: str) -> bool:
    return (frm, to) in TASK_TRANSITIONS


def run_transition_allowed(frm: str, to: str) -> bool:
    return (frm, to) in RUN_TRANSITIONS
