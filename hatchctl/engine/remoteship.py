"""What a host's watcher stream (engine/remotewatch.py) ships besides its listings: the content of
each ``.stop`` it sees written, with the run's ``summary.json`` before it, so the controller
records the stop without another round trip (engine/remotecollect.py).

On the host, for a stop ``T/ROLE.iN/NAME.stop``: the summary of its directory, then the stop,
each only when it is a regular file (not a link, the checks of remotefiles.READ), of a safe
name, and no bigger than its cap (the summary MAX_AGENT_FILE, the stop remotefiles.STOP_LIMIT):
``F NONCE KIND MTIME SIZE NOW NAME``, its bytes in base64 lines, ``E NONCE``; ``NOW`` is the
host's clock, so the controller knows the file's age by the host's own clock. A summary that
does not exist is ``N NONCE NAME``. Anything else (a link, a FIFO, too big, a file that changed
while read) ships nothing and the controller reads the file over ssh. ``NONCE`` is the stream's
own random word (an argument of its command): a file name printed in a listing cannot open a
block. Two readers write these blocks:

- ``READER`` (python3, where the host has it: the inotify loop starts it once per stream): no
  process per stop. It opens each directory of the path and the file with O_NOFOLLOW and
  O_NONBLOCK (a link, even a directory's, is never followed, a FIFO never waited on), then
  takes the file only when it is regular, within its cap, and its size and mtime are the same
  after the read as before (MTIME formatted as find's ``%T@``: the listing's key).
- ``EMIT`` (sh: the poll loop, the inotify loop without python3, and the stops a listing finds
  that no event reported): one ``find`` (both files' mtime and size), a ``dd`` (``nofollow``,
  ``nonblock``) and a ``base64`` per file; ``NOW`` from ``date +%s.%N`` (the inotify loop's
  bash reads ``$EPOCHREALTIME`` instead).

The controller takes a block only whole and well formed (the header's fields, base64 lines of
at most 76 characters, no more than the cap, the decoded size the header's); a stop keeps the
summary (or its absence) shipped just before it for the same directory. The content is
untrusted exactly as a file read from the host: the stop is checked (its run's token) as ever.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from hatchctl.engine.remotefiles import STOP_LIMIT, host_clock, mtime_here
from hatchctl.state.summary import MAX_AGENT_FILE

SUMMARY_LIMIT = MAX_AGENT_FILE
MAX_STOPS = 256  # stops shipped and not collected yet, per host (the oldest dropped)
MAX_BYTES = 16 * 1024 * 1024  # their bytes, summaries included
# sh (POSIX; bash runs it too): needs $nonce set; ``emit IO REL`` ships REL's summary and stop
# (then $m is the stop's "MTIME SIZE", empty when it was not shipped): a find for both, a dd and
# a base64 for each (``host_now``: the host's clock, ``date``; bash's loop reads it without a
# process: remotewatch.py);
# ``ship_new`` those of the (at most 32) stops of the listing $cur not in $old nor $sent (the
# ones the inotify loop shipped since its last listing) of the exchange directory $io (the
# ``.stop.wait`` files listed with them are not shipped: engine/remotesignals.py)
EMIT = r"""
emit1() {
  m=
  if [ ! -e "$2" ] && [ ! -L "$2" ]; then printf 'N %s %s\n' "$nonce" "$3" || exit 0; return 0; fi
  [ -f "$2" ] && [ ! -L "$2" ] || return 0
  m=$5 && [ -n "$m" ] || return 0
  [ "${m#* }" -le "$4" ] 2>/dev/null || { m=; return 0; }
  printf 'F %s %s %s %s %s\n' "$nonce" "$1" "$m" "$now" "$3" || exit 0
  # at most the cap (a file that changed since: its size is not the header's, refused there);
  # a link swapped in is not followed, a FIFO not waited on (one process where a timeout and
  # head took two)
  dd if="$2" iflag=nonblock,nofollow,fullblock bs="$4" count=1 status=none | base64 || exit 0
  printf 'E %s\n' "$nonce" || exit 0
}
host_now() {
  now=$(date +%s.%N 2>/dev/null)
}
emit() {
  m=
  [ -n "$ship" ] || return 0
  case $2 in *[!A-Za-z0-9._/-]*) return 0 ;; esac
  host_now
  # one find for both: "S|T MTIME:SIZE" of each that is a regular file (not a link)
  sm=; tm=
  for x in $(find "$1/${2%/*}/summary.json" "$1/$2" -maxdepth 0 -type f \
      \( -name summary.json -printf 'S%T@:%s\n' -o -printf 'T%T@:%s\n' \) 2>/dev/null); do
    case $x in S*) sm=${x#S} ;; T*) tm=${x#T} ;; esac
  done
  emit1 summary "$1/${2%/*}/summary.json" "${2%/*}/summary.json" SUMMARY_LIMIT \
    "${sm:+${sm%:*} ${sm#*:}}"
  emit1 stop "$1/$2" "$2" STOP_LIMIT "${tm:+${tm%:*} ${tm#*:}}"
}
ship_new() {
  k=0
  printf '%s\n' "$cur" | while IFS= read -r l; do
    case $l in *.wait) continue ;; esac  # a Notification, listed with the stops: not shipped
    case "
