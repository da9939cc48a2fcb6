"""Keypress -> screen in the control room with 50 agents, idle and streaming 100 lines/s each.

A real project (git repo, 50 specs, `max_active` 50) whose agent is a small Python script that
stays alive and prints nothing (idle) or 100 lines a second (streaming, switched by a file); the
supervisor runs as `hatchctl` starts it (hidden tmux window, real worktrees, panes, log pipes).
Three targets, each in a 160x45 pane of its own private tmux server (no config,
xterm-256color), driven and read through a tmux control-mode client (`tmux -C`):

- `hatchctl` (the control room on that project): Down/Up in the task table;
- a minimal Textual app: a DataTable of 50 rows, the same keys (the Textual floor);
- `cat`: a letter, echoed by the terminal (the tmux + pty floor).

Per key: the time from writing `send-keys` to the control client until the `%output`
notification after which `capture-pane` shows the change (the highlighted row moved; the letter
is on screen). The targets take turns in blocks of 10 keys, so each sees the same load. With
`--before DIR`, a fourth target: the control room from the hatchctl package under DIR (a copy of
an earlier tree), so before and after are measured under the same load; with `--py-spy FILE`,
the control room is recorded (raw format, 100 Hz, threads) while the keys of each scenario are
pressed (FILE-idle, FILE-streaming). Usage:
bench_keys.py [--agents 50] [--keys 100] [--rate 100] [--only idle|streaming] [--before DIR]
              [--py-spy FILE]
The panes, keys and screen reading are tmuxpane.py's.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_average, machine, pct
from tmuxpane import Cursor, Pane, press, settle, tmux_dir, typed

from hatchctl import logsetup
from hatchctl.project import tmux_socket
from hatchctl.runtime.gitrepo import exclude_hatch_paths
from hatchctl.runtime.scripts import Scripts, builtin_root, unmount_all_under
from hatchctl.runtime.tmux import Tmux
from hatchctl.state.lockfile import probe
from hatchctl.state.paths import ProjectPaths

HATCHCTL = [sys.executable, "-m", "hatchctl"]
CONFIG = """\
[project]
name = "{name}"
base_ref = "main"

[limits]
max_active = {agents}
run_timeout = "2h"
idle_timeout = "2h"
stall_after = "2h"

[agents.factory]
command = ["{python}", "{agent}", "{mode}", "{rate}"]
sandbox = "none"

[agents.qa]
command = ["{python}", "{agent}", "{mode}", "{rate}"]
sandbox = "none"
"""
# the agent: alive until killed; prints `rate` lines a second while the mode file says stream
AGENT = """\
import sys, time
mode_file, rate, step, n, checked, mode = sys.argv[1], int(sys.argv[2]), 0.05, 0, 0.0, "idle"
nxt = time.monotonic()
while True:
    now = time.monotonic()
    if now - checked >= 0.25:
        mode, checked = open(mode_file).read().strip(), now
    k = round(rate * step) if mode == "stream" else 0
    if k:  # one write for the batch
        print("\\n".join(f"step {n + i:07d}: reading, thinking, editing src/module.py ... ok"
                        for i in range(1, k + 1)), flush=True)
        n += k
    nxt = max(nxt + step, now)
    time.sleep(max(0.0, nxt - time.monotonic()))
"""
MINIMAL = """\
from textual.app import App
from textual.widgets import DataTable

class Minimal(App):
    def compose(self):
        yield DataTable(cursor_type="row", zebra_stripes=True)
    def on_mount(self):
        table = self.query_one(DataTable)
        table.add_columns("ID", "TITLE", "STATE", "LAST LINE")
        for i in range({agents}):
            table.add_row(f"B{{i:04d}}", f"Bench task {{i}}", "factory:running", "step 1: ok")
        table.focus()

