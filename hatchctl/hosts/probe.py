"""A host's health in one bounded round trip: reachable, load, free disk under its root, tmux and
git versions, whether its runs' stops are reported as they happen (inotifywait) or polled every
0.2 s, its python3 (its agents run under the reaper with it), and which agent programs it has.
Used by `hatchctl hosts` and `hatchctl doctor`."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from hatchctl import logsetup
from hatchctl.errors import HatchError, HostUnreachable
from hatchctl.hosts.base import Host
from hatchctl.hosts.ssh import SshHost

# POSIX sh, argv: ROOT PROGRAM...; one `key=value` per line. The root may not exist yet: the
# free space is that of its nearest existing parent.
PROBE_SCRIPT = r"""
root=$1; shift
echo "load=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
echo "cpus=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null)"
echo "tmux=$(tmux -V 2>/dev/null)"
echo "git=$(git --version 2>/dev/null)"
echo "inotifywait=$(command -v inotifywait 2>/dev/null)"
echo "python3=$(python3 -I -S -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)"
echo "safe_read=$(dd if=/dev/null iflag=nofollow,nonblock,skip_bytes,count_bytes count=0 \
  status=none 2>/dev/null && echo yes)"
d=$root
while [ ! -d "$d" ]; do d=$(dirname -- "$d"); done
echo "disk_dir=$d"
echo "free_kb=$(df -Pk -- "$d" 2>/dev/null | awk 'NR==2 {print $4}')"
for p in "$@"; do echo "program=$p=$(command -v -- "$p" 2>/dev/null)"; done
"""

POLLED = "no inotifywait: stops polled every 0.2 s"
NO_REAPER = (
    "no python3 >= 3.8: its agents run without the reaper (a double-forked setsid process "
    "outlives its run there)"
)
UNSAFE_READ = (
    "its dd cannot open a file without following a link (GNU coreutils >= 8.16 needed): "
    "its stop, summary and log files cannot be read safely"
)


@dataclass
class Health:
    name: str
    address: str
    root: str
    max_active: int
    labels: list[str]
    reachable: bool = False
    error: str = ""
    load: str = ""
    cpus: int | None = None
    free_mb: int | None = None
    tmux: str = ""
    git: str = ""
    programs: dict[str, str] = field(default_factory=dict)  # name -> path ("" = not found)
    watch: str = ""  # an SSH host's stops: "inotify" (as they happen) or "poll" (every 0.2 s)
    # an SSH host's dd reads a file without following a link (engine/remotefiles.py READ)
    safe_read: bool | None = None
    # an SSH host's python3 version ("" without one): its agents run under the reaper with it
    python3: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def probe(host: Host, *, timeout: float, programs: tuple[str, ...] = ()) -> Health:
    """One call on ``host``, at most ``timeout`` seconds; every failure is in ``error``."""
    health = Health(host.name, host.address, str(host.root), host.max_active, list(host.labels))
    argv = ["sh", "-c", PROBE_SCRIPT, "hatch-probe", str(host.root), *programs]
    try:
        res = host.run(argv, timeout=timeout)
    except HostUnreachable as exc:
        health.error = str(exc)
        return health
    except HatchError as exc:  # reached, but the probe failed or timed out
        health.reachable, health.error = True, str(exc)
        return health
    health.reachable, health.seconds = True, res.seconds
    for line in res.stdout.splitlines():
        key, _, value = line.partition("=")
        if key == "program":
            prog, _, path = value.partition("=")
            health.programs[prog] = path
        elif key == "inotifywait" and isinstance(host, SshHost):
            health.watch = "inotify" if value.strip() else "poll"
        elif key == "python3" and isinstance(host, SshHost):
            health.python3 = value.strip()
        elif key == "safe_read" and isinstance(host, SshHost):
            health.safe_read = value.strip() == "yes"
        elif key in ("load", "tmux", "git"):
            setattr(health, key, value.strip())
        elif key == "cpus" and value.strip().isdigit():
            health.cpus = int(value)
        elif key == "free_kb" and value.strip().isdigit():
            health.free_mb = int(value) // 1024
    logsetup.get(component="host", host=host.name).info(
        "host_probed", load=health.load, free_mb=health.free_mb, seconds=round(res.seconds, 3)
    )
    return health


def probe_all(hosts: list[Host], *, timeout: float, programs: tuple[str, ...] = ()) -> list[Health]:
    """Every host at once: the slowest host bounds the wait, not the sum of them."""
    if not hosts:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(hosts))) as pool:
        return list(pool.map(lambda h: probe(h, timeout=timeout, programs=programs), hosts))


def problems(health: Health, *, min_free_mb: int = 0) -> list[tuple[str, str]]:
    """(level, text) for each problem: fail for what a host cannot work without."""
    if not health.reachable or health.error:
        return [("fail", health.error or "unreachable")]
    out = [("fail", f"{tool} not found") for tool in ("tmux", "git") if not getattr(health, tool)]
    if health.safe_read is False:
        out.append(("fail", UNSAFE_READ))
    if health.free_mb is not None and health.free_mb < min_free_mb:
        out.append(("fail", f"{health.free_mb} MB free under {health.root}"))
    out += [("warn", f"{p} not found") for p, path in health.programs.items() if not path]
    if health.python3 is not None and not reaps(health.python3):
        out.append(("warn", NO_REAPER))
    if health.watch == "poll":
        out.append(("warn", f"{POLLED}; apt-get install inotify-tools there"))
    return out


def reaps(version: str) -> bool:
    """Whether a host's python3 of ``version`` runs the reaper (engine/remotesandbox.py)."""
    parts = version.split(".")[:2]
    return (
        len(parts) == 2
        and all(p.isdigit() for p in parts)
        and (int(parts[0]), int(parts[1])) >= (3, 8)
    )


def summary(health: Health) -> str:
    """One line: what was found, or the error."""
    if not health.reachable or health.error:
        return health.error or "unreachable"
    free = f"{health.free_mb} MB free" if health.free_mb is not None else "free disk unknown"
    parts = [f"load {health.load or '?'}", f"{free} under {health.root}"]
    parts += [health.tmux or "no tmux", health.git or "no git"]
    if health.watch:
        parts.append("stops by inotify" if health.watch == "inotify" else POLLED)
    return ", ".join(parts)
