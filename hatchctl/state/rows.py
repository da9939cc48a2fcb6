"""Plain dataclasses for the rows the store hands out (no ORM, no live connections)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _load(value: Any, default: Any) -> Any:
    if value is None:
        return default
    if value == "[]" or value == "{}":  # most lists and maps are empty: no parse (a fresh one)
        return [] if value == "[]" else {}
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return default


@dataclass
class TaskRow:
    id: str
    title: str
    state: str
    phase: str | None
    priority: int
    depends_on: list[str]
    files: list[str]
    spec_path: str
    spec_digest: str
    pending_digest: str | None
    iteration: int
    attempt: int
    strikes: int
    restarts: int
    restart_window_start: float | None
    next_retry_at: float | None
    resume_phase: str | None
    branch: str | None
    worktree: str | None
    base_sha: str | None
    pane_id: str | None
    failure_class: str | None
    last_error: str | None
    errors: list[dict[str, Any]]
    created_at: float
    updated_at: float
    version: int
    held: int = 0  # hatchctl hold: not started, and no next step while held
    feature: str | None = None  # the spec's feature: tasks grouped for roll-ups

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> TaskRow:
        data = dict(row)
        data["depends_on"] = _load(data["depends_on"], [])
        data["files"] = _load(data["files"], [])
        data["errors"] = _load(data["errors"], [])
        return cls(**{name: data[name] for name in _TASK_FIELDS})


@dataclass
class RunRow:
    id: int
    task_id: str
    role: str
    iteration: int
    attempt: int
    state: str
    window_name: str
    pane_id: str | None
    pane_pid: int | None
    log_path: str
    stop_path: str
    summary_path: str
    prompt_path: str
    started_at: float
    running_at: float | None
    ended_at: float | None
    exit_code: int | None
    reason: str | None
    stop_seen: str | None
    summary_requests: int
    prompt_sent: int
    last_request_at: float | None
    last_activity_at: float | None
    log_size: int
    version: int
    metrics: dict[str, Any] = field(default_factory=dict)  # tokens, turns, model, cost...
    transcript_path: str | None = None
    waiting_since: float | None = None  # the agent waits for input (a prompt, a dialog)
    waiting_reason: str | None = None
    host: str | None = None  # the [hosts.NAME] it runs on; None: this machine ("local")

    @property
    def remote(self) -> bool:
        return self.host is not None and self.host != "local"

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> RunRow:
        data = dict(row)
        data["metrics"] = _load(data.get("metrics"), {})
        return cls(**{name: data[name] for name in _RUN_FIELDS})


# the fields from_row fills, listed once (dataclasses.fields() per row was most of its cost)
_TASK_FIELDS = tuple(f.name for f in fields(TaskRow))
_RUN_FIELDS = tuple(f.name for f in fields(RunRow))


@dataclass
class EventRow:
    id: int
    at: float
    task_id: str | None
    run_id: int | None
    kind: str
    from_state: str | None
    to_state: str | None
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> EventRow:
        d = dict(row)
        return cls(
            id=d["id"],
            at=d["at"],
            task_id=d["task_id"],
            run_id=d["run_id"],
            kind=d["kind"],
            from_state=d["from_state"],
            to_state=d["to_state"],
            data=_load(d["data"], {}),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": iso(self.at),
            "task_id": self.task_id,
            "run_id": self.run_id,
            "kind": self.kind,
            "from": self.from_state,
            "to": self.to_state,
            "data": self.data,
        }


@dataclass
class CommandRow:
    id: int
    at: float
    kind: str
    task_id: str | None
    args: dict[str, Any]
    state: str
    result: str | None
    done_at: float | None
    client_pid: int | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> CommandRow:
        d = dict(row)
        d["args"] = _load(d["args"], {})
        return cls(**{f.name: d[f.name] for f in fields(cls)})
