"""``current_state.json``: an atomic snapshot of the store, the same document as ``status --json``
(built by state/statusdoc.py, written by state/atomicfile.py).

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
import fcntl
import math
import os
import sqlite3
import threading
import time
import weakref
from pathlib import Path

from hatchctl import logsetup
from hatchctl.state.atomicfile import write_atomic
from hatchctl.state.statusdoc import DocumentBuilder
from hatchctl.state.store import Store

# (re-exported: engine/remotecollect.py imports write_atomic from here)
__all__ = ["SnapshotExporter", "write_atomic"]

INTERVAL = 0.2  # seconds between two exports, at least
COST_FACTOR = 5.0  # ... and at least this many times what the last export took
IDLE_EXIT = 5.0  # the writer thread ends after this long with nothing to write
MAX_FAILURES = 3  # consecutive failed exports before waiting for the next commit


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
