"""One long-lived command per SSH host, over its master connection, that reports the ``.stop``
files of the host's runs as they appear: the remote side of the supervisor's inotify watcher.

The host runs a POSIX sh loop (no program to install) that lists ``*.stop`` under the project's
exchange directory there every 0.2 s and prints the listing when it changed (``MTIME RELPATH``
per line, then ``.``), and a ``.`` every few seconds (a heartbeat: the loop ends on the first
write after the link is gone). The controller reads the lines in a thread, keeps the newest
mtime per path, and wakes the supervisor (``("remote", HOST)`` on its queue). When the stream
ends (the link dropped, the master was killed) it is started again with a capped backoff: a
new listing reports every stop written meanwhile.

Lines are untrusted: a line longer than 512 bytes, a path that is not ``TASK/ROLE.iN/NAME.stop``
made of safe characters, or a mtime that is not a number is ignored, and at most MAX_PATHS
paths are kept. The supervisor acts only on the path it expects for one of its live runs.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import threading
from pathlib import PurePosixPath

from hatchctl import logsetup
from hatchctl.errors import HatchError
from hatchctl.hosts.ssh import SshHost

WATCH_SCRIPT = r"""
io=$1; logs=$2; prev=; prevl=; n=0; beat=0
while :; do
  out=
  cur=$(find "$io" -name '*.stop' -type f -printf '%T@ %P\n' 2>/dev/null | sort)
  if [ "$cur" != "$prev" ]; then out=$cur; prev=$cur; fi
  if [ "$n" -ge 5 ]; then
    n=0
    curl=$(find "$logs" -name '*.log' -type f -mmin -30 -printf 'L %s %P\n' 2>/dev/null | sort)
    if [ "$curl" != "$prevl" ]; then out="$out
$curl"; prevl=$curl; fi
  fi
  if [ -n "$out" ] || [ "$beat" -ge 15 ]; then
    printf '%s\n.\n' "$out" || exit 0
    beat=0
  fi
  n=$((n+1)); beat=$((beat+1))
  sleep 0.2
done
"""
MAX_LINE = 512
MAX_PATHS = 20_000
_PATH_RE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}/(factory|qa)\.i[0-9]{1,6}/[A-Za-z0-9._-]{1,128}\.stop$"
)
_MTIME_RE = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,10})?$")
_LOG_RE = re.compile(r"^L ([0-9]{1,15}) ((?:factory|qa)/[A-Za-z0-9][A-Za-z0-9._-]{0,160}\.log)$")


def parse_log_line(line: str) -> tuple[str, int] | None:
    """``(path relative to .hatch/logs, size)`` of a log listing line, or None."""
    found = _LOG_RE.fullmatch(line)
    if found is None or ".." in found.group(2):
        return None
    return found.group(2), int(found.group(1))


def parse_line(line: str) -> tuple[str, str] | None:
    """``(relative path, mtime)`` of one listing line, or None for anything else."""
    mtime, _, rel = line.partition(" ")
    if not _MTIME_RE.fullmatch(mtime) or not _PATH_RE.fullmatch(rel) or ".." in rel:
        return None
    return rel, mtime


class HostWatch:
    """The stop-file stream of one host, restarted until ``stop()``."""

    def __init__(
        self, host: SshHost, hatch_dir: PurePosixPath, sink: queue.Queue[tuple[str, str]]
    ) -> None:
        self.host = host
        self.hatch_dir = hatch_dir
        self.sink = sink
        self.stops: dict[str, str] = {}  # relative path -> mtime, as last listed
        self.logs: dict[str, int] = {}  # path relative to .hatch/logs -> size, as last listed
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.connected = threading.Event()  # a listing arrived on the current stream
        self.streams = 0  # how many streams were started (1 + reconnects)
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._run, name=f"watch-{host.name}", daemon=True)
        self.log = logsetup.get(component="remote_watch", host=host.name)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self._kill()
        self._thread.join(timeout=10)

    def reported(self, rel: str) -> str | None:
        with self.lock:
            return self.stops.get(rel)

    def log_size(self, rel: str) -> int | None:
        with self.lock:
            return self.logs.get(rel)

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    def _run(self) -> None:
        backoff = 0.2
        while not self.stopping.is_set():
            io, logs = self.hatch_dir / "io", self.hatch_dir / "logs"
            argv = ["sh", "-c", WATCH_SCRIPT, "hatch-watch", str(io), str(logs)]
            try:
                proc = self.host.stream(argv)
            except HatchError as exc:
                self.log.warning("remote_watch_failed", error=str(exc))
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            self._proc = proc
            self.streams += 1
            if self.stopping.is_set():
                self._kill()
            got = self._read(proc)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            self._kill()
            self._proc = None
            self.connected.clear()
            if got:
                backoff = 0.2
                self.log.info("remote_watch_ended", streams=self.streams)
            self.stopping.wait(backoff)
            backoff = min(backoff * 2, 5.0)

    def _read(self, proc: subprocess.Popen[bytes]) -> bool:
        assert proc.stdout is not None
        listing: dict[str, str] = {}
        sizes: dict[str, int] = {}
        got = False
        for raw in proc.stdout:
            if len(raw) > MAX_LINE:
                continue
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            if line != ".":
                parsed = parse_line(line)
                if parsed is not None and len(listing) < MAX_PATHS:
                    listing[parsed[0]] = parsed[1]
                log = parse_log_line(line) if parsed is None else None
                if log is not None and len(sizes) < MAX_PATHS:
                    sizes[log[0]] = log[1]
                continue
            got = True
            changed = False
            with self.lock:
                for rel, mtime in listing.items():
                    if self.stops.get(rel) != mtime and len(self.stops) < MAX_PATHS:
                        self.stops[rel] = mtime
                        changed = True
                for rel, size in sizes.items():
                    if rel in self.logs or len(self.logs) < MAX_PATHS:
                        self.logs[rel] = size
            listing, sizes = {}, {}
            self.connected.set()
            if changed:
                self.sink.put(("remote", self.host.name))
        return got
