"""One write transaction of the store: compare-and-set transitions that append events, runs,
file locks, commands and meta. Obtained from ``Store.tx()``; never used outside it."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from hatchctl.errors import TransitionError
from hatchctl.state.rows import RunRow, TaskRow
from hatchctl.state.transitions import run_transition_allowed, task_transition_allowed

_TASK_COLUMNS = frozenset(TaskRow.__dataclass_fields__) - {"id", "version", "created_at"}
_RUN_COLUMNS = frozenset(RunRow.__dataclass_fields__) - {"id", "version"}
_JSON_COLUMNS = frozenset({"depends_on", "files", "errors", "args", "data", "metrics"})


def _encode(column: str, value: Any) -> Any:
    if column in _JSON_COLUMNS and not isinstance(value, str):
        return json.dumps(value, sort_keys=True)
    return value


def _checked(
    machine: str,
    row_id: object,
    current: str | None,
    frm: str | tuple[str, ...],
    to: str,
    *,
    same_ok: bool,
) -> str:
    """The current state, if it is one of ``frm`` and the table allows going to ``to``."""
    allowed = (frm,) if isinstance(frm, str) else frm
    if current is None:
        raise TransitionError(f"no {machine} {row_id!r}")
    if current not in allowed:
        raise TransitionError(
            f"{machine} {row_id} is {current}, expected {'|'.join(allowed)} (wanted {to})"
        )
    table = task_transition_allowed if machine == "task" else run_transition_allowed
    if not (same_ok and current == to) and not table(current, to):
        raise TransitionError(f"{machine} transition {current} -> {to} is not allowed")
    return current


class Tx:
    """Operations inside one write transaction. Obtained from ``Store.tx()``."""

    def __init__(self, conn: sqlite3.Connection, now: float) -> None:
        self.conn = conn
        self.now = now

    # -- events ---------------------------------------------------------------------------
    def event(
        self,
        kind: str,
        *,
        task_id: str | None = None,
        run_id: int | None = None,
        frm: str | None = None,
        to: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> int:
        cur = self.conn.execute(
            "INSERT INTO events(at, task_id, run_id, kind, from_state, to_state, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self.now, task_id, run_id, kind, frm, to, json.dumps(data or {}, sort_keys=True)),
        )
        return int(cur.lastrowid or 0)

    # -- tasks ----------------------------------------------------------------------------
    def task(self, task_id: str) -> TaskRow | None:
        row = self.conn.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return TaskRow.from_row(row) if row else None

    def insert_task(self, task_id: str, **fields: Any) -> None:
        cols = {k: _encode(k, v) for k, v in fields.items() if k in _TASK_COLUMNS}
        cols.update(id=task_id, created_at=self.now, updated_at=self.now)
        names = ", ".join(cols)
        marks = ", ".join("?" for _ in cols)
        self.conn.execute(f"INSERT INTO tasks({names}) VALUES ({marks})", tuple(cols.values()))  # noqa: S608
        self.event(
            "task_created", task_id=task_id, to="pending", data={"title": fields.get("title")}
        )

    def update_task(self, task_id: str, **fields: Any) -> TaskRow:
        """Change non-state columns (counters, phase, paths). Not for state changes."""
        if "state" in fields:
            raise ValueError("use transition_task to change a task's state")
        return self._set_task(task_id, None, fields)

    def transition_task(
        self,
        task_id: str,
        frm: str | tuple[str, ...],
        to: str,
        *,
        kind: str = "task_state",
        data: dict[str, Any] | None = None,
        run_id: int | None = None,
        **fields: Any,
    ) -> TaskRow:
        """Compare-and-set ``state`` from ``frm`` (one or several) to ``to``, plus an event."""
        current = self.task(task_id)
        state = _checked("task", task_id, current.state if current else None, frm, to, same_ok=True)
        row = self._set_task(task_id, state, {**fields, "state": to})
        self.event(kind, task_id=task_id, run_id=run_id, frm=state, to=to, data=data)
        return row

    def _set_task(self, task_id: str, expect_state: str | None, fields: dict[str, Any]) -> TaskRow:
        self._update(
            "tasks", _TASK_COLUMNS, task_id, expect_state, {**fields, "updated_at": self.now}
        )
        row = self.task(task_id)
        assert row is not None
        return row

    def _update(
        self,
        table: str,
        allowed: frozenset[str],
        row_id: object,
        expect_state: str | None,
        fields: dict[str, Any],
    ) -> None:
        """One row's UPDATE, bumping its version; with ``expect_state``, a compare-and-set."""
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"unknown {table} columns: {sorted(bad)}")
        cols = {k: _encode(k, v) for k, v in fields.items()}
        sets = ", ".join(f"{k} = ?" for k in cols)
        sql = f"UPDATE {table} SET {sets}, version = version + 1 WHERE id = ?"  # noqa: S608
        params: list[Any] = [*cols.values(), row_id]
        if expect_state is not None:
            sql += " AND state = ?"
            params.append(expect_state)
        what = f"{table[:-1]} {row_id}"
        try:
            cur = self.conn.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise TransitionError(f"{what}: {exc}") from None
        if cur.rowcount != 1:
            raise TransitionError(f"{what} changed underneath (compare-and-set failed)")

    # -- runs -----------------------------------------------------------------------------
    def run(self, run_id: int) -> RunRow | None:
        row = self.conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return RunRow.from_row(row) if row else None

    def insert_run(self, **fields: Any) -> RunRow:
        cols = {k: v for k, v in fields.items() if k in _RUN_COLUMNS}
        cols.setdefault("started_at", self.now)
        names = ", ".join(cols)
        marks = ", ".join("?" for _ in cols)
        cur = self.conn.execute(f"INSERT INTO runs({names}) VALUES ({marks})", tuple(cols.values()))  # noqa: S608
        run_id = int(cur.lastrowid or 0)
        run = self.run(run_id)
        assert run is not None
        self.event(
            "run_created",
            task_id=run.task_id,
            run_id=run_id,
            to="starting",
            data={"role": run.role, "iteration": run.iteration, "attempt": run.attempt},
        )
        return run

    def update_run(self, run_id: int, **fields: Any) -> RunRow:
        if "state" in fields:
            raise ValueError("use transition_run to change a run's state")
        return self._set_run(run_id, None, fields)

    def transition_run(
        self,
        run_id: int,
        frm: str | tuple[str, ...],
        to: str,
        *,
        kind: str = "run_state",
        data: dict[str, Any] | None = None,
        **fields: Any,
    ) -> RunRow:
        current = self.run(run_id)
        state = _checked("run", run_id, current.state if current else None, frm, to, same_ok=False)
        row = self._set_run(run_id, state, {**fields, "state": to})
        self.event(kind, task_id=row.task_id, run_id=run_id, frm=state, to=to, data=data)
        return row

    def _set_run(self, run_id: int, expect_state: str | None, fields: dict[str, Any]) -> RunRow:
        self._update("runs", _RUN_COLUMNS, run_id, expect_state, fields)
        row = self.run(run_id)
        assert row is not None
        return row

    # -- file locks (declared write sets) ------------------------------------------------
    def acquire_locks(self, task_id: str, paths: list[str]) -> dict[str, str]:
        """Lock every path for ``task_id``, all or nothing. Returns conflicts {path: holder}."""
        conflicts: dict[str, str] = {}
        for p in paths:
            row = self.conn.execute("SELECT task_id FROM locks WHERE path = ?", (p,)).fetchone()
            if row and row[0] != task_id:
                conflicts[p] = row[0]
        if conflicts:
            return conflicts
        for p in paths:
            self.conn.execute(
                "INSERT OR REPLACE INTO locks(path, task_id, acquired_at) VALUES (?, ?, ?)",
                (p, task_id, self.now),
            )
        return {}

    def delete_task(self, task_id: str) -> None:
        """Remove a task with its runs and locks (``hatchctl forget``); its events and commands
        stay (the audit trail; a command still queued for it fails as "no task")."""
        self.conn.execute("DELETE FROM locks WHERE task_id = ?", (task_id,))
        self.conn.execute("DELETE FROM runs WHERE task_id = ?", (task_id,))
        self.conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))

    def release_locks(self, task_id: str) -> int:
        return self.conn.execute("DELETE FROM locks WHERE task_id = ?", (task_id,)).rowcount

    # -- commands & meta -------------------------------------------------------------------
    def finish_command(self, command_id: int, ok: bool, result: str) -> None:
        self.conn.execute(
            "UPDATE commands SET state = ?, result = ?, done_at = ? WHERE id = ? AND state = 'pending'",
            ("done" if ok else "failed", result, self.now, command_id),
        )

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))
