"""One long-lived command per SSH host, over its master connection, that reports the ``.stop``
files of the host's runs as they appear: the remote side of the supervisor's inotify watcher.

When the host has ``inotifywait`` (inotify-tools) and bash, the stream is a bash loop reading
``inotifywait -m -r -e close_write,moved_to`` over the exchange directory: each ``.stop``
written there is printed at once (``MTIME RELPATH`` then ``.``), so the controller has it
within a few ms plus the round trip. Without them (or with ``HATCH_REMOTE_WATCH=poll`` in the
controller's environment) the stream is a POSIX sh loop (nothing to install) that lists
``*.stop`` every 0.2 s and prints the listing when it changed. Either way the stream's first
line says which (``W inotify`` or ``W poll REASON``: log event ``remote_watch_mode``); the
inotify loop also lists the stops every 2 s (a missed event costs 2 s, not the run), falls
back to polling when inotifywait fails (too many watches), and kills its inotifywait when it
ends. Both list the logs changed in the last 30 minutes once a second (``L SIZE PATH``), and
print a ``.`` every second (inotify) or 3 s (poll) and at once when they start (a heartbeat: the
loop ends on the first write after the link is gone).

With each stop it sees written (an inotify event, or a stop new in a listing after the first),
the stream ships the run's summary and the stop's content before the stop's line
(engine/remoteship.py; the inotify loop through its python3 reader where the host has one, no
process per stop): the controller records the stop without another call to the host. The
runs' ``.stop.wait`` (Notification) files are listed with the stops and printed at once when
written: read by the controller off its loop (engine/remotesignals.py).

The controller reads the lines in a thread, keeps the newest mtime per path, and wakes the
supervisor (``("remote", HOST)`` on its queue). A second thread copies the logs of the host's
live runs that grew (engine/remotefiles.LogMirror). When the stream ends (the link dropped,
the master was killed) it is started again with a capped backoff: a new listing reports every
stop written meanwhile.

Lines are untrusted: a line longer than 512 bytes, a path that is not ``TASK/ROLE.iN/NAME.stop``
made of safe characters, or a mtime that is not a number is ignored, and at most MAX_PATHS
paths are kept. The supervisor acts only on the path it expects for one of its live runs.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import secrets
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from hatchctl import logsetup
from hatchctl.engine.remotefiles import LogMirror
from hatchctl.engine.remoteship import (
    CLOCK,
    EMIT,
    READER,
    START_READER,
    Block,
    Shipments,
    Shipped,
    Stamps,
    directory,
    none_line,
)
from hatchctl.engine.remotesignals import parse_line, parse_log_line, parse_wait_line
from hatchctl.errors import HatchError
from hatchctl.hosts.ssh import SshHost

__all__ = ["HostWatch", "parse_line", "parse_log_line"]

MODE_ENV = "HATCH_REMOTE_WATCH"  # "poll": never inotify (tests, benchmarks); default "auto"
# sh: $1 io, $2 logs, $3 the nonce of shipped files (engine/remoteship.py)
POLL_SCRIPT = (
    r"""
io=$1; logs=$2; nonce=$3; prev=; prevl=; n=0; beat=15; listed=; new=; old=
"""
    + EMIT
    + r"""
while :; do
  out=; new=
  cur=$(find "$io" \( -name '*.stop' -o -name '*.stop.wait' \) -type f -printf '%T@ %P\n' \
    2>/dev/null | sort)
  if [ "$cur" != "$prev" ]; then out=$cur; new=$listed; old=$prev; prev=$cur; fi
  listed=1
  if [ "$n" -ge 5 ]; then
    n=0
    curl=$(find "$logs" -name '*.log' -type f -mmin -30 -printf 'L %s %P\n' 2>/dev/null | sort)
    if [ "$curl" != "$prevl" ]; then out="$out
$curl"; prevl=$curl; fi
  fi
  if [ -n "$out" ] || [ "$beat" -ge 15 ]; then
    printf '%s\n' "$out" || exit 0
    [ -n "$new" ] && ship_new
    printf '.\n' || exit 0
    beat=0
  fi
  n=$((n+1)); beat=$((beat+1))
  sleep 0.2