Minimal().run()
"""
LINE_BYTES = len("step 0000001: reading, thinking, editing src/module.py ... ok\r\n")


load = load_average


def block(pane: Pane, keys: int, out: list[float | None], cursor: Cursor) -> None:
    """``keys`` presses on one target: Down/Up in a table, or a letter for cat."""
    for _ in range(keys):
        if pane.name == "cat":
            before = typed(pane.screen())
            out.append(press(pane, "x", before + 1, typed, 15.0))
        else:
            row = settle(pane, cursor)
            assert isinstance(row, int)
            key, want = ("Down", row + 1) if row == 0 else ("Up", row - 1)
            out.append(press(pane, key, want, cursor, 15.0))
        time.sleep(0.1)  # a person's pace: the screen is idle again before the next key


def make_project(root: Path, name: str, agents: int, rate: int, mode: Path) -> None:
    root.mkdir(parents=True)
    for args in (["init", "-q", "-b", "main"], ["config", "user.email", "bench@example.invalid"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, timeout=30)
    subprocess.run(["git", "config", "user.name", "bench"], cwd=root, check=True, timeout=30)
    agent = root.parent / "agent.py"
    agent.write_text(AGENT)
    (root / "README.md").write_text("bench project\n")
    (root / "hatch.toml").write_text(
        CONFIG.format(
            name=name, agents=agents, python=sys.executable, agent=agent, mode=mode, rate=rate
        )
    )
    specs = root / "specs"
    specs.mkdir()
    for i in range(agents):
        tid = f"B{i:04d}"
        (specs / f"{tid}.md").write_text(
            f"---\nid: {tid}\ntitle: Bench task {i}\nfiles: [src/{tid}.py]\n---\nDo part {i}.\n"
        )
    for args in (["add", "-A"], ["commit", "-q", "-m", "bench project"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, timeout=30)
    exclude_hatch_paths(root)


def running(root: Path) -> int:
    db = f"file:{root / '.hatch' / 'hatch.db'}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(db, uri=True, timeout=5)) as conn:
            return int(
                conn.execute("SELECT COUNT(*) FROM runs WHERE state = 'running'").fetchone()[0]
            )
    except sqlite3.Error:
        return 0


def log_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / ".hatch" / "logs").rglob("*.log"))


def report(
    name: str, values: list[float | None], cpu: tuple[float, float], floors: dict[str, list[float]]
) -> str:
    """One target's line: percentiles, CPU (seconds used, seconds of its blocks: as a share of
    a core, and per key: on a loaded machine a process gets at most its share of the cores,
    so the share is capped; the CPU per key is what its blocks used over their keys, the
    streaming's cost meanwhile included), and its ratios to the floors measured beside it."""
    ok = [v * 1000 for v in values if v is not None]
    lost = len(values) - len(ok)
    if not ok:
        return f"  {name:<9} no key reached the screen ({lost} timed out)"
    p50, p99 = pct(ok, 0.5), pct(ok, 0.99)
    used, spent = cpu
    text = (
        f"  {name:<9} n={len(ok)} p50={p50:.1f}ms p95={pct(ok, 0.95):.1f}ms p99={p99:.1f}ms "
        f"max={max(ok):.1f}ms{f' timeouts={lost}' if lost else ''} CPU "
        f"{100 * used / max(spent, 1e-9):.0f}% of a core ({1000 * used / len(values):.1f} ms a key)"
    )
    for ref, refs in floors.items():
        r = [v * 1000 for v in refs]
        if r:
            text += (
                f"; {p50 / max(pct(r, 0.5), 1e-3):.1f}x / {p99 / max(pct(r, 0.99), 1e-3):.1f}x "
                f"{ref}'s p50 / p99 (p99 {p99 - pct(r, 0.99):+.1f}ms)"
            )
    return text


