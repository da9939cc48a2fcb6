"""``current_state.json``: an atomic snapshot of the store, the same document as ``status --json``.

The export is coalesced and incremental, never on the committing thread:

* a commit only marks the exporter dirty (``SnapshotExporter.__call__``, O(1));
* a background thread writes the file at most every ``interval`` seconds (0.2 s; longer on a store
  so big that one export costs more than a fifth of that interval), reading the database through
  its own connection, so the newest committed state always wins;
* only tasks whose row changed (version, update time, state or priority: every write through
  ``Tx`` bumps version and update time) or whose runs' metrics changed are re-encoded, the rest
  of the document is reused text;
* ``flush()`` (``Store.flush``/``Store.close``, and at interpreter exit) writes what is pending on
  the calling thread, so a command that commits and exits still leaves a current file.

The file is written with a temp file, fsync and rename (readers see the old or the new document),
is private (0600), and exports of several processes are serialised by an flock. Readers that need
the exact state read the database.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import math
import os
import sqlite3
import threading
import time
import weakref
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from hatchctl import logsetup
from hatchctl.state import metrics
from hatchctl.state.lockfile import probe
from hatchctl.state.rows import TaskRow, iso
from hatchctl.state.store import Store
from hatchctl.state.transitions import TASK_STATES

INTERVAL = 0.2  # seconds between two exports, at least
COST_FACTOR = 5.0  # ... and at least this many times what the last export took
IDLE_EXIT = 5.0  # the writer thread ends after this long with nothing to write
MAX_FAILURES = 3  # consecutive failed exports before waiting for the next commit


def task_json(task: TaskRow, pane_id: str | None = None) -> dict[str, Any]:
    return {
        "id": task.id,
        "title": task.title,
        "state": task.state,
        "phase": task.phase,
        "iteration": task.iteration,
        "attempt": task.attempt,
        "strikes": task.strikes,
        "restarts": task.restarts,
        "depends_on": task.depends_on,
        "branch": task.branch,
        "worktree": task.worktree,
        "pane_id": pane_id if pane_id is not None else task.pane_id,
        "failure_class": task.failure_class,
        "last_error": task.last_error,
        "errors": task.errors,
        "next_retry_at": iso(task.next_retry_at),
        "spec_changed": task.pending_digest is not None,
        "held": bool(task.held),
        "feature": task.feature,
    }


def status_document(store: Store, project: str, lock_path: Path) -> dict[str, Any]:
    with store.read() as conn:
        tasks = [
            TaskRow.from_row(r)
            for r in conn.execute("SELECT * FROM tasks ORDER BY priority DESC, id")
        ]
        meta = {r[0]: r[1] for r in conn.execute("SELECT key, value FROM meta")}
        per_task: dict[str, list[dict[str, Any]]] = {}
        for task_id, raw in conn.execute("SELECT task_id, metrics FROM runs WHERE metrics != '{}'"):
            try:
                per_task.setdefault(task_id, []).append(json.loads(raw))
            except ValueError:
                continue
    task_metrics = {tid: metrics.total(ms) for tid, ms in per_task.items()}
    counts = dict.fromkeys(TASK_STATES, 0)
    for t in tasks:
        counts[t.state] = counts.get(t.state, 0) + 1
    lock = probe(lock_path)
    return {
        "project": project,
        "supervisor": {"running": lock.held, "pid": lock.pid if lock.held else None},
        "paused": meta.get("paused") == "1",
        "pause_reason": meta.get("pause_reason") or None,
        "counts": counts,
        "metrics": metrics.total(task_metrics.values()),
        "tasks": [{**task_json(t), "metrics": task_metrics.get(t.id, {})} for t in tasks],
    }


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """temp file in the same directory (0600, made afresh: never through a link or into a file
    left there), fsync, rename: readers see the old or the new file, never none; the rename
    replaces a link at ``path`` itself. The temporary name is this thread's own. ``durable``
    False: no fsync, for a file nothing needs after an OS crash (its callers say why)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


