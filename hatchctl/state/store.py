"""The SQLite (WAL) store: the single source of truth for tasks, runs, events, locks, commands.

Every write is one ``BEGIN IMMEDIATE`` transaction. State changes are compare-and-set against the
current state and the transition table, and append an event carrying task and run ids. After each
commit the ``on_commit`` callback runs; the snapshot exporter only marks the snapshot dirty (it is
written in the background, at most every 0.2 s) and ``flush()``/``close()`` write what is pending.
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

from hatchctl.errors import StoreBusyError, StoreError
from hatchctl.state import schema
from hatchctl.state.rows import CommandRow, EventRow, RunRow, TaskRow
from hatchctl.state.transitions import RUN_LIVE
from hatchctl.state.tx import Tx

__all__ = ["Store", "Tx"]


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


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
            if not schema.is_current(self._conn):  # a current database is only read here
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

    def flush(self) -> None:
        """Write now what ``on_commit`` deferred (the snapshot), on this thread."""
        flush = getattr(self.on_commit, "flush", None)
        if callable(flush):
            flush()

    def close(self) -> None:
        """Flush and stop ``on_commit`` (a command that commits and exits leaves a current
        snapshot), then close the connection."""
        close = getattr(self.on_commit, "close", None)
        if callable(close):
            close()
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
                if self._conn.in_transaction:  # SQLite rolls back itself on SQLITE_FULL/IOERR
                    self._conn.execute("ROLLBACK")
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise StoreBusyError(f"state database {self.path}: commit failed: {exc}") from None

    @contextmanager
    def tx(self) -> Iterator[Tx]:
        """One write transaction; ``on_commit`` runs after it commits (cheap: the snapshot
        exporter only marks itself dirty)."""
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
