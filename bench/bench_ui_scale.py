"""The control room at scale: start-up to the first task rows on screen, and its CPU once idle.

A project whose store holds 10 000 tasks in every state and ~100 000 events (bench/bigstore.py:
the store's own transactions), and one of 20 tasks. Each target runs in a 160x45 pane of its own
private tmux server (bench/tmuxpane.py's Pane: no config, xterm-256color, read through a tmux
control-mode client). Measured side by side, in turns, in the same run:

- `hatchctl`: `python -m hatchctl -C ROOT --read-only ui` (no supervisor: nothing writes the
  store while it runs); start-up ends when `capture-pane` shows the id of the queue's first task;
- `minimal`: a minimal Textual app showing a DataTable of as many rows (added in one
  `add_rows`), the Textual floor; start-up ends when its first row's id is on screen.

Then the control room's CPU (% of a core, psutil `cpu_times` of its process over `--idle`
seconds) once it is up, with those tasks and no agent running; and, with `--agents N`, on a
bench_keys-style project of N idle agents (a real supervisor, no keys pressed), the minimal
app's CPU beside it (`--stream`: the agents print 100 lines/s each, as bench_keys' streaming).

Usage: bench_ui_scale.py [--tasks 10000] [--events 100000] [--reps 3] [--idle 10]
       [--agents 50] [--agents-wait 2] [--stream] [--rounds 1] [--only start|idle|agents]
       [--py-spy FILE --py-spy-for start|idle|agents]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_keys import make_project as make_agents_project
from bench_keys import running, stop_project
from bigstore import make_project, populate
from common import HATCHCTL, ROOT, compile_tree, load_average, machine
from tmuxpane import Pane

from hatchctl import logsetup
from hatchctl.project import Project, ProjectPaths
from hatchctl.state.lockfile import probe

MINIMAL = """\
import sys
from textual.app import App
from textual.widgets import DataTable

N = int(sys.argv[1])

class Minimal(App):
    def compose(self):
        yield DataTable(cursor_type="row", zebra_stripes=True)
    def on_mount(self):
        table = self.query_one(DataTable)
        table.add_columns("ID", "TITLE", "ROLE", "STATE", "ITER", "STRIKES", "USAGE", "LAST LINE")
        table.add_rows(
            (f"M{i:05d}", f"Implement part {i} of the inventory service", "factory",
             "completed", "1", "0/3", "12.3k tok $0.12", "finding 1 in mod7.py")
            for i in range(N)
        )
        table.focus()