done
"""
)
# bash: $1 io, $2 logs, $3 the poll script (the fallback), $4 the nonce, $5 the reader
INOTIFY_SCRIPT = (
    r"""
io=$1; logs=$2; poll=$3; nonce=$4; reader=$5; ipid=; listed=; new=; old=; sent=; rd=
"""
    + EMIT
    + CLOCK
    + r"""
fallback() {
  printf 'W poll %s\n' "$1" || exit 0
  [ -z "$rd" ] || kill "$RD_PID" 2>/dev/null
  ipid=; exec sh -c "$poll" hatch-watch "$io" "$logs" "$nonce"
}
cd -- "$io" 2>/dev/null || fallback no_io_dir
trap 'exit 0' PIPE HUP TERM INT
trap '[ -n "$ipid" ] && kill "$ipid" 2>/dev/null; [ -n "$rd" ] && kill "$RD_PID" 2>/dev/null' EXIT
# inotifywait dies with this loop even when the loop is killed outright (an OOM kill, a SIGKILL
# of the session: no EXIT trap runs), where setpriv can ask the kernel for that
die=(); setpriv --pdeathsig KILL true 2>/dev/null && die=(setpriv --pdeathsig KILL)
exec 3< <(exec "${die[@]}" inotifywait -m -r -e close_write,moved_to --format '%w%f' . 2>&1)
ipid=$!
ok=
while IFS= read -r -t 10 line <&3; do
  [ "$line" = "Watches established." ] && { ok=1; break; }
done
[ -n "$ok" ] || { kill "$ipid" 2>/dev/null; fallback inotifywait_failed; }
printf 'W inotify\n' || exit 0
"""
    + START_READER
    + r"""
prev=; prevl=; last=; n=1
while :; do
  if [ "$SECONDS" != "$last" ]; then
    last=$SECONDS; out=; new=; n=$((n+1))
    if [ "$n" -ge 2 ]; then
      n=0
      cur=$(find . \( -name '*.stop' -o -name '*.stop.wait' \) -type f -printf '%T@ %P\n' \
        2>/dev/null)
      if [ "$cur" != "$prev" ]; then out=$cur; new=$listed; old=$prev; prev=$cur; fi
      listed=1
    fi
    curl=$(find "$logs" -name '*.log' -type f -mmin -30 -printf 'L %s %P\n' 2>/dev/null)
    if [ "$curl" != "$prevl" ]; then out="$out
