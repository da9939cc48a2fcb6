"""bench/bench_remote_stop.py's end-to-end part and the host's round trip (split from it).

``e2e``: a project of N tasks run by `hatchctl run --until-drained`, every task here or on the
loopback host; seconds from each stop file written to its run's ``stopped`` committed, and the
parts of a host's stop from ``remote_stop_collected``'s ``at`` (``breakdown``).

``round_trip``: what "plus the round trip" is on this host, over its master connection: a line
echoed by ``cat`` on an open channel (what a stop's line rides on, both ways) and a whole
command (``true``: a new session on the master, as each ssh call of hatchctl).
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from common import pct

from hatchctl.engine.remotewatch import MODE_ENV
from hatchctl.hosts.ssh import SshHost
from tests.hosts.sshd import SshServer


def e2e(mode: str, server: SshServer, base: Path, tasks: int) -> list[float]:
    """Seconds from each run's stop file written to its ``stopped`` transition committed."""
    from bench_stop_latency import CONFIG  # the same project and agent as the local bench

    from hatchctl.hosts.base import project_dir_name
    from hatchctl.project import tmux_socket
    from hatchctl.runtime.tmux import Tmux

    root = base / f"e2e-{mode}"
    remote = base / f"e2e-root-{mode}"
    remote.mkdir()
    root.mkdir()
    for argv in (["init", "-q", "-b", "main"], ["config", "user.email", "b@example.invalid"]):
        subprocess.run(["git", *argv], cwd=root, check=True)
    subprocess.run(["git", "config", "user.name", "bench"], cwd=root, check=True)
    name = f"brs{os.getpid()}{mode}"
    agent = Path(__file__).resolve().parent / "fake_agent.sh"
    config = CONFIG.format(name=name, active=4, agent=agent, min=1, max=2)
    labels = ""
    if mode != "local":
        config += (
            f'\n[hosts.loop]\nssh = "{server.destination}"\nport = {server.port}\n'
            f'ssh_config = "{server.ssh_config}"\nroot = "{remote}"\nmax_active = 4\n'
            'labels = ["gpu"]\n'
        )
        labels = "host_labels: [gpu]\n"
    (root / "hatch.toml").write_text(config)
    (root / "specs").mkdir()
    for i in range(tasks):
        tid = f"E{i:04d}"
        (root / "specs" / f"{tid}.md").write_text(
            f"---\nid: {tid}\ntitle: Bench task {i}\nfiles: [src/{tid}.py]\n{labels}---\nDo {i}.\n"
        )
    (root / "README.md").write_text("bench\n")
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "bench"], cwd=root, check=True)
    env = {**os.environ, MODE_ENV: "poll" if mode == "poll" else "auto"}
    try:
        out = subprocess.run(
            [sys.executable, "-m", "hatchctl", "-C", str(root), "run", "--until-drained"],
            capture_output=True,
            text=True,
            timeout=1800,
            env=env,
            check=False,
        )
    finally:
        Tmux(tmux_socket(name, root)).kill_server()
        Tmux(f"{tmux_socket(name, root)}-loop").kill_server()
    if out.returncode != 0:
        print(f"# e2e {mode}: exit {out.returncode}: {out.stderr[-500:]}")
    conn = sqlite3.connect(str(root / ".hatch" / "hatch.db"))
    stopped = dict(
        conn.execute(
            "SELECT run_id, MIN(at) FROM events WHERE kind = 'run_state' "
            "AND to_state = 'stopped' GROUP BY run_id"
        ).fetchall()
    )
    runs = conn.execute("SELECT id, stop_path, host FROM runs").fetchall()
    parts: dict[str, list[float]] = {}
    via: dict[str, int] = {}  # how each stop came: on the watcher's stream, or read over ssh
    steps: dict[int, dict[str, float]] = {}  # run id -> when its first stop went through each
    for run_id, data in conn.execute(
        "SELECT run_id, data FROM events WHERE kind = 'remote_stop_collected' ORDER BY id"
    ):
        doc = json.loads(data)
        if run_id not in steps:
            steps[run_id] = {k: v for k, v in doc.get("at", {}).items() if v is not None}
        for part, ms in doc.get("ms", {}).items():
            parts.setdefault(part, []).append(ms)
        via[doc.get("via", "ssh")] = via.get(doc.get("via", "ssh"), 0) + 1
    conn.close()
    if parts:
        print(
            f"# e2e {mode}: collect's parts, p50 ms: "
            + ", ".join(f"{k} {pct(v, 0.5):.1f}" for k, v in parts.items())
            + f"; stops via {via}"
        )
    there = remote / project_dir_name(root)
    lat = []
    split: dict[str, list[float]] = {}
    for run_id, stop_rel, host in runs:
        stop = (there / stop_rel) if host else (root / stop_rel)
        if run_id in stopped and stop.exists():
            mtime = stop.stat().st_mtime_ns / 1e9
            lat.append(stopped[run_id] - mtime)
            at = {"mtime": mtime, **steps.get(run_id, {}), "stopped": stopped[run_id]}
            for part, ms in breakdown(at).items():
                split.setdefault(part, []).append(ms)
    if split:
        print(f"# e2e {mode}: the parts (ms; stops that came on the stream, p50/p95/p99):")
        for part, ms in split.items():
            print(
                f"#   {part}: n {len(ms)} p50 {pct(ms, 0.5):.1f} p95 {pct(ms, 0.95):.1f}"
                f" p99 {pct(ms, 0.99):.1f} max {max(ms):.1f}"
            )
    return lat


STEPS = {  # a host's stop, from its file's mtime to the run's `stopped` committed
    "there": "the host's watcher saw it (inotify, bash, date)",
    "read": "shipped and read here (find/dd/base64 there, ssh, the reader thread)",
    "queued": "on the supervisor's queue",
    "collect": "the loop collects it (monitor.check)",
    "stopped": "`stopped` committed (collect, record_stop)",
}


def breakdown(at: dict[str, float]) -> dict[str, float]:
    """ms between consecutive steps of one stop (all of them known: a stop on the stream)."""
    names = ["mtime", *STEPS]
    if any(n not in at for n in names):
        return {}
    return {f"{a} -> {b}": (at[b] - at[a]) * 1000 for a, b in itertools.pairwise(names)}


def round_trip(host: SshHost, n: int) -> dict[str, list[float]]:
    """Seconds of ``n`` round trips of each kind (after one warm-up each)."""
    command, echo = [], []
    for i in range(n + 1):
        start = time.perf_counter()
        host.run(["true"], timeout=30)
        if i:
            command.append(time.perf_counter() - start)
    argv = [*host.ssh_argv(), host.remote_command(["cat"])]
    cat = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=host._env())
    killer = threading.Timer(120, cat.kill)  # bounds the reads
    killer.start()
    assert cat.stdin is not None and cat.stdout is not None
    try:
        for i in range(n + 1):
            line = f"{i:08d}\n".encode()
            start = time.perf_counter()
            cat.stdin.write(line)
            cat.stdin.flush()
            got = cat.stdout.readline()
            if i:
                echo.append(time.perf_counter() - start)
            assert got == line, got
    finally:
        killer.cancel()
        cat.stdin.close()
        cat.wait(timeout=10)
    return {"echo": echo, "command": command}