Minimal().run()
"""


LOG = (
    b"".join(
        b"\x1b[36mstep %d\x1b[0m: reading, thinking, editing src/inventory/mod.py ... \x1b[32mok\x1b[0m\r\n"
        % k
        for k in range(50)
    )
    + b"%s: done, summary written\r\n"
)


def first_task(root: Path, last: bool = False) -> str:
    """The id the control room shows first (the queue's order: priority, then id), or last."""
    db = f"file:{root / '.hatch' / 'hatch.db'}?mode=ro"
    order = "priority ASC, id DESC" if last else "priority DESC, id"
    with closing(sqlite3.connect(db, uri=True, timeout=5)) as conn:
        row = conn.execute(f"SELECT id FROM tasks ORDER BY {order} LIMIT 1").fetchone()
    return str(row[0])


def whole(pane: Pane, last: str, t0: float, timeout: float = 120.0) -> float:
    """Seconds from ``t0`` until End (the minimal app's DataTable: ctrl+End) shows the last row
    (every row is in the table)."""
    key = "C-End" if pane.name == "minimal" else "End"
    deadline = t0 + timeout
    while time.perf_counter() < deadline:
        pane.command(f"send-keys -t main {key}")
        pane.output.wait(0.1)
        pane.output.clear()
        if any(last in line for line in pane.command("capture-pane -p -t main")):
            return time.perf_counter() - t0
    raise SystemExit(f"{pane.name}: {last} never on screen")


def build(root: Path, tasks: int, events: int) -> float:
    """A project with a big store and every run's log (~4 KiB of coloured agent output, as
    tmux's pipe-pane writes it); the seconds it took."""
    t0 = time.perf_counter()
    make_project(root, name=f"bui{os.getpid()}{tasks}")
    project = Project.find(root)
    project.paths.ensure()
    store = project.open_store()
    try:
        populate(store, tasks, events_per_task=max(1, events // max(tasks, 1)))
        for run in store.runs():
            log = root / run.log_path
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_bytes(LOG % run.task_id.encode())
    finally:
        store.close()
    return time.perf_counter() - t0


def on_screen(pane: Pane, text: str, t0: float, timeout: float = 120.0) -> float:
    """Seconds from ``t0`` until ``capture-pane`` shows ``text`` (checked after each output)."""
    deadline = t0 + timeout
    while time.perf_counter() < deadline:
        pane.output.wait(0.05)
        pane.output.clear()
        if any(text in line for line in pane.command("capture-pane -p -t main")):
            return time.perf_counter() - t0
        if pane.command("display-message -p -t main '#{pane_dead}'") == ["1"]:
            break
    screen = pane.command("capture-pane -p -S - -t main")
    raise SystemExit(f"{pane.name}: {text} not on screen:\n" + "\n".join(screen[-40:]))


def start(
    name: str, argv: list[str], cwd: Path, wanted: str, last: str | None = None
) -> tuple[Pane, float, float]:
    """The target started in a new pane; the seconds until ``wanted`` is on screen, and (with
    ``last``) until End shows the last row."""
    t0 = time.perf_counter()
    pane = Pane(name, argv, cwd)
    try:
        first = on_screen(pane, wanted, t0)
        return pane, first, whole(pane, last, t0) if last else 0.0
    except BaseException:
        pane.close()
        raise


def cpu_percent(pid: int, seconds: float) -> float:
    """% of one core used by ``pid`` (and the children it waits for) over ``seconds``."""
    proc = psutil.Process(pid)
    c0, w0 = proc.cpu_times(), time.monotonic()
    time.sleep(seconds)  # the measurement window itself, not a wait for a condition
    c1, w1 = proc.cpu_times(), time.monotonic()
    used = (c1.user - c0.user) + (c1.system - c0.system)
    return 100.0 * used / (w1 - w0)


def supervisor_cpu_percent(root: Path, seconds: float) -> float | None:
    """% of one core used by the project's supervisor over ``seconds``, with the processes it
    started and waited for (git, tmux calls): the engine's whole cost."""
    lock = probe(ProjectPaths(root).supervisor_lock)
    if not lock.held or lock.pid is None:
        return None
    proc = psutil.Process(lock.pid)

    def used() -> float:
        t = proc.cpu_times()
        return t.user + t.system + t.children_user + t.children_system

    c0, w0 = used(), time.monotonic()
    time.sleep(seconds)  # the measurement window itself
    return 100.0 * (used() - c0) / (time.monotonic() - w0)


def py_spy(pid: int, out: str, seconds: int) -> subprocess.Popen[bytes]:
    spy = Path(sys.executable).with_name("py-spy")  # else the one on PATH (e.g. a /tmp venv's)
    found = str(spy) if spy.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy: not beside this python nor on PATH")
    argv = [found, "record", "-p", str(pid), "-d", str(seconds), "-r", "100", "--threads"]
    return subprocess.Popen(
        [*argv, "-f", "raw", "--nonblocking", "-o", out],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def ui_argv(root: Path, code: str | None = None) -> list[str]:
    """The control room; from the hatchctl package under ``code`` if given (a copy of an
    earlier tree, for before/after in the same run; ``env`` execs python: the pane's pid)."""
    pre = ["env", f"PYTHONPATH={code}"] if code else []
    return [*pre, *HATCHCTL, "-C", str(root), "--read-only", "ui"]


def minimal_argv(rows: int) -> list[str]:
    return [sys.executable, "-c", MINIMAL, str(rows)]


def ms(values: list[float]) -> str:
    return " / ".join(f"{v * 1000:.0f}" for v in values)


def startup(roots: dict[int, Path], reps: int, before: str | None) -> None:
    for tasks, root in roots.items():
        wanted, last = first_task(root), first_task(root, last=True)
        targets = [("hatchctl", ui_argv(root), wanted, last)]
        if before:
            targets.append(("before", ui_argv(root, before), wanted, last))
        targets.append(("minimal", minimal_argv(tasks), "M00000", f"M{tasks - 1:05d}"))
        took: dict[str, list[float]] = {name: [] for name, _, _, _ in targets}
        every: dict[str, list[float]] = {name: [] for name, _, _, _ in targets}
        for _ in range(reps):  # in turns: every target sees the same load
            for name, argv, want, end in targets:
                pane, seconds, all_rows = start(name, argv, root, want, end)
                pane.close()
                took[name].append(seconds)
                every[name].append(all_rows)
        floor = statistics.median(took["minimal"])
        print(f"start-up to the first rows on screen, {tasks} tasks (load {load_average()}):")
        for name, values in took.items():
            med = statistics.median(values)
            print(
                f"  {name:<9} median {med * 1000:6.0f} ms ({ms(values)}); "
                f"{med / floor:.2f}x the minimal DataTable of {tasks} rows, "
                f"{(med - floor) * 1000:+.0f} ms; End shows the last row after "
                f"{statistics.median(every[name]) * 1000:.0f} ms ({ms(every[name])})"
            )


def idle_cpu(root: Path, tasks: int, seconds: float, spy: str | None, before: str | None) -> None:
    """The control room's and the minimal app's CPU, up and idle (every row in the table,
    the cursor back on the first: End then Home), measured in turn."""
    wanted, last = first_task(root), first_task(root, last=True)
    targets = [("hatchctl", ui_argv(root), wanted, last)]
    if before:
        targets.append(("before", ui_argv(root, before), wanted, last))
    targets.append(("minimal", minimal_argv(tasks), "M00000", f"M{tasks - 1:05d}"))
    panes: list[Pane] = []
    try:
        for name, argv, want, end in targets:
            panes.append(start(name, argv, root, want, end)[0])
            panes[-1].command(f"send-keys -t main {'C-Home' if name == 'minimal' else 'Home'}")
        time.sleep(2.0)  # past the refreshes the keys caused: the steady state is measured
        profiler = py_spy(panes[0].pid, spy, int(seconds)) if spy else None
        used = [(pane.name, cpu_percent(pane.pid, seconds)) for pane in panes]
        if profiler is not None:
            profiler.wait(timeout=seconds + 60)
        print(
            f"idle CPU, {tasks} tasks, no agent process ({seconds:g} s each, in turn; load "
            f"{load_average()}): " + ", ".join(f"{n} {p:.1f} %" for n, p in used) + " of a core"
        )
    finally:
        for pane in panes:
            pane.close()


def agents_cpu(
    tmp: Path,
    agents: int,
    seconds: float,
    spy: str | None,
    before: str | None,
    wait: float,
    stream: bool = False,
    rounds: int = 1,
) -> None:
    """bench_keys' project of ``agents`` idle agents under a real supervisor; the control
    room's CPU with no key pressed, and the minimal app's (as many rows) beside it, ``wait``
    seconds after the targets are up (past 60 s: the agents' clocks tick once a minute). With
    ``rounds`` > 1 the targets are measured in turn that many times (the load of a shared
    machine moves: each round compares them under the same), each round's figures printed,
    then the medians."""
    root, mode = tmp / "agents", tmp / "mode"
    mode.write_text("stream" if stream else "idle")  # streaming: 100 lines/s each
    name = f"buia{os.getpid()}"
    make_agents_project(root, name, agents, 100, mode)
    panes: list[Pane] = []
    try:
        t0 = time.monotonic()
        subprocess.run([*HATCHCTL, "-C", str(root)], capture_output=True, timeout=120, check=True)
        deadline = time.monotonic() + 600
        while running(root) < agents and time.monotonic() < deadline:
            time.sleep(0.5)
        print(f"{running(root)} agents running after {time.monotonic() - t0:.0f}s")
        targets = [("hatchctl", [*HATCHCTL, "-C", str(root)], "B0000")]
        if before:
            targets.append(("before", ["env", f"PYTHONPATH={before}", *targets[0][1]], "B0000"))
        targets.append(("minimal", minimal_argv(agents), "M00000"))
        for target, argv, want in targets:
            panes.append(start(target, argv, root, want)[0])
        time.sleep(wait)  # past the first refreshes (or the first minute)
        profiler = py_spy(panes[0].pid, spy, int(seconds)) if spy else None
        sup = supervisor_cpu_percent(root, seconds)
        figures: dict[str, list[float]] = {pane.name: [] for pane in panes}
        for i in range(rounds):
            used = [(pane.name, cpu_percent(pane.pid, seconds)) for pane in panes]
            if profiler is not None:
                profiler.wait(timeout=seconds + 60)
                profiler = None
            for name, value in used:
                figures[name].append(value)
            print(
                f"idle CPU, {agents} {'streaming' if stream else 'idle'} agents, no key pressed, "
                f"from {wait:g} s after the start{f', round {i + 1}' if rounds > 1 else ''} "
                f"({seconds:g} s each, in turn; load "
                f"{load_average()}): " + ", ".join(f"{n} {p:.1f} %" for n, p in used) + " of a core"
            )
        if rounds > 1:
            medians = ", ".join(f"{k} {statistics.median(v):.1f} %" for k, v in figures.items())
            print(f"medians of {rounds} rounds: {medians} of a core")
        if sup is not None:
            print(f"the supervisor of those {agents} agents (with its git/tmux calls): {sup:.1f} %")
    finally:
        for pane in panes:
            pane.close()
        stop_project(root, name)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=20, help="the small project's tasks")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds per CPU figure")
    parser.add_argument("--agents", type=int, default=50, help="0: skip the agents' CPU")
    parser.add_argument("--only", choices=["start", "idle", "agents"])
    parser.add_argument("--stream", action="store_true", help="the agents print 100 lines/s")
    parser.add_argument(
        "--agents-wait", type=float, default=2.0, help="seconds before the agents' CPU figure"
    )
    parser.add_argument("--rounds", type=int, default=1, help="--only agents: measured in turn")
    parser.add_argument("--py-spy", help="record the control room (raw format) into this file")
    parser.add_argument("--py-spy-for", choices=["start", "idle", "agents"], default="idle")
    parser.add_argument(
        "--before", help="a directory holding an earlier tree's hatchctl package: measured too"
    )
    args = parser.parse_args()
    compile_tree(ROOT)  # the trees measured run from bytecode, as installed
    if args.before:
        compile_tree(Path(args.before))
    logsetup.configure(None)
    print(f"# bench_ui_scale · {machine()}")
    tmp = Path(tempfile.mkdtemp(prefix="hatch-bench-ui-"))
    try:
        roots: dict[int, Path] = {}
        if args.only in (None, "start", "idle"):
            for tasks in (args.tasks, args.small):
                roots[tasks] = tmp / f"p{tasks}"
                events = args.events if tasks == args.tasks else tasks * 10
                took = build(roots[tasks], tasks, events)
                print(f"store of {tasks} tasks, ~{events} events built in {took:.1f} s")
        if args.py_spy and args.py_spy_for == "start":
            root = roots[args.tasks]
            pane = Pane("hatchctl", ui_argv(root), root)
            try:
                py_spy(pane.pid, args.py_spy, 10).wait(timeout=120)
            finally:
                pane.close()
        if args.only in (None, "start"):
            startup(roots, args.reps, args.before)
        if args.only in (None, "idle"):
            spy = args.py_spy if args.py_spy_for == "idle" else None
            idle_cpu(roots[args.tasks], args.tasks, args.idle, spy, args.before)
        if args.only in (None, "agents") and args.agents:
            spy = args.py_spy if args.py_spy_for == "agents" else None
            agents_cpu(
                tmp,
                args.agents,
                args.idle,
                spy,
                args.before,
                args.agents_wait,
                args.stream,
                args.rounds,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
