"""How fast a `.stop` written on an SSH host reaches the controller, against one written here, and
what watching a host costs the controller: the loopback host of tests/hosts/sshd.py (a real
sshd on 127.0.0.1, so the figures are hatchctl's and the protocol's cost; a real host's round
trip comes on top).

1. Latency, ``--stops`` stops per mode (random gaps of 30-150 ms, so a poll's phase is random):
   the bench writes each stop as the wrapper does (a temp file, then ``mv``) and times it until
   the controller's queue has it: ``local`` is hatchctl's own Watcher (watchdog, what the
   supervisor reads for a local run) on a local directory; ``inotify`` and ``poll`` are a host's
   watcher stream (engine/remotewatch.HostWatch on its master connection) in each mode.
2. Cost per host while idle, ``--idle`` seconds per mode: CPU of the stream's ssh client, the
   master connection's ssh process and the two watcher threads (reader and log mirror) here,
   and of the stream's loop on the host (bash or sh with its find/sort children, inotifywait).
3. Cost per event: the same CPU over the latency run, less the idle rate, per stop.
4. With ``--e2e N``: end to end, a project of N tasks (bench/fake_agent.sh, 1-2 s, the real
   wrapper writing each stop) run by `hatchctl run --until-drained` with every task on this
   machine, then with every task on the loopback host (``host_labels``) in each mode: the stop
   file's mtime (on the host for a remote run) -> the run's ``stopped`` transition committed,
   and how many stops came with their content on the stream (else read over ssh)
   (bench/remote_stop_parts.py).
5. With ``--rtt N`` (default 50): the loopback host's own round trip over the master connection,
   a line echoed on an open channel and a command (``true``), so "a local stop plus the round
   trip" is a number.

Usage: bench_remote_stop.py [--stops 100] [--idle 20] [--modes local,inotify,poll] [--e2e 30]
       [--rtt 50]
Needs /usr/sbin/sshd (openssh-server); inotify mode needs inotifywait (inotify-tools).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.hosts.sshd
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_average, machine, pct
from remote_stop_parts import e2e, round_trip

from hatchctl import logsetup
from hatchctl.config import HostSection
from hatchctl.engine.remotefiles import LogMirror
from hatchctl.engine.remotewatch import MODE_ENV, HostWatch
from hatchctl.hosts.ssh import SshHost
from hatchctl.runtime.watcher import Watcher
from tests.hosts.sshd import SshServer, make_server, unavailable

Sink = queue.Queue[tuple[str, str]]


def write_stop(path: Path, n: int) -> float:
    """Write ``path`` as the wrapper does; the time just before the rename (time.time)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f'{{"n": {n}}}\n')
    at = time.time()
    tmp.rename(path)
    return at


def wait_item(sink: Sink, wanted: str, timeout: float = 10.0) -> float | None:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            kind, path = sink.get(timeout=left)
        except queue.Empty:
            return None
        if path == wanted and kind == "stop":
            return time.time()
    return None


def latencies(io_here: Path, io_there: Path, sink: Sink, n: int) -> list[float]:
    """Seconds from each stop's rename to its queue item (``io_here``: the path the item
    names; ``io_there``: where it is written)."""
    out = []
    rng = random.Random(13)
    for i in range(n):
        rel = f"B{i:04d}/factory.i1/B{i:04d}.factory.i1.a1.stop"
        (io_there / rel).parent.mkdir(parents=True, exist_ok=True)  # made at launch
        time.sleep(rng.uniform(0.03, 0.15))
        written = write_stop(io_there / rel, i)
        got = wait_item(sink, str(io_here / rel))
        if got is not None:
            out.append(got - written)
    return out


