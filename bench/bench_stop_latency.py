"""`.stop` written -> transition committed, at the scale users run: a real project (git repo, N
specs), `hatchctl run --until-drained` as a user starts it (real tmux on the project's private
socket, real git worktrees and merges, the real wrapper writing the .stop files), `max_active`
agents at once; the agent is bench/fake_agent.sh (streams output for a few seconds, writes a valid
summary, exits), so every task makes a factory and a QA stop.

Side by side in the same run, in this (otherwise idle) process: a raw inotify reader (ctypes) and
hatchctl's own Watcher (watchdog) on the same directory: when each .stop reached them; and, per
stop, raw inotify event -> committed (what the supervisor added, without the machine's own
scheduling delay of the event: on a busy machine raw inotify alone has a p99 of tens of ms).

"before": the supervisor runs with the exporter as it was before issue 11 (the whole snapshot
re-read and rewritten after every commit, bench/bigstore.py LegacyExporter); "after": as hatchctl
opens its store now, with the engine as it is (stop files recorded at checkpoints between any two
pieces of the loop's work and acted on after, an exited run's leftovers killed in a job, the
queue for planning read as it changes). To compare two trees, run `--only after` from a clone of
each (cwd and PYTHONPATH = the clone). Usage: bench_stop_latency.py [--tasks 260] [--active 20]
[--only before|after] [--json FILE] [--py-spy FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import resource
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import compile_tree, pct
from rawinotify import RawInotify

from hatchctl import logsetup
from hatchctl.project import tmux_socket
from hatchctl.runtime.gitrepo import exclude_hatch_paths
from hatchctl.runtime.scripts import Scripts, builtin_root, unmount_all_under
from hatchctl.runtime.tmux import Tmux
from hatchctl.runtime.watcher import Watcher
from hatchctl.state.paths import ProjectPaths

HERE = Path(__file__).resolve().parent
CHILD = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    if sys.argv[2] == "before":
        from bigstore import LegacyExporter
        from hatchctl.project import Project
        from hatchctl.state.store import Store

        def open_store(self):
            paths = self.paths
            paths.ensure()
            exporter = LegacyExporter(paths.snapshot, self.name, paths.supervisor_lock)
            return Store(paths.db, busy_timeout=self.config.limits.db_busy_timeout,
                         on_commit=exporter)

        Project.open_store = open_store
    from hatchctl.cli import main
    raise SystemExit(main(sys.argv[3:]))
""")

CONFIG = """\
[project]
name = "{name}"
base_ref = "main"

[limits]
max_active = {active}
run_timeout = "30m"
idle_timeout = "10m"

[agents.factory]
command = ["bash", "{agent}"]
sandbox = "none"
env = {{ HATCH_BENCH_MIN = "{min}", HATCH_BENCH_MAX = "{max}" }}

[agents.qa]
command = ["bash", "{agent}"]
sandbox = "none"
env = {{ HATCH_BENCH_MIN = "{min}", HATCH_BENCH_MAX = "{max}" }}
"""


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def make_project(root: Path, name: str, tasks: int, active: int, seconds: tuple[int, int]) -> None:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "bench@example.invalid")
    git(root, "config", "user.name", "bench")
    (root / "README.md").write_text("bench project\n")
    (root / "hatch.toml").write_text(
        CONFIG.format(
            name=name, active=active, agent=HERE / "fake_agent.sh", min=seconds[0], max=seconds[1]
        )
    )
    specs = root / "specs"
    specs.mkdir()
    for i in range(tasks):
        tid = f"B{i:04d}"
        (specs / f"{tid}.md").write_text(
            f"---\nid: {tid}\ntitle: Bench task {i}\npriority: {tasks - i}\n"
            f"files: [src/{tid}.py]\n---\nDo part {i}.\n"
        )
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "bench project")
    exclude_hatch_paths(root)


class WatchdogRef:
    """hatchctl's own Watcher (watchdog) into a queue, drained by a thread that notes when each
    .stop arrived: the watchdog part of the supervisor's reaction, without the supervisor."""

    def __init__(self, io: Path) -> None:
        self.queue: queue.Queue[tuple[str, str]] = queue.Queue()
        self.watcher = Watcher([], self.queue, recursive=[io])
        self.seen: dict[str, float] = {}
        self.thread = threading.Thread(target=self._drain, daemon=True)

    def start(self) -> None:
        self.watcher.start()
        self.thread.start()

    def _drain(self) -> None:
        while True:
            _kind, path = self.queue.get()
            if path == "":
                return
            if path.endswith(".stop"):
                self.seen.setdefault(path, time.time())

    def stop(self) -> None:
        self.watcher.stop()
        self.queue.put(("", ""))
        self.thread.join(timeout=5)


def line(name: str, values: list[float], ref: list[float] | None = None) -> str:
    if not values:
        return f"{name}: no samples"
    ms = [v * 1000 for v in values]
    text = (
        f"{name}: n={len(ms)} p50={pct(ms, 0.5):.1f}ms p95={pct(ms, 0.95):.1f}ms "
        f"p99={pct(ms, 0.99):.1f}ms max={max(ms):.1f}ms"
    )
    if ref:
        text += f" ({pct(values, 0.5) / max(pct(ref, 0.5), 1e-9):.0f}x the raw p50, "
        text += f"{pct(values, 0.99) / max(pct(ref, 0.99), 1e-9):.0f}x the raw p99)"
    return text