# -- the incremental document ---------------------------------------------------------------
# Every write through Tx bumps a task's version and update time; the state and priority are in
# the key too, so a state set with plain SQL is seen as well.
_FINGERPRINT = (
    "SELECT COUNT(*), TOTAL(version), TOTAL(updated_at), TOTAL(priority), "  # noqa: S608 (constants)
    + ", ".join(f"SUM(state = '{s}')" for s in TASK_STATES)
    + " FROM tasks"
)
_ORDER = "SELECT id, version, updated_at, state, priority FROM tasks ORDER BY priority DESC, id"
_METRICS = "SELECT task_id, metrics FROM runs WHERE metrics != '{}' ORDER BY id"
_METRICS_FINGERPRINT = "SELECT COUNT(*), TOTAL(version), MAX(id) FROM runs WHERE metrics != '{}'"
_CHUNK = 500  # ids per "WHERE id IN (...)"


def _fragment(doc: dict[str, Any]) -> str:
    """One task as ``json.dumps(status, indent=2, sort_keys=True)`` lays it out in the list."""
    return "    " + json.dumps(doc, indent=2, sort_keys=True).replace("\n", "\n    ")


class _Entry:
    """One task's part of the document: its change key, row, metrics and encoded text."""

    __slots__ = ("key", "metrics", "row", "text")

    def __init__(
        self, key: tuple[Any, ...], row: TaskRow, task_metrics: dict[str, Any], text: str
    ) -> None:
        self.key = key
        self.row = row
        self.metrics = task_metrics
        self.text = text


