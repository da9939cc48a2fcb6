"""The SQLite (WAL) store: the single source of truth for tasks, runs, events, locks, commands.

Every write is one ``BEGIN IMMEDIATE`` transaction. State changes are compare-and-set against the
current state and the transition table, and append an event carrying task and run ids. After each
commit the ``on_commit`` callback (the snapshot exporter) runs.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hatchctl.errors import StoreBusyError, StoreError, TransitionError
from hatchctl.state import schema
from hatchctl.state.rows import CommandRow, EventRow, RunRow, TaskRow
from hatchctl.state.transitions import RUN_LIVE, run_transition_allowed, task_transition_allowed

_TASK_COLUMNS = frozenset(TaskRow.__dataclass_fields__) - {"id", "version", "created_at"}
_RUN_COLUMNS = frozenset(RunRow.__dataclass_fields__) - {"id", "version"}
_JSON_COLUMNS = frozenset({"depends_on", "files", "errors", "args", "data"})


def _encode(column: str, value: Any) -> Any:
    if column in _JSON_COLUMNS and not isinstance(value, str):
        return json.dumps(value, sort_keys=True)
    return value


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


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
        allowed = (frm,) if isinstance(frm, str) else frm
        current = self.task(task_id)
        if current is None:
            raise TransitionError(f"no task {task_id!r}")
        if current.state not in allowed:
            raise TransitionError(
                f"task {task_id} is {current.state}, expected {'|'.join(allowed)} (wanted {to})"
            )
        if current.state != to and not task_transition_allowed(current.state, to):
            raise TransitionError(f"task transition {current.state} -> {to} is not allowed")
        row = self._set_task(task_id, current.state, {**fields, "state": to})
        self.event(kind, task_id=task_id, run_id=run_id, frm=current.state, to=to, data=data)
        return row

    def _set_task(self, task_id: str, expect_state: str | None, fields: dict[str, Any]) -> TaskRow:
        bad = set(fields) - _TASK_COLUMNS
        if bad:
            raise ValueError(f"unknown task columns: {sorted(bad)}")
        cols = {k: _encode(k, v) for k, v in fields.items()}
        cols["updated_at"] = self.now
        sets = ", ".join(f"{k} = ?" for k in cols)
        sql = f"UPDATE tasks SET {sets}, version = version + 1 WHERE id = ?"  # noqa: S608
        params: list[Any] = [*cols.values(), task_id]
        if expect_state is not None:
            sql += " AND state = ?"
            params.append(expect_state)
        try:
            cur = self.conn.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise TransitionError(f"task {task_id}: {exc}") from None
        if cur.rowcount != 1:
            raise TransitionError(f"task {task_id} changed underneath (compare-and-set failed)")
        row = self.task(task_id)
        assert row is not None
        return row

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
        allowed = (frm,) if isinstance(frm, str) else frm
        current = self.run(run_id)
        if current is None:
            raise TransitionError(f"no run {run_id}")
        if current.state not in allowed:
            raise TransitionError(
                f"run {run_id} is {current.state}, expected {'|'.join(allowed)} (wanted {to})"
            )
        if not run_transition_allowed(current.state, to):
            raise TransitionError(f"run transition {current.state} -> {to} is not allowed")
        row = self._set_run(run_id, current.state, {**fields, "state": to})
        self.event(kind, task_id=row.task_id, run_id=run_id, frm=current.state, to=to, data=data)
        return row

    def _set_run(self, run_id: int, expect_state: str | None, fields: dict[str, Any]) -> RunRow:
        bad = set(fields) - _RUN_COLUMNS
        if bad:
            raise ValueError(f"unknown run columns: {sorted(bad)}")
        sets = ", ".join(f"{k} = ?" for k in fields)
        sql = f"UPDATE runs SET {sets}, version = version + 1 WHERE id = ?"  # noqa: S608
        params: list[Any] = [*fields.values(), run_id]
        if expect_state is not None:
            sql += " AND state = ?"
            params.append(expect_state)
        try:
            cur = self.conn.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise TransitionError(f"run {run_id}: {exc}") from None
        if cur.rowcount != 1:
            raise TransitionError(f"run {run_id} changed underneath (compare-and-set failed)")
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


class Store:
    """A connection to ``.hatch/hatch.db``. Thread-safe (one lock around the connection)."""

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        on_commit: Callable[[Store], None] | None = None,
    ) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.clock = clock
        self.on_commit = on_commit
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            self._conn.row_factory = sqlite3.Row
            self._pragma("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            with self._write() as conn:
                schema.install(conn)
        except StoreBusyError:
            raise
        except (sqlite3.DatabaseError, OSError) as exc:
            raise StoreError(f"cannot open state database {path}: {exc}") from None

    def _pragma(self, sql: str) -> None:
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                self._conn.execute(sql)
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- transactions ---------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            deadline = time.monotonic() + self.busy_timeout
            while True:
                try:
                    self._conn.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError as exc:
                    if not _is_busy(exc):
                        raise StoreError(f"state database {self.path}: {exc}") from None
                    if time.monotonic() > deadline:
                        raise StoreBusyError(
                            f"state database {self.path} is locked by another process "
                            f"(gave up after {self.busy_timeout:g}s)"
                        ) from None
                    time.sleep(0.05)
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                self._conn.execute("ROLLBACK")
                raise StoreBusyError(f"state database {self.path}: commit failed: {exc}") from None

    @contextmanager
    def tx(self) -> Iterator[Tx]:
        """One write transaction; ``on_commit`` runs after it commits."""
        with self._write() as conn:
            yield Tx(conn, self.clock())
        if self.on_commit is not None:
            self.on_commit(self)

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent read snapshot across several queries."""
        with self._lock:
            try:
                self._conn.execute("BEGIN")
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"state database {self.path}: {exc}") from None
            try:
                yield self._conn
            finally:
                self._conn.execute("COMMIT")

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return list(self._conn.execute(sql, params).fetchall())
            except sqlite3.OperationalError as exc:
                if _is_busy(exc):
                    raise StoreBusyError(f"state database {self.path} is locked: {exc}") from None
                raise StoreError(f"state database {self.path}: {exc}") from None

    # -- reads ----------------------------------------------------------------------------
    def task(self, task_id: str) -> TaskRow | None:
        rows = self._query("SELECT * FROM tasks WHERE id = ?", (task_id,))
        return TaskRow.from_row(rows[0]) if rows else None

    def tasks(self) -> list[TaskRow]:
        rows = self._query("SELECT * FROM tasks ORDER BY priority DESC, id")
        return [TaskRow.from_row(r) for r in rows]

    def run(self, run_id: int) -> RunRow | None:
        rows = self._query("SELECT * FROM runs WHERE id = ?", (run_id,))
        return RunRow.from_row(rows[0]) if rows else None

    def runs(self, task_id: str | None = None, *, live_only: bool = False) -> list[RunRow]:
        sql = "SELECT * FROM runs"
        clauses: list[str] = []
        params: list[Any] = []
        if task_id is not None:
            clauses.append("task_id = ?")
            params.append(task_id)
        if live_only:
            clauses.append(f"state IN ({', '.join('?' for _ in RUN_LIVE)})")
            params.extend(sorted(RUN_LIVE))
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        return [RunRow.from_row(r) for r in self._query(sql + " ORDER BY id", tuple(params))]

    def events(
        self, task_id: str | None = None, *, after: int = 0, limit: int | None = None
    ) -> list[EventRow]:
        sql = "SELECT * FROM events WHERE id > ?"
        params: list[Any] = [after]
        if task_id is not None:
            sql += " AND task_id = ?"
            params.append(task_id)
        sql += " ORDER BY id"
        if limit is not None:
            sql = f"SELECT * FROM ({sql.replace('ORDER BY id', 'ORDER BY id DESC')} LIMIT ?) ORDER BY id"  # noqa: S608
            params.append(limit)
        return [EventRow.from_row(r) for r in self._query(sql, tuple(params))]

    def last_event_id(self) -> int:
        rows = self._query("SELECT COALESCE(MAX(id), 0) FROM events")
        return int(rows[0][0])

    def locks(self) -> dict[str, str]:
        return {r["path"]: r["task_id"] for r in self._query("SELECT path, task_id FROM locks")}

    def meta(self, key: str, default: str | None = None) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else default

    # -- commands (written by clients, consumed by the supervisor) -------------------------
    def enqueue_command(self, kind: str, task_id: str | None = None, **args: Any) -> int:
        with self.tx() as tx:
            cur = tx.conn.execute(
                "INSERT INTO commands(at, kind, task_id, args, client_pid) VALUES (?, ?, ?, ?, ?)",
                (tx.now, kind, task_id, json.dumps(args, sort_keys=True), os.getpid()),
            )
            command_id = int(cur.lastrowid or 0)
            tx.event(
                "command_queued", task_id=task_id, data={"command": kind, "id": command_id, **args}
            )
        return command_id

    def pending_commands(self) -> list[CommandRow]:
        rows = self._query("SELECT * FROM commands WHERE state = 'pending' ORDER BY id")
        return [CommandRow.from_row(r) for r in rows]

    def command(self, command_id: int) -> CommandRow | None:
        rows = self._query("SELECT * FROM commands WHERE id = ?", (command_id,))
        return CommandRow.from_row(rows[0]) if rows else None
