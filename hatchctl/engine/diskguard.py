"""A full disk is a state, not a crash: the supervisor pauses with ``disk_full`` and resumes on
its own when space returns.

The probe is the free space of the filesystem holding ``.hatch/`` (``os.statvfs``, each pass)
against ``[limits] min_free_mb`` (0 disables it). A pass that fails with a disk-full error
(ENOSPC/EDQUOT, SQLite's SQLITE_FULL, anywhere in the exception chain) is the other way in; the
error's text can come from a command's output, so it only counts when the disk confirms it (the
probe is short or a test write fails). While full, the supervisor only calls :meth:`poll` each
tick: no launches, no jobs, no pass retried into a storm of tracebacks; live agents are left
alone and whatever they did meanwhile is picked up by the normal checks afterwards.

A 1 MiB reserve file (``.hatch/disk_reserve``) is kept while space is plentiful and deleted on
entering the state, so that the ``disk_full`` log line and the pause can still be written on a
disk that filled up at once. Space has returned when the probe is above the threshold by twice
the reserve, the reserve is written back and a second reserve-sized test write succeeds (the
margin keeps the state from flapping at the threshold, or under a quota statvfs does not show).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import stat
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from hatchctl.engine.deps import Deps

MIB = 1024 * 1024
RESERVE_BYTES = MIB
RESERVE_NAME = "disk_reserve"
PROBE_NAME = ".disk_probe"
REASON = "disk_full"
SQLITE_FULL = 13  # sqlite3.SQLITE_FULL, also where the module does not export it
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_FULL_TEXTS = ("database or disk is full", "no space left on device", "disk quota exceeded")


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc``, its cause or its context (transitively) says the disk is full."""
    todo = [exc]
    seen: set[int] = set()
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen or len(seen) > 50:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _FULL_ERRNOS:
            return True
        code = getattr(e, "sqlite_errorcode", None)  # set on errors SQLite itself raised
        if isinstance(e, sqlite3.Error) and isinstance(code, int) and code & 0xFF == SQLITE_FULL:
            return True
        text = str(e)[:4000].lower()
        if any(t in text for t in _FULL_TEXTS):
            return True
        todo += [e.__cause__, e.__context__]
    return False


def free_bytes(path: Path) -> int | None:
    """Space an unprivileged writer can still use on ``path``'s filesystem (None: unknown)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def write_file(path: Path, size: int) -> bool:
    """Write ``size`` bytes to a new regular file at ``path`` and fsync (a filesystem with
    delayed allocation reports ENOSPC there). False, and nothing left behind, on any error."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # never follows a link; a directory there makes the open below fail
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError:
        return False
    ok = False
    try:
        block = b"\0" * min(size, MIB)
        left = size
        while left > 0:
            left -= os.write(fd, block[:left])
        os.fsync(fd)
        ok = True
    except OSError:
        pass
    finally:
        os.close(fd)
        if not ok:
            with contextlib.suppress(OSError):
                path.unlink()
    return ok