$curl"; prevl=$curl; fi
    printf '%s\n' "$out" || exit 0
    [ -n "$new" ] && ship_new
    sent=
    printf '.\n' || exit 0
  fi
  if IFS= read -r -t 1 line <&3; then
    rel=${line#./}
    case $rel in
      [A-Za-z0-9]*/*/*.stop)
        [ "$rd" != starting ] || reader_up
        if [ "$rd" = 1 ]; then  # its answer: the stop's mtime, empty when not shipped
          host_now; got=; trap '' PIPE
          { printf '%s %s\n' "$now" "$rel" >&"${RD[1]}" && IFS= read -r -t 20 got <&"${RD[0]}"
          } 2>/dev/null || { kill "$RD_PID" 2>/dev/null; rd=; got=; }
          trap 'exit 0' PIPE; got=${got:+$got $rel}
        else
          emit . "$rel"; got=${m:+${m% *} $rel}
        fi
        [ -n "$got" ] || got=$(find "$rel" -maxdepth 0 -type f -printf '%T@ %p' 2>/dev/null)
        [ -z "$got" ] || { printf '%s\n.\n' "$got" || exit 0; sent="$sent
$got"; } ;;
      [A-Za-z0-9]*/*/*.stop.wait)  # a Notification: listed at once (read by the controller)
        got=$(find "$rel" -maxdepth 0 -type f -printf '%T@ %p' 2>/dev/null)
        [ -z "$got" ] || printf '%s\n.\n' "$got" || exit 0 ;;
    esac
  elif [ $? -le 128 ]; then
    fallback inotifywait_ended
  fi
done
"""
)
# sh: $1 io, $2 logs, $3 mode, $4 the inotify script, $5 the poll script, $6 the nonce, $7 the
# reader
WATCH_SCRIPT = r"""
if [ "$3" != poll ] && command -v inotifywait >/dev/null 2>&1 && command -v bash >/dev/null 2>&1
then exec bash -c "$4" hatch-watch "$1" "$2" "$5" "$6" "$7"
fi
[ "$3" = poll ] && why=forced || why=no_inotifywait
printf 'W poll %s\n' "$why" || exit 0
exec sh -c "$5" hatch-watch "$1" "$2" "$6"
"""
MAX_LINE = 512
MAX_PATHS = 20_000
_MODE_RE = re.compile(r"^W (inotify|poll)(?: ([a-z_]{1,40}))?$")


class HostWatch:
    """The stop-file stream of one host, restarted until ``stop()``, and its log mirror."""

    def __init__(
        self,
        host: SshHost,
        hatch_dir: PurePosixPath,
        sink: queue.Queue[tuple[str, str]],
        *,
        mirror: LogMirror | None = None,
        local_io: Path | None = None,
    ) -> None:
        self.host = host
        self.hatch_dir = hatch_dir
        self.sink = sink
        self.mirror = mirror
        self.local_io = local_io  # a reported stop wakes the supervisor for its run at once
        self.stops: dict[str, str] = {}  # relative path -> mtime, as last listed
        self.logs: dict[str, int] = {}  # path relative to .hatch/logs -> size, as last listed
        self.waits: dict[str, str] = {}  # relative path of a .stop.wait -> mtime, as listed
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.connected = threading.Event()  # a listing arrived on the current stream
        self.streams = 0  # how many streams were started (1 + reconnects)
        self.mode = ""  # "inotify" or "poll", as the current stream said
        self.shipments = Shipments()  # stops shipped with their content (remoteship.py)
        self.nonce = ""  # the current stream's (remoteship.py)
        self.queued = Stamps()  # when each reported stop was put on the queue (time.time())
        self._grew = threading.Event()  # a listed log size changed: the mirror looks
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._run, name=f"watch-{host.name}", daemon=True)
        self._mirror_thread = threading.Thread(
            target=self._mirror, name=f"mirror-{host.name}", daemon=True
        )
        self.log = logsetup.get(component="remote_watch", host=host.name)

    def start(self) -> None:
        self._thread.start()
        if self.mirror is not None:
            self._mirror_thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self._grew.set()
        self._kill()
        self._thread.join(timeout=10)
        if self._mirror_thread.is_alive():
            self._mirror_thread.join(timeout=10)

    def reported(self, rel: str) -> str | None:
        with self.lock:
            return self.stops.get(rel)

    def waiting(self, rel: str) -> str | None:
        with self.lock:
            return self.waits.get(rel)

    def log_size(self, rel: str) -> int | None:
        with self.lock:
            return self.logs.get(rel)

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    def argv(self) -> list[str]:
        io, logs = self.hatch_dir / "io", self.hatch_dir / "logs"
        mode = "poll" if os.environ.get(MODE_ENV, "auto") == "poll" else "auto"
        scripts = [INOTIFY_SCRIPT, POLL_SCRIPT]
        self.nonce = secrets.token_hex(16)
        args = [str(io), str(logs), mode, *scripts, self.nonce, READER]
        return ["sh", "-c", WATCH_SCRIPT, "hatch-watch", *args]

    def _run(self) -> None:
        backoff = 0.2
        while not self.stopping.is_set():
            try:
                proc = self.host.stream(self.argv())
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

    def _mirror(self) -> None:
        """Copy the followed logs that grew, on each listing of their sizes (about 1/s)."""
        assert self.mirror is not None
        while not self.stopping.is_set():
            self._grew.wait(5.0)
            self._grew.clear()
            if self.stopping.is_set():
                return
            with self.lock:
                sizes = dict(self.logs)
            self.mirror.catch_up(sizes)

    def _lines(self, proc: subprocess.Popen[bytes]) -> Iterator[str]:
        """The stream's lines; a line over MAX_LINE bytes is skipped without being held."""
        assert proc.stdout is not None
        skipping = False
        while raw := proc.stdout.readline(MAX_LINE + 1):
            whole = raw.endswith(b"\n")
            if skipping or (not whole and len(raw) > MAX_LINE):
                skipping = not whole
                continue
            yield raw.decode("utf-8", errors="replace").rstrip("\n")

    def _read(self, proc: subprocess.Popen[bytes]) -> bool:
        listing: dict[str, str] = {}
        waits: dict[str, str] = {}
        sizes: dict[str, int] = {}
        got = False
        block: Block | None = None
        summary: tuple[str, Shipped | None] | None = None  # shipped just before a stop
        for line in self._lines(proc):
            if block is not None:
                done = block.feed(line)
                if done is True:
                    continue
                if isinstance(done, Shipped):
                    summary = self._shipped(block, done, summary)
                    block = None
                    continue
                block = None  # malformed: the line is read as any other
            if line.startswith(("F ", "N ")):
                block = Block.start(line, self.nonce) if line[0] == "F" else None
                if (name := none_line(line, self.nonce)) is not None:
                    summary = (name, None)
                continue
            if line.startswith("W "):
                self._mode(line)
                continue
            if line != ".":
                parsed = parse_line(line)
                if parsed is not None and len(listing) < MAX_PATHS:
                    listing[parsed[0]] = parsed[1]
                log = parse_log_line(line) if parsed is None else None
                if log is not None and len(sizes) < MAX_PATHS:
                    sizes[log[0]] = log[1]
                wait = parse_wait_line(line) if parsed is None and log is None else None
                if wait is not None and len(waits) < MAX_PATHS:
                    waits[wait[0]] = wait[1]
                continue
            got = True
            changed: list[str] = []
            grew = noticed = False
            with self.lock:
                for rel, mtime in listing.items():
                    if self.stops.get(rel) != mtime and len(self.stops) < MAX_PATHS:
                        self.stops[rel] = mtime
                        changed.append(rel)
                for rel, size in sizes.items():
                    if rel in self.logs or len(self.logs) < MAX_PATHS:
                        grew = grew or self.logs.get(rel) != size
                        self.logs[rel] = size
                for rel, mtime in waits.items():  # the run's monitor reads it (remotesignals)
                    if self.waits.get(rel) != mtime and len(self.waits) < MAX_PATHS:
                        self.waits[rel], noticed = mtime, True
            listing, sizes, waits = {}, {}, {}
            self.connected.set()
            if grew:
                self._grew.set()
            if changed and self.local_io is not None:
                for rel in changed[:64]:  # the supervisor checks these runs first
                    self.queued.put(rel)
                    self.sink.put(("stop", str(self.local_io / rel)))
            if changed or noticed:
                self.sink.put(("remote", self.host.name))
        return got

    def _shipped(
        self, block: Block, got: Shipped, summary: tuple[str, Shipped | None] | None
    ) -> tuple[str, Shipped | None] | None:
        """Keep a shipped stop (with the summary shipped just before it for its directory);
        a summary is held for the stop that follows it."""
        if block.kind == "summary":
            return block.name, got
        if summary is not None and directory(summary[0]) == directory(block.name):
            kept = summary[1]
            got = Shipped(got.mtime, got.there, got.received, got.data, kept, kept is None)
        self.shipments.put(block.name, got)
        return None

    def _mode(self, line: str) -> None:
        found = _MODE_RE.fullmatch(line)
        if found is None:
            return
        mode, why = found.group(1), found.group(2) or ""
        if mode != self.mode:
            self.log.info("remote_watch_mode", mode=mode, reason=why, streams=self.streams)
        self.mode = mode