$old
$sent
" in *"
$l
"*) continue ;; esac
    k=$((k+1)); [ "$k" -le 32 ] || break
    emit "$io" "${l#* }"
  done
}
ship=
[ -n "$nonce" ] && command -v base64 >/dev/null 2>&1 &&
  dd if=/dev/null iflag=nonblock,nofollow,fullblock count=0 status=none 2>/dev/null && ship=1
""".replace("SUMMARY_LIMIT", str(SUMMARY_LIMIT)).replace("STOP_LIMIT", str(STOP_LIMIT))
# bash (the inotify loop: remotewatch.py): the host's clock without a process per stop, bash's
# $EPOCHREALTIME plus the whole seconds ``date`` differs from it by (none on a real host; a test fakes ``date``), read once between
# two readings in the same second; ``date`` per stop when that cannot be known
CLOCK = r"""
skew=
for _ in 1 2 3; do
  a=$EPOCHREALTIME; d=$(date +%s 2>/dev/null); b=$EPOCHREALTIME
  [[ $a =~ ^[0-9]+[.,][0-9]+$ && $d =~ ^[0-9]+$ && ${a%[.,]*} == "${b%[.,]*}" ]] || continue
  skew=$(( d - ${a%[.,]*} )); break
done
if [ -n "$skew" ]; then
  host_now() {
    local t=$EPOCHREALTIME
    now=$(( ${t%[.,]*} + skew )).${t#*[.,]}
  }
fi
"""
# bash (the inotify loop, once its inotifywait runs): READER as a coprocess where the host has
# python3 and the loop its clock (the stream dup'ed on fd 5 for it), not waited for: $rd is
# "starting", then 1 from the first stop after it said "ready" (``reader_up``; the stops before
# go as without it), empty when it failed
START_READER = r"""
if [ -n "$nonce" ] && [ -n "$skew" ] && [ -n "$reader" ] && command -v python3 >/dev/null 2>&1
then
  exec 5>&1
  coproc RD { exec python3 -I -S -c "$reader" "$nonce" 2>/dev/null; }
  rd=starting
fi
reader_up() {
  read -t 0 -u "${RD[0]}" 2>/dev/null || return 0
  IFS= read -r -t 1 hi <&"${RD[0]}" && [ "$hi" = ready ] && rd=1 && return 0
  kill "$RD_PID" 2>/dev/null; rd=
}
"""
# python3 (the inotify loop's reader, when the host has it: remotewatch.py): for each request
# ``NOW REL`` on its stdin (NOW the loop's clock), ships REL's summary and stop as ``emit`` does
# on fd 5 (the stream) and answers the stop's mtime (empty: not shipped) on its stdout; no
# process per stop. Each file is opened without following a link and without waiting on a FIFO
# (O_NOFOLLOW, O_NONBLOCK), then must be a regular file within its cap whose size and mtime are
# the same before and after it is read (else not shipped: the controller reads it over ssh).
READER = r"""
import os, re, stat, sys, base64
nonce = sys.argv[1]
name = re.compile(r"NAME")
flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
def mtime(st):
    s, ns = divmod(st.st_mtime_ns, 10**9)
    return "%d.%09d0" % (s, ns)  # as find's %T@
def opendir(rel):  # each directory of the path opened without following a link
    fd = os.open(".", flags | os.O_DIRECTORY)
    try:
        for part in rel.split("/"):
            fd, up = os.open(part, flags | os.O_DIRECTORY, dir_fd=fd), fd
            os.close(up)
    except OSError:
        os.close(fd)
        raise
    return fd
def get(path, cap):
    where, _, base = path.rpartition("/")
    try:
        d = opendir(where)
    except OSError:
        return False
    try:
        fd = os.open(base, flags, dir_fd=d)
    except FileNotFoundError:
        return None
    except OSError:
        return False
    finally:
        os.close(d)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > cap or st.st_mtime_ns < 0:
            return False
        data, n = [], 0
        while n <= cap:
            got = os.read(fd, cap + 1 - n)
            if not got:
                break
            data.append(got)
            n += len(got)
        again = os.fstat(fd)
        if n > cap or n != st.st_size or (again.st_mtime_ns, again.st_size) != (
            st.st_mtime_ns, st.st_size):
            return False
        return mtime(st), b"".join(data)
    finally:
        os.close(fd)
def put(text):
    view = memoryview(text.encode() if isinstance(text, str) else text)
    while view:
        view = view[os.write(5, view):]
def ship(kind, rel, now, got):
    body = base64.encodebytes(got[1])
    put("F %s %s %s %d %s %s\n" % (nonce, kind, got[0], len(got[1]), now, rel))
    put(body + ("E %s\n" % nonce).encode())
os.fstat(5)
sys.stdout.write("ready\n")
sys.stdout.flush()
for line in iter(sys.stdin.buffer.readline, b""):
    now, _, rel = line.decode("ascii", "replace").rstrip("\n").partition(" ")
    answer = ""
    if name.fullmatch(rel) and ".." not in rel:
        where = rel.rsplit("/", 1)[0] + "/summary.json"
        summary = get(where, SUMMARY_LIMIT)
        if summary is None:
            put("N %s %s\n" % (nonce, where))
        elif summary:
            ship("summary", where, now, summary)
        stop = get(rel, STOP_LIMIT)
        if stop:
            ship("stop", rel, now, stop)
            answer = stop[0]
    sys.stdout.write(answer + "\n")
    sys.stdout.flush()
"""
_DIR = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}/(?:factory|qa)\.i[0-9]{1,6}"
_NAMES = {
    "stop": re.compile(rf"^{_DIR}/[A-Za-z0-9._-]{{1,128}}\.stop$"),
    "summary": re.compile(rf"^{_DIR}/summary\.json$"),
}
_LIMITS = {"stop": STOP_LIMIT, "summary": SUMMARY_LIMIT}
_HEAD = re.compile(
    r"^F ([0-9a-f]{32}) (stop|summary) ([0-9]{1,12}(?:\.[0-9]{1,10})?) ([0-9]{1,8}) (\S{0,40}) (\S+)$"
)
_B64 = re.compile(r"^[A-Za-z0-9+/]{1,76}={0,2}$")
READER = (
    READER.replace("NAME", _NAMES["stop"].pattern[1:-1])
    .replace("SUMMARY_LIMIT", str(SUMMARY_LIMIT))
    .replace("STOP_LIMIT", str(STOP_LIMIT))
)


@dataclass(frozen=True)
class Shipped:
    """A file as the host shipped it: its mtime as the host printed it (a stop's key), the
    host's clock then (None: unknown), when it arrived here (time.time()), its bytes."""

    mtime: str
    there: float | None
    received: float
    data: bytes
    summary: Shipped | None = None  # a stop's: the summary shipped just before it
    no_summary: bool = False  # a stop's: the host said its directory had none

    def mtime_here(self) -> float:
        """Its mtime in this machine's clock (remotefiles.mtime_here)."""
        return mtime_here(float(self.mtime), self.there, self.received)

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")  # as remotefiles.read decodes


class Block:
    """One ``F`` block being read off the stream."""

    def __init__(self, nonce: str, kind: str, name: str, mtime: str, size: int, there: str):
        self.nonce, self.kind, self.name, self.mtime, self.size = nonce, kind, name, mtime, size
        self.there = host_clock(there)
        self.chunks: list[str] = []
        self.chars = 0

    @classmethod
    def start(cls, line: str, nonce: str) -> Block | None:
        """The block ``line`` opens, or None (not a well-formed header of this stream)."""
        found = _HEAD.fullmatch(line)
        if found is None or found.group(1) != nonce:
            return None
        kind, name, size = found.group(2), found.group(6), int(found.group(4))
        if not _NAMES[kind].fullmatch(name) or ".." in name or size > _LIMITS[kind]:
            return None
        return cls(nonce, kind, name, found.group(3), size, found.group(5))

    def feed(self, line: str) -> Shipped | bool:
        """True: more to come; a Shipped: the block ended well; False: malformed (``line``
        is then read as any other line)."""
        if line == f"E {self.nonce}":
            try:
                data = base64.b64decode("".join(self.chunks), validate=True)
            except (binascii.Error, ValueError):
                return False
            if len(data) != self.size:
                return False
            return Shipped(self.mtime, self.there, time.time(), data)
        self.chars += len(line)
        if not _B64.fullmatch(line) or self.chars > (self.size + 2) // 3 * 4:
            return False
        self.chunks.append(line)
        return True


def none_line(line: str, nonce: str) -> str | None:
    """The summary path an ``N`` line says does not exist, or None."""
    head, _, rest = line.partition(" ")
    got_nonce, _, name = rest.partition(" ")
    if head != "N" or got_nonce != nonce or not _NAMES["summary"].fullmatch(name):
        return None
    return None if ".." in name else name


def directory(name: str) -> str:
    return name.rsplit("/", 1)[0]


class Shipments:
    """The stops one host's stream shipped and the controller has not collected, by path
    relative to the exchange directory (newest kept; bounded in number and bytes)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stops: OrderedDict[str, Shipped] = OrderedDict()
        self.bytes = 0
        self.received = 0  # stops shipped whole (a counter for tests and benchmarks)

    def put(self, name: str, stop: Shipped) -> None:
        with self.lock:
            self._drop(name)
            self.stops[name] = stop
            self.bytes += _size(stop)
            self.received += 1
            while self.stops and (len(self.stops) > MAX_STOPS or self.bytes > MAX_BYTES):
                self._drop(next(iter(self.stops)))

    def take(self, name: str) -> Shipped | None:
        with self.lock:
            stop = self.stops.get(name)
            self._drop(name)
            return stop

    def _drop(self, name: str) -> None:
        old = self.stops.pop(name, None)
        if old is not None:
            self.bytes -= _size(old)


def _size(stop: Shipped) -> int:
    return len(stop.data) + (len(stop.summary.data) if stop.summary is not None else 0)


class Stamps:
    """When each stop path was last put on the supervisor's queue, for the event that records
    its collection (the latency's parts); the newest MAX_STAMPS kept."""

    MAX_STAMPS = 256

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.at: OrderedDict[str, float] = OrderedDict()

    def put(self, rel: str) -> None:
        with self.lock:
            self.at.pop(rel, None)
            self.at[rel] = time.time()
            while len(self.at) > self.MAX_STAMPS:
                self.at.popitem(last=False)

    def take(self, rel: str) -> float | None:
        with self.lock:
            return self.at.pop(rel, None)
