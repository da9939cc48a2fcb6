"""Small operations on an SSH host's files, each one ``sh -c`` call over its master connection
(nothing installed there): write a file atomically, read a regular file bounded, the launch
ticket's write and cancel. Exit status 3 and 4 are answers ("not a regular file", "claimed"),
anything else non-zero a HostError."""

from __future__ import annotations

from pathlib import PurePosixPath

from hatchctl.errors import HostError
from hatchctl.hosts.ssh import SshHost

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
# a regular file (not a link) of the host: its mtime on the first line, then at most $2 bytes
READ = r"""
[ -f "$1" ] && [ ! -L "$1" ] || exit 3
find "$1" -maxdepth 0 -printf '%T@\n' && "$3" -c "$2" -- "$1"
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
    cut = "tail" if end else "head"
    res = host.run(
        ["sh", "-c", READ, "hatch-read", str(path), str(limit), cut], timeout=timeout, check=False
    )
    if res.returncode == 3:
        return None
    if res.returncode != 0:
        raise HostError(f"host {host.name}: cannot read {path}: {res.output.strip()[-200:]}")
    first, _, body = res.stdout.partition("\n")
    try:
        return float(first), body
    except ValueError:
        return None
