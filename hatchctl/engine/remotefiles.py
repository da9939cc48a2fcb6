"""Small operations on an SSH host's files, each one ``sh -c`` call over its master connection
(nothing installed there): write a file atomically, read a regular file bounded, the launch
ticket's write and cancel. Exit status 3 and 4 are answers ("not a regular file", "claimed"),
anything else non-zero a HostError.

LogMirror copies the logs of a host's live runs into their local log files as they grow: from
the offset copied so far, at most CHUNK bytes a call (``tail -c +N | head -c CHUNK``), appended
to a local file only hatchctl writes (opened without following a link, a regular file only).
The host's log is untrusted: one that ran more than SKIP_AFTER ahead is skipped to its last
LOG_TAIL bytes, one that shrank starts again from 0, each after a line saying so.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path, PurePosixPath

from hatchctl import logsetup
from hatchctl.errors import HatchError, HostError, HostUnreachable
from hatchctl.hosts.ssh import SshHost
from hatchctl.runtime import proc
from hatchctl.runtime.gitrepo import SAFE_GIT_CONFIG

CHUNK = 256 * 1024  # bytes of a host's log per call
LOG_TAIL = 256 * 1024  # what is kept of a log that ran ahead by more than SKIP_AFTER
SKIP_AFTER = 4 * 1024 * 1024
LIVE_READS = 4  # calls per log per listing while it runs (1 MiB/s)
FINAL_READS = 32  # calls per log when its run ends (more than SKIP_AFTER / CHUNK)

PREPARE = r"""
umask 077
b=$1
mkdir -p "$b/.hatch/runs" "$b/.hatch/io" "$b/.hatch/worktrees" "$b/.hatch/prompts" \
  "$b/.hatch/handovers" "$b/.hatch/specs" "$b/.hatch/logs/factory" "$b/.hatch/logs/qa" \
  "$b/.hatch/scripts/git" "$b/.hatch/scripts/agent" || exit 3
[ -d "$b/.hatch/repo.git" ] || git init -q --bare "$b/.hatch/repo.git" || exit 3
"""
PUT = r"""
umask 077
mkdir -p -- "$(dirname -- "$1")" && rm -f -- "$1.tmp" && cat > "$1.tmp" && chmod "$2" "$1.tmp" &&
  mv -f -- "$1.tmp" "$1"
