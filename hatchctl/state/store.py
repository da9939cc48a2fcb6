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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hatchctl.errors import StoreBusyError, StoreError
from hatchctl.state import schema
from hatchctl.state.rows import CommandRow, EventRow, RunRow, TaskRow
from hatchctl.state.transitions import RUN_LIVE
from hatchctl.state.tx import Tx

__all__ = ["Changes", "RowCache", "RowWatch", "Store", "Tx"]


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

    def tasks(self, limit: int = -1, *, states: tuple[str, ...] = ()) -> list[TaskRow]:
        """Every task in the queue's order (priority, then id); the first ``limit`` if given;
        only those in ``states`` if given."""
        if states:
            rows = self._query(
                "SELECT * FROM tasks WHERE state IN (SELECT value FROM json_each(?)) "
                "ORDER BY priority DESC, id LIMIT ?",
                (json.dumps(list(states)), limit),
            )
        else:
            rows = self._query("SELECT * FROM tasks ORDER BY priority DESC, id LIMIT ?", (limit,))
        return [TaskRow.from_row(r) for r in rows]

    def task_states(self) -> dict[str, int]:
        """How many tasks are in each state."""
        rows = self._query("SELECT state, COUNT(*) FROM tasks GROUP BY state")
        return {str(r[0]): int(r[1]) for r in rows}

    def run(self, run_id: int) -> RunRow | None:
        rows = self._query("SELECT * FROM runs WHERE id = ?", (run_id,))
        return RunRow.from_row(rows[0]) if rows else None

    def runs(
        self,
        task_id: str | None = None,
        *,
        live_only: bool = False,
        task_ids: list[str] | None = None,
    ) -> list[RunRow]:
        """Runs in id order: of one task, of the tasks in ``task_ids`` (at most 500), or all."""
        sql = "SELECT * FROM runs"
        clauses: list[str] = []
        params: list[Any] = []
        if task_id is not None:
            clauses.append("task_id = ?")
            params.append(task_id)
        if task_ids is not None:
            clauses.append(f"task_id IN ({', '.join('?' for _ in task_ids[:_CHUNK])})")
            params.extend(task_ids[:_CHUNK])
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


@dataclass
class Changes:
    """The task and run rows inserted or updated since the last poll, and the ids deleted."""

    tasks: list[TaskRow] = field(default_factory=list)
    runs: list[RunRow] = field(default_factory=list)
    gone_tasks: list[str] = field(default_factory=list)
    gone_runs: list[int] = field(default_factory=list)


# per table: its row key, the id handed out, the version key; a block's checksum
_WATCHED = {
    "tasks": ("rowid", "id", "version, updated_at", "COUNT(*), SUM(version), TOTAL(updated_at)"),
    "runs": ("id", "id", "version", "COUNT(*), SUM(version), MAX(id)"),
}
_BLOCK = 8  # rows are compared in blocks of 256 rowids
_CHUNK = 500  # rows read whole per query (SQLite's default limit of bound parameters is 999)