def cpu_of(pids: list[int]) -> float:
    """CPU seconds of ``pids`` and their children waited for (the loop's find and sort)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def schedstat(path: str) -> float:
    """CPU seconds from /proc/.../schedstat (ns: finer than the 10 ms of cpu_times)."""
    try:
        with open(path) as fh:
            return int(fh.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


def thread_cpu(tids: list[int]) -> float:
    return sum(schedstat(f"/proc/self/task/{tid}/schedstat") for tid in tids)


def proc_cpu(pids: list[int]) -> float:
    return sum(schedstat(f"/proc/{pid}/schedstat") for pid in pids)


def remote_loop_pids(server: SshServer) -> list[int]:
    """The stream's processes on the (loopback) host: its sh/bash loop, inotifywait and the
    reader (python3, a child of the bash loop)."""
    found: list[int] = []
    assert server.proc is not None
    every = psutil.Process(server.proc.pid).children(recursive=True)
    for p in every:
        with contextlib.suppress(psutil.Error):
            if "hatch-watch" in p.cmdline():
                found.append(p.pid)
    for p in every:
        with contextlib.suppress(psutil.Error):
            if p.pid not in found and p.ppid() in found:
                found.append(p.pid)  # inotifywait, the reader
    return found


class Meter:
    """CPU seconds of the controller's side (ssh client + master, watcher threads) and of the
    host's side of one host's watcher."""

    def __init__(self, host: SshHost, watch: HostWatch, server: SshServer) -> None:
        self.host, self.watch, self.server = host, watch, server

    def sample(self) -> tuple[float, float, float]:
        proc = self.watch._proc  # the stream's ssh client
        master = self.host.master_pid()
        ssh = proc_cpu([p for p in (proc.pid if proc else None, master) if p])
        tids = [t.native_id for t in (self.watch._thread, self.watch._mirror_thread)]
        threads = thread_cpu([t for t in tids if t is not None])
        there = cpu_of(remote_loop_pids(self.server))
        return ssh, threads, there


def loop_host(server: SshServer, base: Path, name: str) -> SshHost:
    section = HostSection(
        ssh=server.destination,
        port=server.port,
        ssh_config=str(server.ssh_config),
        root=str(base / "remote"),
    )
    project = base / f"project-{name}"
    return SshHost("loop", section, project_root=project, state_dir=project / ".hatch")


def remote_mode(
    mode: str, server: SshServer, base: Path, stops: int, idle: float
) -> dict[str, object]:
    host = loop_host(server, base, mode)
    hatch = base / f"there-{mode}" / ".hatch"
    (hatch / "io").mkdir(parents=True)
    (hatch / "logs" / "factory").mkdir(parents=True)
    if mode == "poll":
        os.environ[MODE_ENV] = "poll"
    else:
        os.environ.pop(MODE_ENV, None)
    sink: Sink = queue.Queue()
    here = base / f"here-{mode}" / "io"
    mirror = LogMirror(host, timeout=30)
    watch = HostWatch(host, PurePosixPath(hatch), sink, mirror=mirror, local_io=here)
    watch.start()
    try:
        deadline = time.monotonic() + 30
        while not watch.connected.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert watch.mode == mode, f"the stream says {watch.mode!r}, not {mode!r}"
        meter = Meter(host, watch, server)
        time.sleep(1.0)  # settled: the first listings are out
        a = meter.sample()
        t0 = time.monotonic()
        time.sleep(idle)
        b = meter.sample()
        idle_s = time.monotonic() - t0
        t1 = time.monotonic()
        lat = latencies(here, hatch / "io", sink, stops)
        busy_s = time.monotonic() - t1
        c = meter.sample()
    finally:
        watch.stop()
        host.close()
    idle_rate = [(b[i] - a[i]) / idle_s for i in range(3)]
    per_event = [((c[i] - b[i]) - idle_rate[i] * busy_s) / max(len(lat), 1) for i in range(3)]
    return {"lat": lat, "idle": idle_rate, "event": per_event, "streams": watch.streams}


def local_mode(base: Path, stops: int) -> dict[str, object]:
    io = base / "local" / "io"
    (io).mkdir(parents=True)
    sink: Sink = queue.Queue()
    watcher = Watcher([], sink, recursive=[io])
    watcher.start()
    try:
        time.sleep(0.5)
        lat = latencies(io, io, sink, stops)
    finally:
        watcher.stop()
    return {"lat": lat}


def row(name: str, values: list[float], stops: int) -> str:
    ms = [v * 1000 for v in values]
    if not ms:
        return f"| {name} | 0 of {stops} | | | | |"
    return (
        f"| {name} | {len(ms)} of {stops} | {pct(ms, 0.5):.1f} | {pct(ms, 0.95):.1f} | "
        f"{pct(ms, 0.99):.1f} | {max(ms):.1f} |"
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stops", type=int, default=100)
    ap.add_argument("--idle", type=float, default=20.0)
    ap.add_argument("--modes", default="local,inotify,poll")
    ap.add_argument("--e2e", type=int, default=0, help="tasks per end-to-end project (0: none)")
    ap.add_argument("--rtt", type=int, default=50, help="round trips of each kind (0: none)")
    args = ap.parse_args()
    logsetup.configure(None)
    reason = unavailable()
    if reason:
        print(f"bench_remote_stop: skipped: {reason}")
        return 0
    modes = args.modes.split(",")
    if "inotify" in modes and shutil.which("inotifywait") is None:
        print("bench_remote_stop: no inotifywait here (apt-get install inotify-tools): no inotify")
        modes.remove("inotify")
    print(f"# bench_remote_stop {machine()}")
    print(f"# {args.stops} stops per mode, idle {args.idle:g}s per host mode")
    results: dict[str, dict[str, object]] = {}
    rtt: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="hatch-bench-rstop-") as tmp:
        base = Path(tmp)
        server = make_server(base / "sshd")
        server.start()
        try:
            if args.rtt:
                host = loop_host(server, base, "rtt")
                try:
                    rtt = round_trip(host, args.rtt)
                finally:
                    host.close()
            for mode in modes:
                run: Callable[[], dict[str, object]]
                if mode == "local":
                    run = lambda: local_mode(base, args.stops)  # noqa: E731
                else:
                    run = lambda m=mode: remote_mode(m, server, base, args.stops, args.idle)  # type: ignore[misc]  # noqa: E731
                results[mode] = run()
                print(f"# {mode} done, load average {load_average()}", flush=True)
            for mode in modes if args.e2e else []:
                results[mode]["e2e"] = e2e(mode, server, base, args.e2e)
                print(f"# e2e {mode} done, load average {load_average()}", flush=True)
        finally:
            server.stop()
    if args.rtt:
        print("\n| the loopback host's round trip | n | p50 ms | p95 ms | p99 ms | max ms |")
        print("|---|---|---|---|---|---|")
        print(row("a line echoed on an open channel (cat)", rtt["echo"], args.rtt))
        print(row("a command over the master (`true`)", rtt["command"], args.rtt))
    print(
        "\n| .stop written -> on the controller's queue | stops | p50 ms | p95 ms | p99 ms | max ms |"
    )
    print("|---|---|---|---|---|---|")
    names = {
        "local": "local run (hatchctl's Watcher, watchdog)",
        "inotify": "loopback host, inotify stream",
        "poll": "loopback host, 0.2 s poll stream",
    }
    for mode, res in results.items():
        lat = res["lat"]
        assert isinstance(lat, list)
        print(row(names[mode], lat, args.stops))
    print(
        "\n| host's watcher | idle: ssh here | idle: watcher threads | idle: host's loop "
        "| per stop: ssh here | per stop: threads | per stop: host's loop |"
    )
    print("|---|---|---|---|---|---|---|")
    for mode, res in results.items():
        if mode == "local":
            continue
        idle, event = res["idle"], res["event"]
        assert isinstance(idle, list) and isinstance(event, list)
        cells = [f"{v * 100:.3f}% CPU" for v in idle] + [f"{v * 1000:.2f} ms" for v in event]
        print(f"| {mode} | " + " | ".join(cells) + " |")
    if args.e2e:
        print(
            "\n| .stop written -> run `stopped` committed | stops | p50 ms | p95 ms | p99 ms "
            "| max ms |"
        )
        print("|---|---|---|---|---|---|")
        for mode, res in results.items():
            lat = res.get("e2e", [])
            assert isinstance(lat, list)
            print(row(names[mode].split(" (")[0], lat, 2 * args.e2e))
    print(f"\n# load average at the end {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