class DocumentBuilder:
    """Renders the status document exactly as ``json.dumps(status_document(...), indent=2,
    sort_keys=True) + "\\n"`` would, re-reading and re-encoding only the tasks that changed."""

    def __init__(self, project: str, lock_path: Path) -> None:
        self.project = project
        self.lock_path = lock_path
        self._entries: dict[str, _Entry] = {}
        self._order: list[str] = []
        self._counts: dict[str, int] = dict.fromkeys(TASK_STATES, 0)
        self._fingerprint: tuple[Any, ...] | None = None
        self._metric_rows: list[tuple[str, str]] | None = None
        self._metrics_fingerprint: tuple[Any, ...] | None = None
        self._parsed: dict[str, dict[str, Any] | None] = {}
        self._task_metrics: dict[str, dict[str, Any]] = {}
        self._total: dict[str, Any] = {}
        self._head: dict[str, Any] | None = None
        self.encoded = 0  # tasks (re-)encoded so far: what being incremental saves

    def render(self, conn: sqlite3.Connection, *, force: bool = False) -> bytes | None:
        """The document, or None when it is the same as the last one rendered (and not
        ``force``)."""
        conn.execute("BEGIN")  # one read snapshot for every query
        try:
            fingerprint = tuple(conn.execute(_FINGERPRINT).fetchone())
            order: list[tuple[Any, ...]] | None = None
            stale: list[tuple[Any, ...]] = []
            fresh: dict[str, TaskRow] = {}
            if fingerprint != self._fingerprint:
                order = conn.execute(_ORDER).fetchall()
                entries = self._entries
                stale = [k for k in order if (e := entries.get(k[0])) is None or e.key != k]
                fresh = self._fetch(conn, [k[0] for k in stale], whole=len(stale) > len(order) // 2)
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            metrics_fingerprint = tuple(conn.execute(_METRICS_FINGERPRINT).fetchone())
            metric_rows = None
            if metrics_fingerprint != self._metrics_fingerprint:
                metric_rows = conn.execute(_METRICS).fetchall()
        finally:
            conn.execute("COMMIT")
        metrics_changed = set()
        if metric_rows is not None:
            metrics_changed = self._update_metrics(metric_rows)
            self._metrics_fingerprint = metrics_fingerprint
        lock = probe(self.lock_path)
        head = {
            "project": self.project,
            "supervisor": {"running": lock.held, "pid": lock.pid if lock.held else None},
            "paused": meta.get("paused") == "1",
            "pause_reason": meta.get("pause_reason") or None,
            "metrics": self._total,
        }
        if order is None and not metrics_changed and head == self._head and not force:
            return None
        self._fingerprint, self._head = fingerprint, head
        if order is not None:
            self._reorder(order, stale, fresh)
        for tid in metrics_changed:
            entry = self._entries.get(tid)
            if entry is not None and entry.metrics != self._task_metrics.get(tid, {}):
                self._encode(entry.key, entry.row)
        text = json.dumps({**head, "counts": self._counts}, indent=2, sort_keys=True)
        entries = self._entries
        fragments = [entries[tid].text for tid in self._order]
        # "tasks" sorts after every other key: it goes last, where json.dumps would put it
        tasks = "[\n" + ",\n".join(fragments) + "\n  ]" if fragments else "[]"
        return (text[: -len("\n}")] + ',\n  "tasks": ' + tasks + "\n}\n").encode()

    def _reorder(
        self, order: list[tuple[Any, ...]], stale: list[tuple[Any, ...]], fresh: dict[str, TaskRow]
    ) -> None:
        ids = [k[0] for k in order]
        entries = self._entries
        if len(entries) + len(stale) != len(ids):  # some task is gone from the store
            for tid in entries.keys() - set(ids):
                del entries[tid]
        for key in stale:
            self._encode(key, fresh[key[0]])
        self._order = ids
        counts = dict.fromkeys(TASK_STATES, 0)
        counts.update(Counter(k[3] for k in order))
        self._counts = counts

    def _encode(self, key: tuple[Any, ...], row: TaskRow) -> None:
        task_metrics = self._task_metrics.get(row.id, {})
        text = _fragment({**task_json(row), "metrics": task_metrics})
        self._entries[row.id] = _Entry(key, row, task_metrics, text)
        self.encoded += 1

    def _fetch(
        self, conn: sqlite3.Connection, ids: list[str], *, whole: bool
    ) -> dict[str, TaskRow]:
        if not ids:
            return {}
        if whole:
            cursors: Iterable[sqlite3.Cursor] = [conn.execute("SELECT * FROM tasks")]
        else:
            cursors = (
                conn.execute(
                    f"SELECT * FROM tasks WHERE id IN ({', '.join('?' * len(part))})",  # noqa: S608
                    part,
                )
                for part in (ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK))
            )
        out: dict[str, TaskRow] = {}
        for cur in cursors:
            names = [d[0] for d in cur.description]
            for values in cur.fetchall():
                # TaskRow.from_row only needs a mapping of the columns
                row = TaskRow.from_row(cast(sqlite3.Row, dict(zip(names, values, strict=True))))
                out[row.id] = row
        return out

    def _update_metrics(self, rows: list[tuple[str, str]]) -> set[str]:
        """Per-task and project totals, summed in the order ``status_document`` sums them (so
        the figures are the same); recomputed only when some run's metrics changed. Returns the
        tasks whose totals changed."""
        if rows == self._metric_rows:
            return set()
        parsed: dict[str, dict[str, Any] | None] = {}
        per_task: dict[str, list[dict[str, Any]]] = {}
        for task_id, raw in rows:
            if raw in parsed:
                value = parsed[raw]
            elif raw in self._parsed:
                value = parsed[raw] = self._parsed[raw]
            else:
                try:
                    loaded = json.loads(raw)
                    value = loaded if isinstance(loaded, dict) else None
                except ValueError:
                    value = None
                parsed[raw] = value
            if value is not None:
                per_task.setdefault(task_id, []).append(value)
        before = self._task_metrics
        after = {tid: metrics.total(ms) for tid, ms in per_task.items()}
        self._parsed, self._metric_rows, self._task_metrics = parsed, rows, after
        self._total = metrics.total(after.values())
        return {tid for tid in before.keys() | after.keys() if before.get(tid) != after.get(tid)}


# -- the exporter ---------------------------------------------------------------------------
_LIVE: weakref.WeakSet[SnapshotExporter] = weakref.WeakSet()


def _flush_at_exit() -> None:
    for exporter in list(_LIVE):
        exporter.flush(at_exit=True)


atexit.register(_flush_at_exit)