def one(
    label: str, tasks: int, active: int, seconds: tuple[int, int], profile: Path | None = None
) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="hatch-bench-stop-") as tmp:
        root = Path(tmp) / "proj"
        name = f"bstop{os.getpid()}{label}"
        make_project(root, name, tasks, active, seconds)
        paths = ProjectPaths(root)
        paths.ensure()
        raw = RawInotify(paths.io, ".stop")
        raw.start()
        wd = WatchdogRef(paths.io)
        wd.start()
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        try:
            argv = [sys.executable, "-c", CHILD, str(HERE), label, "-C", str(root), "run"]
            if profile is not None:  # py-spy (pip install py-spy): collapsed stacks, 100 Hz
                out_file = profile.with_name(f"{profile.stem}-{label}{profile.suffix}")
                spy = ["py-spy", "record", "-r", "100", "-f", "raw", "-o", str(out_file), "--"]
                argv = [*spy, *argv]
            out = subprocess.run(
                [*argv, "--until-drained", "--max-time", "60m"],
                capture_output=True,
                text=True,
                check=False,
            )
            wall = time.monotonic() - t0
            cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            raw.stop()
            wd.stop()
            conn = sqlite3.connect(str(paths.db))
            stopped = dict(
                conn.execute(
                    "SELECT run_id, MIN(at) FROM events WHERE kind = 'run_state' "
                    "AND to_state = 'stopped' GROUP BY run_id"
                ).fetchall()
            )
            runs = conn.execute("SELECT id, stop_path, running_at FROM runs").fetchall()
            states = dict(conn.execute("SELECT state, COUNT(*) FROM tasks GROUP BY state"))
            errors = [r[0] for r in conn.execute("SELECT DISTINCT last_error FROM tasks LIMIT 3")]
            conn.close()
            stats = {}
            for run_id, stop_rel, _ in runs:
                stop = root / stop_rel
                if stop.exists():
                    stats[run_id] = stop.stat().st_mtime_ns / 1e9
        finally:
            Tmux(tmux_socket(name, root)).kill_server()
            unmount_all_under(Scripts(builtin_root(), timeout=30), root)
        commit, ref_raw, ref_wd, spans, excess = [], [], [], [], []
        for run_id, stop_rel, running_at in runs:
            stop = str(root / stop_rel)
            if run_id not in stopped or run_id not in stats:
                continue
            written = stats[run_id]
            commit.append(stopped[run_id] - written)
            if stop in raw.seen:
                ref_raw.append(raw.seen[stop] - written)
                excess.append(stopped[run_id] - raw.seen[stop])
            if stop in wd.seen:
                ref_wd.append(wd.seen[stop] - written)
            if running_at is not None:
                spans.append((running_at, stopped[run_id]))
        busiest = max(
            (sum(1 for s, e in spans if s <= t < e) for t, _ in spans),
            default=0,
        )
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        return {
            "label": label,
            "code": out.returncode,
            "stderr": out.stderr[-2000:],
            "states": states,
            "errors": errors,
            "wall": wall,
            "cpu": cpu,
            "busiest": busiest,
            "commit": commit,
            "raw": ref_raw,
            "watchdog": ref_wd,
            "excess": excess,
        }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=260)
    parser.add_argument("--active", type=int, default=20)
    parser.add_argument("--min-seconds", type=int, default=3)
    parser.add_argument("--max-seconds", type=int, default=8)
    parser.add_argument("--only", choices=["before", "after"])
    parser.add_argument("--json", type=Path, help="also write the samples here")
    parser.add_argument("--py-spy", type=Path, help="profile the supervisor into FILE-<label>")
    args = parser.parse_args()
    compile_tree(HERE.parent)  # the tree measured runs from bytecode, as installed
    logsetup.configure(None)
    labels = [args.only] if args.only else ["after", "before"]
    results = []
    for label in labels:
        seconds = (args.min_seconds, args.max_seconds)
        r = one(label, args.tasks, args.active, seconds, args.py_spy)
        results.append(r)
        commit, raw = r["commit"], r["raw"]
        assert isinstance(commit, list) and isinstance(raw, list)
        print(
            f"stop latency [{label}]: {args.tasks} tasks, max_active {args.active}, "
            f"{len(commit)} stops, at most {r['busiest']} agents live at once, "
            f"supervisor exit {r['code']}, tasks {r['states']}, wall {r['wall']:.0f}s, "
            f"supervisor CPU {r['cpu']:.0f}s ({100 * float(r['cpu']) / float(r['wall']):.0f}% "  # type: ignore[arg-type]
            "of a core, with its git and job children)"
        )
        if r["code"] != 0:
            print(r["stderr"], r["errors"])
        print("  " + line(".stop written -> transition committed", commit, raw))
        print("  " + line(".stop written -> raw inotify event (ctypes, this process)", raw))
        print("  " + line(".stop written -> watchdog Watcher queue (this process)", r["watchdog"]))  # type: ignore[arg-type]
        print("  " + line("raw inotify event -> transition committed (same stop)", r["excess"]))  # type: ignore[arg-type]
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
