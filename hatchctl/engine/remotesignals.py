"""The lines of a host's watcher stream (engine/remotewatch.py) that name files, and the
Notification files (``<stop>.wait``, Claude Code's Notification hook: the agent waits for the
user) it reports, read here off the loop.

A listing line is ``MTIME RELPATH`` (relative to the exchange directory): a ``.stop``, or a
``.stop.wait`` next to it (the inotify loop prints one at once when it is written, and both
loops list them with the stops); ``L SIZE PATH`` a log's size. Lines are untrusted: a path not
of the expected shape and safe characters, or a mtime that is not a number, is ignored.

A reported ``.wait`` of a live run whose mtime is new is read over the host's master
connection in a thread (one read at a time per run, bounded by ``[limits] script_timeout``;
the loop never waits for it) with the defences of a stop read over ssh (remotefiles.READ: a
regular file, no link followed, dd ``nofollow,nonblock``; at most observe.WAIT_LIMIT bytes), its
mtime in this machine's clock by the host's own; the loop is woken when it lands, and the run's
monitor checks its token and records it as a local one (engine/remotecheck.check_waiting). The
file stays on the host (a new Notification replaces it: a new mtime); the mtime read is not
read again by this supervisor.
"""

from __future__ import annotations

import re
import threading
import time
from functools import partial
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from hatchctl.engine import remotefiles
from hatchctl.engine.flights import Flights
from hatchctl.errors import HatchError
from hatchctl.state.rows import RunRow

if TYPE_CHECKING:
    from hatchctl.engine.remote import RemoteRuns
    from hatchctl.hosts.ssh import SshHost

WAIT_SUFFIX = ".wait"
WAIT_LIMIT = 64 * 1024  # as observe.WAIT_LIMIT (a local Notification file)
RETRY = 2.0  # seconds before a read that failed (the host did not answer) is tried again
_RUN_DIR = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}/(factory|qa)\.i[0-9]{1,6}/[A-Za-z0-9._-]{1,128}"
_PATH_RE = re.compile(rf"^{_RUN_DIR}\.stop$")
_WAIT_RE = re.compile(rf"^{_RUN_DIR}\.stop\.wait$")
_MTIME_RE = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,10})?$")
_LOG_RE = re.compile(r"^L ([0-9]{1,15}) ((?:factory|qa)/[A-Za-z0-9][A-Za-z0-9._-]{0,160}\.log)$")


def parse_log_line(line: str) -> tuple[str, int] | None:
    """``(path relative to .hatch/logs, size)`` of a log listing line, or None."""
    found = _LOG_RE.fullmatch(line)
    if found is None or ".." in found.group(2):
        return None
    return found.group(2), int(found.group(1))


def parse_line(line: str) -> tuple[str, str] | None:
    """``(relative path, mtime)`` of a stop's listing line, or None for anything else."""
    return _parse(line, _PATH_RE)


def parse_wait_line(line: str) -> tuple[str, str] | None:
    """``(relative path, mtime)`` of a Notification file's listing line, or None."""
    return _parse(line, _WAIT_RE)


def _parse(line: str, path: re.Pattern[str]) -> tuple[str, str] | None:
    mtime, _, rel = line.partition(" ")
    if not _MTIME_RE.fullmatch(mtime) or not path.fullmatch(rel) or ".." in rel:
        return None
    return rel, mtime


class WaitReads:
    """The Notification files the hosts' watchers report, read off the loop (see the
    module)."""

    def __init__(self, remote: RemoteRuns) -> None:
        self.remote = remote
        self.lock = threading.Lock()
        self.flights: Flights[int] = Flights("wait")  # run id -> its read under way
        self.asked: dict[int, str] = {}  # run id -> the reported mtime last read (or reading)
        self.landed: dict[int, tuple[float, bytes]] = {}  # run id -> (its mtime here, content)
        self.failed_at: dict[int, float] = {}  # run id -> when its last read failed

    def take(self, run: RunRow) -> tuple[float, bytes] | None:
        """The run's Notification file as read since the last call: (its mtime in this
        machine's clock, its content); else None, and a read is started when its host's watcher
        reported one of a mtime not read yet and none runs for it."""
        with self.lock:
            got = self.landed.pop(run.id, None)
            if got is not None:
                return got
        watch = self.remote.watches.get(run.host or "")
        if watch is None:
            return None
        rel = self.remote.io_rel(run) + WAIT_SUFFIX
        mtime = watch.waiting(rel)
        host = self.remote.host(run)
        with self.lock:
            if mtime is None or self.asked.get(run.id) == mtime or not self.flights.idle(run.id):
                return None
            if time.monotonic() - self.failed_at.get(run.id, -1e9) < RETRY:
                return None
            self.asked[run.id] = mtime
            path = self.remote.on_host(host, self.remote.deps.project.root / run.stop_path)
            wait = path.with_name(path.name + WAIT_SUFFIX)
            self.flights.start(run.id, partial(self._read, run.id, host, wait, mtime))
        return None

    def _read(self, run_id: int, host: SshHost, path: PurePosixPath, mtime: str) -> None:
        timeout = float(self.remote.deps.limits.script_timeout)
        try:
            got = remotefiles.read_stamped(host, path, WAIT_LIMIT + 1, timeout=timeout)
        except HatchError as exc:  # read again on a later pass (the same mtime is not "read")
            self.remote.log.info("host_wait_unread", host=host.name, error=str(exc)[:300])
            with self.lock:
                if self.asked.get(run_id) == mtime:
                    del self.asked[run_id]
                self.failed_at[run_id] = time.monotonic()
            return
        if got is None or len(got[2].encode()) > WAIT_LIMIT:
            return  # gone, not a regular file (a link, a FIFO), or too big: not a notification
        with self.lock:
            if self.flights.closed:
                return
            self.landed[run_id] = (got[1], got[2].encode())
        self.remote.sink.put(("remote", host.name))  # the run's monitor takes it next pass

    def close(self) -> None:
        """No read from now on; the ones under way waited for (bounded by their timeout)."""
        self.flights.close()