class SnapshotExporter:
    """The store's ``on_commit`` callback: marks the snapshot dirty; a background thread
    exports it at most every ``interval`` seconds; ``flush``/``close`` export what is pending.
    Serialised by an flock (between processes) and a lock (between threads): the newest state
    wins."""

    def __init__(
        self, path: Path, project: str, lock_path: Path, *, interval: float = INTERVAL
    ) -> None:
        self.path = path
        self.project = project
        self.lock_path = lock_path
        self.interval = interval
        self.exports = 0  # exports done (files written, or found unchanged)
        self.unchanged = 0  # ... of which found the document unchanged: nothing written
        self.failures = 0  # exports that failed (logged; retried)
        self._must_write = True
        self._builder = DocumentBuilder(project, lock_path)
        self._cond = threading.Condition()
        self._export_lock = threading.Lock()
        self._dirty = False
        self._closed = False
        self._db: Path | None = None
        self._conn: sqlite3.Connection | None = None
        self._conn_db: Path | None = None
        self._thread: threading.Thread | None = None
        self._last_start = -math.inf
        self._last_cost = 0.0
        self._failed_in_row = 0
        self._pid = os.getpid()
        self.log = logsetup.get(component="snapshot")
        _LIVE.add(self)

    # -- on the committing thread: O(1) ---------------------------------------------------
    def __call__(self, store: Store) -> None:
        with self._cond:
            self._db = store.path
            was_dirty, self._dirty = self._dirty, True
            self._failed_in_row = 0
            if self._closed:
                background = False
            elif self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="hatch-snapshot", daemon=True
                )
                self._thread.start()
                background = True
            else:
                if not was_dirty:
                    self._cond.notify()
                background = True
        if not background:  # closed: nobody would write it later
            self.flush()

    # -- the writer thread -----------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        finally:
            with self._cond:
                if self._thread is threading.current_thread():
                    self._thread = None  # ended by a bug: the next commit starts another
        with self._export_lock:  # an idle exporter holds no connection
            if self._thread is None and self._conn is not None:
                self._conn.close()
                self._conn = None

    def _loop(self) -> None:
        while True:
            with self._cond:
                idle_until = time.monotonic() + IDLE_EXIT
                while not self._dirty and not self._closed:
                    left = idle_until - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                if not self._dirty or self._closed:  # idle or closed: a commit starts another
                    self._thread = None
                    break
                gap = self._last_start + max(self.interval, COST_FACTOR * self._last_cost)
                wait = gap - time.monotonic()
                if wait > 0:  # commits arriving meanwhile are coalesced into the next export
                    self._cond.wait(wait)
                    continue
            self._export_pending()

    # -- exports ---------------------------------------------------------------------------
    def flush(self, *, at_exit: bool = False) -> bool:
        """Write the snapshot now if a commit is not yet in it (on this thread). False when
        there was nothing to write or the export failed (logged)."""
        if at_exit and os.getpid() != self._pid:
            return False  # a forked child: the parent's state is not its to write
        return self._export_pending()

    def close(self) -> None:
        """Flush, then stop the writer thread and drop the connection (``Store.close``)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        self.flush()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        with self._export_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _export_pending(self) -> bool:
        with self._export_lock:
            with self._cond:
                if not self._dirty or self._db is None:
                    return False
                self._dirty = False
                db = self._db
                self._last_start = time.monotonic()
            t0 = time.perf_counter()
            try:
                self._export(db)
            except Exception as exc:  # a derived file must never break the process writing it
                self.failures += 1
                with self._cond:
                    self._failed_in_row += 1
                    if self._failed_in_row < MAX_FAILURES:
                        self._dirty = True  # retried after the interval
                self._last_cost = max(time.perf_counter() - t0, 1.0)
                if self._conn is not None:  # whatever state it was left in: a fresh one next time
                    self._conn.close()
                    self._conn = None
                self.log.warning("snapshot_export_failed", path=str(self.path), error=repr(exc))
                return False
            self._last_cost = time.perf_counter() - t0
            self.exports += 1
            return True

    def _export(self, db: Path) -> None:
        guard = self.path.with_name(self.path.name + ".lock")
        fd = os.open(guard, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # unchanged (only runs' activity was committed): nothing to write, unless the last
            # write failed or the file is gone
            force = self._must_write or not self.path.exists()
            self._must_write = True
            data = self._builder.render(self._connection(db), force=force)
            if data is None:
                self.unchanged += 1
            else:
                write_atomic(self.path, data)
            self._must_write = False
        finally:
            os.close(fd)

    def _connection(self, db: Path) -> sqlite3.Connection:
        """Our own read-only connection: the export never holds the store's lock."""
        if self._conn is not None and self._conn_db != db:
            self._conn.close()
            self._conn = None
        if self._conn is None:
            conn = sqlite3.connect(
                str(db), timeout=5.0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA query_only=ON")
            self._conn, self._conn_db = conn, db
        return self._conn