class RowWatch:
    """What changed in ``tasks`` and ``runs`` since the last poll, at a cost that follows the
    change, not the store: ``PRAGMA data_version`` (and this connection's own changes) says
    whether anything was committed at all; then one checksum per block of 256 rows (count, sum
    of versions: every update bumps a row's version) finds the blocks that changed, only their
    rows' versions are compared, and only the rows that changed are read whole. The first poll
    reads everything. One watcher per reader (it remembers what that reader has seen). With
    ``runs=False`` only ``tasks`` is watched (``Changes.runs`` stays empty)."""

    def __init__(self, *, runs: bool = True) -> None:
        self.token: tuple[int, int] | None = None
        self.tables = [t for t in _WATCHED if runs or t != "runs"]
        self.blocks: dict[str, dict[int, tuple[Any, ...]]] = {t: {} for t in self.tables}
        # table -> block -> rowid -> (id, version key)
        self.rows: dict[str, dict[int, dict[int, tuple[Any, ...]]]] = {t: {} for t in self.tables}

    def poll(self, store: Store) -> Changes | None:
        """The changes since the last poll; None when nothing was committed since."""
        with store.read() as conn:
            version = int(conn.execute("PRAGMA data_version").fetchone()[0])
            token = (version, conn.total_changes)
            if token == self.token:
                return None
            self.token = token
            out = Changes()
            for table in self.tables:
                rows, gone = self._diff(conn, table)
                if table == "tasks":
                    out.tasks = [TaskRow.from_row(r) for r in rows]
                    out.gone_tasks = [str(g) for g in gone]
                else:
                    out.runs = [RunRow.from_row(r) for r in rows]
                    out.gone_runs = [int(g) for g in gone]
        return out

    def _diff(self, conn: sqlite3.Connection, table: str) -> tuple[list[sqlite3.Row], list[Any]]:
        """The rows inserted or updated in ``table`` (read whole), and the ids gone from it."""
        key, ident, version, checksum = _WATCHED[table]
        sql = f"SELECT {key} >> {_BLOCK}, {checksum} FROM {table} GROUP BY 1"  # noqa: S608
        now = {int(r[0]): tuple(r[1:]) for r in conn.execute(sql)}
        before, known = self.blocks[table], self.rows[table]
        self.blocks[table] = now
        if not before:  # the first poll: every row, in one query
            cur = conn.execute(f"SELECT {key}, * FROM {table}")  # noqa: S608
            cols = [d[0] for d in cur.description]
            at = [cols.index(c.strip(), 1) for c in (ident, *version.split(","))]
            rows = cur.fetchall()
            for r in rows:
                known.setdefault(r[0] >> _BLOCK, {})[r[0]] = tuple([r[i] for i in at])
            return rows, []
        changed: list[int] = []
        gone: list[Any] = []
        for block in sorted(b for b in now.keys() | before.keys() if now.get(b) != before.get(b)):
            old = known.pop(block, {})
            fresh = {
                r[0]: tuple(r[1:])
                for r in conn.execute(
                    f"SELECT {key}, {ident}, {version} FROM {table} "  # noqa: S608
                    f"WHERE {key} BETWEEN ? AND ?",
                    (block << _BLOCK, ((block + 1) << _BLOCK) - 1),
                )
            }
            changed += [rowid for rowid, new in fresh.items() if old.get(rowid) != new]
            for rowid, seen in old.items():
                new = fresh.get(rowid)
                if new is None or new[0] != seen[0]:  # deleted (or its rowid reused)
                    gone.append(seen[0])
            if fresh:
                known[block] = fresh
        return _whole(conn, table, changed), gone


class RowCache:
    """Every task and run as of the last poll, kept up to date from a RowWatch's changes: by id,
    each task's runs, and the task ids in the queue's order (priority, then id; the same list
    object while that order holds). ``runs=False``: tasks only (``runs`` stays empty)."""

    def __init__(self, *, runs: bool = True) -> None:
        self.watch = RowWatch(runs=runs)
        self.tasks: dict[str, TaskRow] = {}
        self.runs: dict[int, RunRow] = {}
        self.task_runs: dict[str, dict[int, RunRow]] = {}
        self.order: list[str] = []

    def poll(self, store: Store) -> tuple[set[str], list[str]] | None:
        """None when nothing was committed since the last poll; else the tasks whose rows (or
        runs' rows) changed, and the tasks gone."""
        changes = self.watch.poll(store)
        if changes is None:
            return None
        dirty: set[str] = set()
        for tid in changes.gone_tasks:
            self.tasks.pop(tid, None)
            self.task_runs.pop(tid, None)
        for rid in changes.gone_runs:
            gone = self.runs.pop(rid, None)
            if gone is not None:
                self.task_runs.get(gone.task_id, {}).pop(rid, None)
                dirty.add(gone.task_id)
        reorder = bool(changes.gone_tasks)
        for t in changes.tasks:
            old = self.tasks.get(t.id)
            reorder = reorder or old is None or old.priority != t.priority
            self.tasks[t.id] = t
            dirty.add(t.id)
        for r in changes.runs:
            self.runs[r.id] = r
            self.task_runs.setdefault(r.task_id, {})[r.id] = r
            dirty.add(r.task_id)
        if reorder:
            self.order = [
                t.id for t in sorted(self.tasks.values(), key=lambda t: (-t.priority, t.id))
            ]
        return dirty & self.tasks.keys(), changes.gone_tasks


def _whole(conn: sqlite3.Connection, table: str, rowids: list[int]) -> list[sqlite3.Row]:
    key = _WATCHED[table][0]
    out: list[sqlite3.Row] = []
    for at in range(0, len(rowids), _CHUNK):
        part = rowids[at : at + _CHUNK]
        marks = ", ".join("?" for _ in part)
        sql = f"SELECT * FROM {table} WHERE {key} IN ({marks}) ORDER BY {key}"  # noqa: S608
        out += conn.execute(sql, part).fetchall()
    return out