class DiskGuard:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.dir = deps.project.paths.hatch
        self.reserve = self.dir / RESERVE_NAME
        self.min_free = int(deps.limits.min_free_mb) * MIB
        self.since: float | None = None  # deps.clock() when the state was entered
        self.detail = ""
        self.recorded = False  # the disk_full event (and the pause) is in the store

    @property
    def full(self) -> bool:
        return self.since is not None

    # -- probes ----------------------------------------------------------------------------
    def shortage(self) -> str | None:
        """Why the disk counts as full by the threshold probe, or None."""
        if self.min_free <= 0:
            return None
        free = free_bytes(self.dir)
        if free is None or free >= self.min_free:
            return None
        limit = self.min_free // MIB
        return f"{free / MIB:.1f} MiB free for .hatch/, below [limits] min_free_mb = {limit}"

    def confirms(self, exc: BaseException) -> bool:
        """A disk-full error the disk agrees with (not a stale one, not a command's text)."""
        if self.full:
            return is_disk_full(exc)
        return is_disk_full(exc) and (self.shortage() is not None or not self._can_write(4096))

    def _can_write(self, size: int) -> bool:
        """The test write: ``size`` bytes written to ``.hatch/`` and synced, then removed."""
        probe = self.dir / PROBE_NAME
        ok = write_file(probe, size)
        with contextlib.suppress(OSError):
            probe.unlink()
        return ok

    def prepare(self) -> None:
        """At start: make the reserve where there is room for it (best effort)."""
        if self._has_reserve():
            return
        free = free_bytes(self.dir)
        if free is not None and free >= self.min_free + 2 * RESERVE_BYTES:
            write_file(self.reserve, RESERVE_BYTES)

    def _has_reserve(self) -> bool:
        try:
            st = self.reserve.lstat()
        except OSError:
            return False
        return stat.S_ISREG(st.st_mode) and st.st_size == RESERVE_BYTES

    def failed_jobs(
        self, jobs: Mapping[str, Future[Any]]
    ) -> tuple[list[str], BaseException | None]:
        """The tasks whose finished job failed for a full disk, and one such error."""
        dropped: list[str] = []
        error = None
        for task_id, future in jobs.items():
            exc = future.exception() if future.done() and not future.cancelled() else None
            if exc is not None and self.confirms(exc):
                dropped.append(task_id)
                error = exc
        return dropped, error

    # -- the state -------------------------------------------------------------------------
    def pass_allowed(self, on_return: Callable[[], None]) -> bool:
        """The probe before each pass: False while the disk is full (found so now, or still),
        True once space has returned (the disk_full pause lifted, then ``on_return``)."""
        if self.full:
            if not self.poll():
                return False
            on_return()
            return True
        shortage = self.shortage()
        if shortage is not None:
            self.enter(shortage)
            return False
        return True

    def entered(self, exc: BaseException) -> bool:
        """Enter the state if ``exc`` (a failed pass) is a disk-full error the disk confirms."""
        if not self.confirms(exc):
            return False
        self.enter(f"a pass failed: {exc!r}"[:300])
        return True

    def adopt(self) -> None:
        """At start: a pause for disk_full left by an earlier supervisor is this one's to lift."""
        if self._paused_for_disk():
            self.since = self.deps.clock()
            self.detail = "left paused for disk_full by an earlier supervisor"
            self.recorded = True

    def _paused_for_disk(self) -> bool:
        store = self.deps.store
        return store.meta("paused") == "1" and (store.meta("pause_reason") or "").startswith(REASON)

    def enter(self, detail: str) -> None:
        """Pause for disk_full: one log event and (best effort) the pause in the store."""
        self.since = self.deps.clock()
        self.detail = detail
        self.recorded = False
        with contextlib.suppress(OSError):  # room for the log line and the pause
            self.reserve.unlink()
        self.deps.log.error("disk_full", detail=detail, state_dir=str(self.dir))
        self._record()

    def _record(self) -> None:
        store = self.deps.store
        reason = f"{REASON}: {self.detail}"[:500]
        try:
            with store.tx() as tx:
                pause = store.meta("paused") != "1"  # a user's (or the breaker's) pause stays
                if pause:
                    tx.set_meta("paused", "1")
                    tx.set_meta("pause_reason", reason)
                    tx.event("paused", data={"reason": reason, "by": REASON})
                tx.event(
                    REASON, data={"detail": self.detail, "paused": pause, "dir": str(self.dir)}
                )
        except Exception:  # the database may be unwritable: retried at the next poll
            return
        self.recorded = True
        if pause:
            with contextlib.suppress(Exception):
                self.deps.notifier.send("supervisor_paused", reason=reason)

    def poll(self) -> bool:
        """One tick while full: True once space has returned (and the pause made here is
        lifted), after which the supervisor runs its normal pass again."""
        if not self.recorded:
            self._record()
        if self.min_free > 0:
            free = free_bytes(self.dir)
            if free is None or free < self.min_free + 2 * RESERVE_BYTES:
                return False
        if not (self._has_reserve() or write_file(self.reserve, RESERVE_BYTES)):
            return False
        if not self._can_write(RESERVE_BYTES):
            return False
        try:
            self._leave()
        except Exception:  # a database still unwritable: not back yet
            return False
        return True

    def _leave(self) -> None:
        deps = self.deps
        assert self.since is not None
        seconds = round(max(0.0, deps.clock() - self.since), 1)
        store = deps.store
        with store.tx() as tx:  # read inside the transaction: a user's pause meanwhile stays
            ours = self._paused_for_disk()
            if ours:
                tx.set_meta("paused", "0")
                tx.set_meta("pause_reason", "")
                tx.event("resumed", data={"by": REASON})
            tx.event("disk_space_returned", data={"seconds_full": seconds, "resumed": ours})
        deps.log.info("disk_space_returned", seconds_full=seconds, resumed=ours)
        self.since = None
        self.detail = ""
        self.recorded = False
