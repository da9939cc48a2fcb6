"""What one command costs the controller on each kind of host: run locally (LocalHost), over the
host's multiplexed master connection (SshHost: what hatchctl does), and over a fresh ssh
connection per call (no ControlMaster: TCP, key exchange and authentication each time). The
"remote" host is a throwaway sshd on 127.0.0.1 (tests/hosts/sshd.py): the figures are the
controller's and the protocol's cost, the network round trip of a real host comes on top.

Also a tmux call (``display-message``) on the host's tmux server, locally and through the
master, and the CPU time the controller's child processes (ssh clients) use per call.

Usage: bench_ssh.py [--calls 100]; needs /usr/sbin/sshd (apt-get install -y openssh-server).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.hosts.sshd
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, pct

from hatchctl import logsetup
from hatchctl.config import HostSection
from hatchctl.hosts import LocalHost, SshHost
from hatchctl.runtime import proc
from tests.hosts.sshd import make_server, unavailable


def header() -> str:
    return f"# bench_ssh {machine()} · {proc.run(['ssh', '-V'], timeout=5).stderr.strip()}"


def measure(name: str, call: Callable[[], object], n: int) -> None:
    call()  # warm: the first call over ssh opens the master
    times = []
    before = os.times()
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    after = os.times()
    cpu = (after.children_user + after.children_system) - (
        before.children_user + before.children_system
    )
    print(
        f"{name:<34} n={n} p50={pct(times, 0.5):7.2f}ms p99={pct(times, 0.99):7.2f}ms "
        f"max={max(times):7.2f}ms  child cpu/call={cpu / n * 1000:5.2f}ms"
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=100)
    args = ap.parse_args()
    logsetup.configure(None)
    reason = unavailable()
    if reason:
        print(f"bench_ssh: skipped: {reason}")
        return 0
    print(header())
    with tempfile.TemporaryDirectory(prefix="hatch-bench-ssh-") as tmp:
        base = Path(tmp)
        server = make_server(base / "sshd")
        server.start()
        section = HostSection(
            ssh=server.destination,
            port=server.port,
            ssh_config=str(server.ssh_config),
            root=str(base / "remote"),
        )
        project = base / "project"
        ssh = SshHost("loop", section, project_root=project, state_dir=project / ".hatch")
        local = LocalHost(project)
        fresh = ["ssh", "-F", str(server.ssh_config), "-p", str(server.port), "-o", "BatchMode=yes"]
        fresh += [
            "-o",
            "ControlMaster=no",
            "-o",
            "ControlPath=none",
            "-T",
            "--",
            server.destination,
        ]
        socket = f"hatch-bench-{uuid.uuid4().hex[:8]}"
        local_tmux = local.tmux(socket, timeout=10)
        ssh_tmux = ssh.tmux(socket + "-r", timeout=10)
        try:
            n = args.calls
            measure("local: true", lambda: local.run(["true"], timeout=10), n)
            measure("ssh master: true", lambda: ssh.run(["true"], timeout=10), n)
            measure(
                "ssh fresh connection: true",
                lambda: proc.run([*fresh, "true"], timeout=10),
                n,
            )
            local_tmux.ensure_server(base)
            ssh_tmux.ensure_server(base)
            measure("local: tmux display-message", local_tmux.server_pid, n)
            measure("ssh master: tmux display-message", ssh_tmux.server_pid, n)
        finally:
            local_tmux.kill_server()
            ssh_tmux.kill_server()
            ssh.close()
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
