"""Headless progress: one plain line per meaningful event (the events table is the source)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from hatchctl.state.rows import EventRow
from hatchctl.state.store import Store

_SHOWN = {
    "task_state",
    "task_completed",
    "task_failed",
    "task_retried",
    "strike",
    "restart_scheduled",
    "handover",
    "paused",
    "resumed",
    "tmux_server_died",
    "supervisor_started",
    "reconciled",
    "command_done",
    "command_failed",
    "worktree_ready",
    "verified",
    "merged",
}


def describe(e: EventRow) -> str | None:
    d = e.data
    if e.kind == "run_state" and e.to_state == "running" and e.from_state == "starting":
        return f"{e.task_id}: agent launched (run {e.run_id})"
    if e.kind == "run_state" and e.to_state in ("timed_out", "crashed", "killed", "stalled"):
        return f"{e.task_id}: run {e.run_id} {e.to_state} ({d.get('reason') or d.get('detail') or d.get('idle', '')})"
    if e.kind not in _SHOWN:
        return None
    if e.kind == "strike":
        return f"{e.task_id}: strike {d.get('strike')} ({d.get('class')}/{d.get('reason')}): {d.get('detail', '')}"
    if e.kind == "restart_scheduled":
        return (
            f"{e.task_id}: restart {d.get('restart')}/{d.get('of')} of the {d.get('role')} in "
            f"{d.get('delay')}s ({d.get('reason')})"
        )
    if e.kind == "handover":
        return f"{e.task_id}: {d.get('from')} -> {d.get('to')}"
    if e.kind in ("task_state", "task_completed", "task_failed", "task_retried"):
        extra = f" ({d.get('class')}: {d.get('error')})" if e.kind == "task_failed" else ""
        return f"{e.task_id}: {e.from_state} -> {e.to_state}{extra}"
    if e.kind in ("command_done", "command_failed"):
        return f"command {d.get('command')}: {d.get('result')}"
    if e.kind == "reconciled":
        return None if not any(d.values()) else f"reconciled: {d}"
    detail = ", ".join(f"{k}={v}" for k, v in d.items()) if d else ""
    return f"{e.task_id or 'supervisor'}: {e.kind.replace('_', ' ')}" + (
        f" ({detail})" if detail else ""
    )


class Reporter:
    """Prints each new meaningful event as one line, through ``emit`` (stdout by default)."""

    def __init__(
        self, store: Store, emit: Callable[[str], None] | None = None, *, start_after: int = 0
    ) -> None:
        self.store = store
        self.emit = emit or self._print
        self.last_id = start_after
        self.t0: float | None = None

    @staticmethod
    def _print(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def update(self) -> None:
        for e in self.store.events(after=self.last_id):
            self.last_id = e.id
            if self.t0 is None:
                self.t0 = e.at
            line = describe(e)
            if line:
                self.emit(f"[{e.at - self.t0:7.1f}s] {line}")