"""
STOP_LIMIT = 64 * 1024  # bytes of a stop file read (over ssh or on the watcher's stream)
# a regular file (not a link) of the host: its mtime on the first line (with $4 = now: then a
# space and the host's clock), then at most $2 bytes, its first ($3 = head) or its last (tail);
# opened without following a link swapped in since the check, nor waiting on a FIFO (GNU dd;
# a link met there: exit 3 as well)
READ = r"""
[ -f "$1" ] && [ ! -L "$1" ] || exit 3
s=$(find "$1" -maxdepth 0 -printf '%T@ %s') && [ -n "$s" ] || exit 3
k=0; [ "$3" = head ] || [ "${s#* }" -le "$2" ] || k=$(( ${s#* } - $2 ))
printf '%s' "${s% *}" && { [ "$4" != now ] || printf ' %s' "$(date +%s.%N)"; } && printf '\n' &&
  { dd if="$1" iflag=nofollow,nonblock,fullblock,skip_bytes skip="$k" bs="$2" count=1 \
    status=none || exit 3; }
"""
# a regular file (not a link): its size on the first line, then at most $3 bytes from byte $2
# (0-based), opened as READ opens it
READ_FROM = r"""
[ -f "$1" ] && [ ! -L "$1" ] || exit 3
find "$1" -maxdepth 0 -printf '%s\n' &&
  { dd if="$1" iflag=nofollow,nonblock,skip_bytes,count_bytes skip="$2" count="$3" bs=65536 \
    status=none || exit 3; }
"""
TICKET = r"""
umask 077
[ -e "$1.cancelled" ] && exit 4
printf '%s\n' "$2" > "$1.ticket.tmp" && mv -f -- "$1.ticket.tmp" "$1.ticket"
"""
CANCEL = r"""
mv -- "$1.ticket" "$1.cancelled" 2>/dev/null && exit 0
[ -e "$1.claimed" ] && exit 4
echo cancelled > "$1.cancelled"
[ -e "$1.claimed" ] && exit 4
exit 0
"""


def sh(
    host: SshHost, script: str, *args: str, timeout: float, input_text: str | None = None
) -> int:
    """Run ``script`` with ``args`` ($1...) on the host; its exit status (0, 3 or 4)."""
    res = host.run(
        ["sh", "-c", script, "hatch-sh", *args],
        timeout=timeout,
        input_text=input_text,
        check=False,
    )
    if res.returncode not in (0, 3, 4):
        raise HostError(f"host {host.name}: {res.output.strip()[-300:] or 'failed'}")
    return res.returncode


def script(
    host: SshHost, hatch_dir: PurePosixPath, name: str, *args: str, timeout: float
) -> proc.Result:
    """Run the hatch script ``name`` the host was given (``.hatch/scripts/NAME``) with ``args``,
    git's hooks and fsmonitor off (a CommandError when it fails)."""
    safe = [f"{k}={v}" for k, v in SAFE_GIT_CONFIG.items()]
    argv = ["env", *safe, "bash", str(hatch_dir / "scripts" / name), *args]
    return host.run(argv, timeout=timeout)


def put(
    host: SshHost, path: PurePosixPath, text: str, *, timeout: float, mode: str = "600"
) -> None:
    """Write ``path`` on the host (temp file, then rename; its directories made 0700)."""
    if sh(host, PUT, str(path), mode, timeout=timeout, input_text=text) != 0:
        raise HostError(f"host {host.name}: cannot write {path}")


def read(
    host: SshHost, path: PurePosixPath, limit: int, *, timeout: float, end: bool = False
) -> tuple[float, str] | None:
    """(mtime, at most ``limit`` bytes: the first ones, or the last with ``end``) of a regular
    file on the host (not a link); None when it is not one."""
    got = _read(host, path, limit, timeout=timeout, end=end, clock=False)
    return None if got is None else (got[0], got[2])


def read_stamped(
    host: SshHost, path: PurePosixPath, limit: int, *, timeout: float
) -> tuple[float, float, str] | None:
    """As ``read`` (the first bytes), its mtime in this machine's clock: the file's age by the
    host's own clock (its mtime against the host's now) taken from the time here, so a host
    whose clock is off does not make a file written during a run look older than the run."""
    here = time.time()
    got = _read(host, path, limit, timeout=timeout, end=False, clock=True)
    if got is None:
        return None
    mtime, there, body = got
    return mtime, mtime_here(mtime, there, here), body


def mtime_here(mtime: float, there: float | None, here: float) -> float:
    """A host file's ``mtime`` in this machine's clock: ``here`` less its age on the host's
    clock (``there``: the host's now); unchanged without the host's clock."""
    return mtime if there is None else here - max(0.0, there - mtime)


def _read(
    host: SshHost, path: PurePosixPath, limit: int, *, timeout: float, end: bool, clock: bool
) -> tuple[float, float | None, str] | None:
    cut = "tail" if end else "head"
    argv = ["sh", "-c", READ, "hatch-read", str(path), str(limit), cut, "now" if clock else ""]
    res = host.run(argv, timeout=timeout, check=False)
    if res.returncode == 3:
        return None
    if res.returncode != 0:
        raise HostError(f"host {host.name}: cannot read {path}: {res.output.strip()[-200:]}")
    first, _, body = res.stdout.partition("\n")
    mtime, _, now = first.partition(" ")
    try:
        return float(mtime), host_clock(now), body
    except ValueError:
        return None


def host_clock(text: str) -> float | None:
    """The host's clock as ``date +%s.%N`` printed it, or None (an old ``date``, nothing)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0 < value < 1e11 else None


def read_from(
    host: SshHost, path: PurePosixPath, offset: int, limit: int, *, timeout: float
) -> tuple[int, bytes] | None:
    """(size, at most ``limit`` bytes from ``offset``) of a regular file on the host (not a
    link); None when it is not one."""
    argv = ["sh", "-c", READ_FROM, "hatch-read", str(path), str(offset), str(limit)]
    code, out = host.run_bytes(argv, timeout=timeout)
    if code == 3:
        return None
    first, sep, body = out.partition(b"\n")
    if code != 0 or not sep or not first.isdigit() or len(first) > 15:
        raise HostError(f"host {host.name}: cannot read {path} (exit {code})")
    return int(first), body[:limit]


def append_local(path: Path, data: bytes) -> None:
    """Append to a local regular file hatchctl writes (created 0600; never through a link,
    never a FIFO: O_NOFOLLOW, O_NONBLOCK and a check of what was opened)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise HostError(f"cannot write the log {path}: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise HostError(f"{path} is not a regular file; not written")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _local_size(path: Path) -> int:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return 0
    if not stat.S_ISREG(st.st_mode):
        raise HostError(f"{path} is not a regular file; not written")
    return st.st_size


class LogMirror:
    """The logs of one host's live runs, copied here as they grow (see the module's docstring).
    Used from the host's watcher thread (``catch_up``) and the supervisor (``follow``,
    ``finish``): one copy at a time."""

    def __init__(self, host: SshHost, *, timeout: float) -> None:
        self.host = host
        self.timeout = timeout
        self.lock = threading.Lock()
        self.following: dict[str, tuple[PurePosixPath, Path]] = {}  # rel -> (there, here)
        self.offsets: dict[str, int] = {}  # rel -> bytes of the host's log copied here
        self.copied = 0  # bytes appended (all logs)
        self.calls = 0
        self.log = logsetup.get(component="log_mirror", host=host.name)

    def follow(self, rel: str, there: PurePosixPath, here: Path) -> None:
        with self.lock:
            self.following[rel] = (there, here)

    def offset(self, rel: str) -> int | None:
        with self.lock:
            return self.offsets.get(rel)

    def catch_up(self, sizes: dict[str, int]) -> None:
        """Copy what each followed log gained on the host since the last copy (``sizes``: as
        the host's watcher listed them)."""
        with self.lock:
            todo = [
                (rel, *where)
                for rel, where in self.following.items()
                if rel in sizes and sizes[rel] != self.offsets.get(rel)
            ]
        for rel, there, here in todo:
            try:
                self.sync(rel, there, here, reads=LIVE_READS)
            except HatchError as exc:
                self.log.warning("log_mirror_failed", log=rel, error=str(exc)[:300])

    def finish(self, rel: str, there: PurePosixPath, here: Path) -> None:
        """The run ended: copy the rest of its log (bounded) and stop following it. A host
        that does not answer raises HostUnreachable; other failures (the host's log is not a
        file, the local one a link) are logged, and the log is left as it is."""
        try:
            self.sync(rel, there, here, reads=FINAL_READS)
        except HostUnreachable:
            raise
        except HatchError as exc:
            self.log.warning("log_mirror_failed", log=rel, error=str(exc)[:300])
        finally:
            with self.lock:
                self.following.pop(rel, None)
                self.offsets.pop(rel, None)

    def sync(self, rel: str, there: PurePosixPath, here: Path, *, reads: int) -> None:
        with self.lock:  # held across the calls: the watcher thread and the supervisor
            offset = self.offsets.get(rel)
            if offset is None:  # a new supervisor: what the last one copied is here
                offset = _local_size(here)
            try:
                for _ in range(reads):
                    self.calls += 1
                    got = read_from(self.host, there, offset, CHUNK, timeout=self.timeout)
                    if got is None:
                        break
                    size, data = got
                    if size < offset or size - offset > SKIP_AFTER:
                        start = 0 if size < offset else size - LOG_TAIL
                        what = "shrank" if size < offset else f"ran {size - offset} bytes ahead"
                        note = f"\n[hatchctl: the log on host {self.host.name} {what}; "
                        append_local(here, f"{note}copied again from byte {start}]\n".encode())
                        offset = start
                        continue
                    if data:
                        append_local(here, data)
                        offset += len(data)
                        self.copied += len(data)
                    if offset >= size or len(data) < CHUNK:
                        break
            finally:
                self.offsets[rel] = offset