def main() -> int:
    # `timeout` (or a kill) sends SIGTERM: exit through the finally blocks, which stop the
    # project's supervisor and its 50 agents (otherwise they outlive the bench)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--keys", type=int, default=100, help="per target and scenario")
    parser.add_argument("--rate", type=int, default=100, help="lines/s per agent when streaming")
    parser.add_argument("--only", choices=["idle", "streaming"])
    parser.add_argument("--before", help="a directory holding an earlier hatchctl package")
    parser.add_argument("--py-spy", help="record the control room into FILE-<scenario>")
    args = parser.parse_args()
    logsetup.configure(None)
    print(f"# bench_keys · {machine()}")
    with tempfile.TemporaryDirectory(prefix="hatch-bench-keys-") as tmp:
        root, mode = Path(tmp) / "proj", Path(tmp) / "mode"
        mode.write_text("idle")
        name = f"bkeys{os.getpid()}"
        make_project(root, name, args.agents, args.rate, mode)
        panes: list[Pane] = []
        try:
            t0 = time.monotonic()
            subprocess.run(
                [*HATCHCTL, "-C", str(root)], capture_output=True, timeout=120, check=True
            )
            deadline = time.monotonic() + 600
            while running(root) < args.agents and time.monotonic() < deadline:
                time.sleep(0.5)
            print(f"{running(root)} agents running after {time.monotonic() - t0:.0f}s")
            panes = [Pane("hatchctl", [*HATCHCTL, "-C", str(root)], root)]
            if args.before:  # `env` execs python: the pane's pid is the control room's
                before = ["env", f"PYTHONPATH={args.before}", *HATCHCTL, "-C", str(root)]
                panes.append(Pane("before", before, root))
            panes += [
                Pane("minimal", [sys.executable, "-c", MINIMAL.format(agents=args.agents)], root),
                Pane("cat", ["cat"], root),
            ]
            cursors = {pane.name: Cursor() for pane in panes}
            for pane in panes:
                settle(pane, typed if pane.name == "cat" else cursors[pane.name])
            scenarios = [args.only] if args.only else ["idle", "streaming"]
            for scenario in scenarios:
                mode.write_text("stream" if scenario == "streaming" else "idle")
                time.sleep(3)  # every agent has read the mode file
                results: dict[str, list[float | None]] = {p.name: [] for p in panes}
                cpu = {p.name: [0.0, 0.0] for p in panes}  # CPU seconds, wall seconds
                size0, w0 = log_bytes(root), time.monotonic()
                spy = py_spy(panes[0].pid, f"{args.py_spy}-{scenario}") if args.py_spy else None
                for start in range(0, args.keys, 10):
                    for pane in panes:
                        c0, b0 = pane.cpu(), time.monotonic()
                        block(
                            pane, min(10, args.keys - start), results[pane.name], cursors[pane.name]
                        )
                        cpu[pane.name][0] += pane.cpu() - c0
                        cpu[pane.name][1] += time.monotonic() - b0
                wall = time.monotonic() - w0
                if spy is not None:
                    spy.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
                    spy.wait(timeout=60)
                rate = (log_bytes(root) - size0) / wall / LINE_BYTES
                print(
                    f"keypress -> screen, {args.agents} agents {scenario} (their logs grew "
                    f"~{rate:,.0f} lines/s), {args.keys} keys per target, {wall:.0f}s, "
                    f"load average now {load()}"
                )
                names = [pane.name for pane in panes]
                for n, pane in enumerate(panes):  # each against the floors below it
                    floors = {
                        ref: [v for v in results[ref] if v is not None] for ref in names[n + 1 :]
                    }
                    used, spent = cpu[pane.name]
                    print(report(pane.name, results[pane.name], (used, spent), floors))
        finally:
            for pane in panes:
                pane.close()
            stop_project(root, name)
    return 0


def py_spy(pid: int, out: str) -> subprocess.Popen[bytes]:
    """py-spy (beside this python, else on PATH) recording ``pid`` until SIGINT."""
    spy = Path(sys.executable).with_name("py-spy")
    found = str(spy) if spy.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy: not beside this python nor on PATH")
    argv = [found, "record", "-p", str(pid), "-r", "100", "--threads", "--nonblocking"]
    return subprocess.Popen(
        [*argv, "-f", "raw", "-o", out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def stop_project(root: Path, name: str) -> None:
    """`hatchctl down`, wait for the supervisor to exit, then its tmux server and mounts."""
    subprocess.run(
        [*HATCHCTL, "-C", str(root), "down"], capture_output=True, timeout=60, check=False
    )
    deadline = time.monotonic() + 60  # the supervisor stops its agents, then exits
    while probe(ProjectPaths(root).supervisor_lock).held and time.monotonic() < deadline:
        time.sleep(0.2)
    Tmux(tmux_socket(name, root)).kill_server()
    (tmux_dir() / tmux_socket(name, root)).unlink(missing_ok=True)
    unmount_all_under(Scripts(builtin_root(), timeout=30), root)


if __name__ == "__main__":
    raise SystemExit(main())
