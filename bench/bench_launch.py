"""Launch N agents (worktree + pane + log pipe), side by side in the same run (issue 11):

- `hatchctl`: a real project (git repo, N specs, `max_active = N`), the factory agent
  `bash -c 'exec sleep 600'` (it just waits, ignoring its prompt argument), `hatchctl run`
  started as a user starts it (PYTHONPATH at the tree measured), from the process's start (and
  from its `supervisor_started` event) to the Nth run `running` (runs.running_at in
  .hatch/hatch.db), with the default sandbox (`auto`: bwrap where it works) and `sandbox =
  "none"`. A rep with a failed job or launch (`job_failed`, `infra_failure`) is reported as
  failed, not timed; `broken_worktrees` lists worktrees whose .git/worktrees/NAME is gone;
- `bash`: a bash loop on an identical repo: for each agent `git worktree add -b hatch/T-i DIR
  main`, `tmux new-window -d -c DIR 'sleep 600'` and `pipe-pane -o 'cat >> LOG'` (a private
  server, `tmux -L NAME -f /dev/null`, its session made first: hatchctl starts its server too);
- `tmuxp`: `tmuxp load -d` of a generated session of N windows (`window_shell: sleep 600`,
  `start_directory` a worktree), from its own venv (`--tmuxp`). `tmuxp-panes`: the worktrees
  made beforehand, not timed; `tmuxp-wt`: made by the session's `before_script` (the same git
  loop as bash), timed. tmuxp has no log pipe.

CPU, the figure a loaded machine disturbs least: hatchctl's supervisor's own and its waited
children's (scripts, git, tmux clients) at the Nth `running`, against the bash loop's (bash,
git, tmux clients); neither counts its tmux server or the agents. The targets take turns (the
order rotates each repetition). Usage: bench_launch.py [--agents 20]
[--reps 3] [--tree DIR] [--tmuxp /tmp/tmuxp-venv/bin/tmuxp] [--only T,T] [--json FILE]
[--tick 0.2s: hatchctl's [limits] tick] [--py-spy FILE: record the supervisor of the first
rep of each hatchctl target, py-spy on PATH]. The projects are made under $TMPDIR (`TMPDIR=/dev/shm`:
on tmpfs; docs/benchmarks.md says why that is the control on the development machine).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, compile_tree, load_average, machine
from launchkit import (
    BASH_SAME,
    LAST_CPU,
    QUERIES,
    broken_worktrees,
    cpu_seconds,
    done,
    fmt,
    kill_tmux,
    make_repo,
    num,
    poll,
    stop_supervisor,
    timed,
    tmux_panes,
    unmount_views,
)

from hatchctl.engine import confinement
from hatchctl.project import tmux_socket
from hatchctl.runtime.scripts import Scripts, builtin_root, unmount_all_under

BASH = r"""
set -eu
T=(tmux -L "$1" -f /dev/null)
R=$2
N=$3
cd "$R"
"${T[@]}" new-session -d -s bench -x 200 -y 50
mkdir -p "$R/.bench/logs"
for i in $(seq 1 "$N"); do
  d="$R/.bench/wt/T-$i"
  git worktree add -q -b "hatch/T-$i" "$d" main
  p=$("${T[@]}" new-window -d -P -F '#{pane_id}' -t bench: -c "$d" 'sleep 600')
  "${T[@]}" pipe-pane -o -t "$p" "cat >> '$R/.bench/logs/T-$i.log'"
  echo "$EPOCHREALTIME" >> "$R/.bench/times"
done
"""

WORKTREES = r"""
set -eu
R=$1
N=$2
cd "$R"
for i in $(seq 1 "$N"); do
  git worktree add -q -b "hatch/T-$i" "$R/.bench/wt/T-$i" main
done
"""


def hatchctl(
    tmp: Path,
    label: str,
    agents: int,
    tree: Path,
    sandbox: str | None,
    spy: Path | None,
    tick: str | None = None,
) -> dict[str, object]:
    root = tmp / "proj"
    name = f"blaunch{os.getpid()}{label.replace('-', '')}"
    make_repo(root, name, agents, sandbox, tick)
    env = {k: v for k, v in os.environ.items() if k != "TMUX"}
    env["PYTHONPATH"] = str(tree)
    argv = [sys.executable, "-m", "hatchctl", "-C", str(root), "run"]
    if spy is not None:
        argv = ["py-spy", "record", "-r", "200", "-t", "-f", "raw", "-o", str(spy), "--", *argv]
    db = root / ".hatch" / "hatch.db"
    socket = tmux_socket(name, root)
    t0 = time.time()
    proc = subprocess.Popen(
        argv, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        poll(lambda: proc.poll() is not None or done(db, agents), "hatchctl: runs running", 180)
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise RuntimeError(f"hatchctl run exited {proc.returncode}: {err[-2000:]}")
        cpu, children_cpu = cpu_seconds(proc.pid) if spy is None else (0.0, 0.0)
        conn = sqlite3.connect(str(db), timeout=5)
        got = {key: conn.execute(sql).fetchall() for key, sql in QUERIES.items()}
        conn.close()
        panes = tmux_panes(socket)
        broken = broken_worktrees(root, root / ".hatch" / "worktrees")
    finally:
        stop_supervisor(proc, root, env)
        kill_tmux(socket)
        unmount_all_under(Scripts(builtin_root(), timeout=30), root)
    running = [float(r[0]) for r in got["running"]]
    failures = [str(r[0])[:300] for r in got["failures"]]
    steps = {str(k): (float(lo) - t0, float(hi) - t0) for k, lo, hi in got["steps"]}
    if len(running) < agents or failures:
        return {"failed": failures, "running": len(running), "broken_worktrees": broken}
    last, started = running[agents - 1] - t0, steps["supervisor_started"][0]
    return {
        "broken_worktrees": broken,
        "total": last,
        # CPU until the Nth run was running: the supervisor's, its scripts' and git's and tmux's
        "cpu": cpu,
        "children_cpu": children_cpu,
        "from_started": last - started,
        "to_started": started,
        "first": running[0] - t0,
        "spread": last - (running[0] - t0),
        "worktrees": steps["worktree_ready"][1] - steps["task_started"][0],
        # each step's first and last event, from the process's start (s)
        "timeline": {k: [round(lo, 3), round(hi, 3)] for k, (lo, hi) in steps.items()},
        "panes": panes,
        "runs": [list(r) for r in got["states"]],
        "events": dict(got["events"]),
        "sandbox": sorted(str(r[0]) for r in got["sandbox"]),
    }


def bash(tmp: Path, label: str, agents: int, tree: Path | None = None) -> dict[str, object]:
    """The bash loop (``BASH``), or with ``tree`` hatchctl's own commands for N launches from
    that tree (launchkit.BASH_SAME: its scripts mount read-only views, unmounted after)."""
    root = tmp / "proj"
    make_repo(root, label, agents, None if tree is None else "none")
    script = tmp / "launch.sh"
    script.write_text(BASH if tree is None else BASH_SAME)
    socket = f"blaunch{os.getpid()}{label.replace('-', '')}"
    argv = ["bash", str(script), socket, str(root), str(agents)]
    if tree is not None:  # the reaper as a launch starts it (sandbox none), from the tree
        boot = [sys.executable, "-I", "-S", "-c", confinement.REAPER_BOOT, str(tree)]
        argv += [str(tree / "hatch_scripts"), *boot, "--grace", "5", "--"]
    try:
        t0, t1 = timed(argv, root, f"{label} loop")
        cpu = LAST_CPU[0]  # bash, git, tmux clients (not the tmux server: nor for hatchctl)
        times = [float(x) for x in (root / ".bench" / "times").read_text().split()]
        panes = tmux_panes(socket)
        broken = broken_worktrees(root, root / ".bench" / "wt")
    finally:
        kill_tmux(socket)
        if tree is not None:
            unmount_views(root)
    return {
        "total": t1 - t0,
        "cpu": cpu,
        "first": times[0] - t0,
        "spread": times[-1] - times[0],
        "panes": panes,
        "broken_worktrees": broken,
    }


def tmuxp(tmp: Path, label: str, agents: int, exe: str, worktrees_timed: bool) -> dict[str, object]:
    root = tmp / "proj"
    make_repo(root, label, agents, None)
    mkwt = tmp / "worktrees.sh"
    mkwt.write_text(WORKTREES)
    socket = f"blaunch{os.getpid()}{label.replace('-', '')}"
    make = ["bash", str(mkwt), str(root), str(agents)]
    if not worktrees_timed:
        subprocess.run(make, check=True, capture_output=True, timeout=120)
    session = {  # JSON is YAML: tmuxp loads it as the same session
        "session_name": "bench",
        "start_directory": str(root),
        **({"before_script": shlex.join(make)} if worktrees_timed else {}),
        "windows": [
            {
                "window_name": f"T-{i}",
                "start_directory": f"{root}/.bench/wt/T-{i}",
                "window_shell": "sleep 600",
                "panes": [None],
            }
            for i in range(1, agents + 1)
        ],
    }
    conf = tmp / "session.json"
    conf.write_text(json.dumps(session))
    load = [exe, "load", "-L", socket, "-f", "/dev/null", "-d", "-y", "--no-progress", str(conf)]
    try:
        t0, t1 = timed(load, root, "tmuxp")
        if tmux_panes(socket) < agents:  # not yet (never seen): until they are, bounded
            t1 = poll(lambda: tmux_panes(socket) >= agents, "tmuxp: panes", 30)
        panes = tmux_panes(socket)
        broken = broken_worktrees(root, root / ".bench" / "wt")
    finally:
        kill_tmux(socket)
    return {"total": t1 - t0, "panes": panes, "broken_worktrees": broken}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tree", type=Path, default=ROOT, help="the hatchctl tree to run")
    parser.add_argument(
        "--tmuxp", default=shutil.which("tmuxp") or str(ROOT / "tools/bench-venv/bin/tmuxp")
    )
    parser.add_argument("--only", help="comma-separated targets")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--py-spy", type=Path)
    parser.add_argument("--tick", help="[limits] tick for hatchctl (default: hatchctl's, 1s)")
    args = parser.parse_args()
    n = args.agents
    compile_tree(args.tree)
    targets: dict[str, Callable[[Path], dict[str, object]]] = {
        "hatchctl": lambda t: hatchctl(
            t, "hatchctl", n, args.tree, None, spy("hatchctl"), args.tick
        ),
        "hatchctl-none": lambda t: hatchctl(
            t, "hatchctl-none", n, args.tree, "none", spy("none"), args.tick
        ),
        "bash": lambda t: bash(t, "bash", n),
        "bash-same": lambda t: bash(t, "bash-same", n, args.tree),
        "tmuxp-panes": lambda t: tmuxp(t, "tmuxp-panes", n, args.tmuxp, False),
        "tmuxp-wt": lambda t: tmuxp(t, "tmuxp-wt", n, args.tmuxp, True),
    }
    spied: set[str] = set()

    def spy(label: str) -> Path | None:
        base: Path | None = args.py_spy
        if base is None or label in spied:
            return None
        spied.add(label)
        return base.with_name(f"{base.stem}-{label}{base.suffix}")

    if args.only:
        targets = {k: v for k, v in targets.items() if k in args.only.split(",")}
    if any(k.startswith("tmuxp") for k in targets) and not Path(args.tmuxp).exists():
        if args.only:
            sys.exit(f"no tmuxp at {args.tmuxp} (--tmuxp; tools/bench_refs.sh installs it)")
        print(f"no tmuxp at {args.tmuxp}: its targets are skipped (tools/bench_refs.sh)")
        targets = {k: v for k, v in targets.items() if not k.startswith("tmuxp")}
    print(machine())
    print(f"tree {args.tree}, {n} agents, {args.reps} repetitions, load at start {load_average()}")
    results: dict[str, list[dict[str, object]]] = {k: [] for k in targets}
    order = list(targets)
    for rep in range(args.reps):
        turn = order[rep % len(order) :] + order[: rep % len(order)]
        for label in turn:
            with tempfile.TemporaryDirectory(prefix=f"hatch-bench-launch-{label}-") as tmp:
                r = targets[label](Path(tmp))
            r["load"] = load_average()
            results[label].append(r)
            print(f"rep {rep + 1} {label}: " + json.dumps(r, default=str), flush=True)
    print(f"load at end {load_average()}")

    for all_rs in results.values():
        for r in all_rs:
            if "cpu" in r:
                r["own_children_cpu"] = num(r, "cpu") + num(r, "children_cpu", 0.0)

    def paired(label: str, ref: str, key: str = "total") -> str:
        """The median over repetitions of label's figure / ref's in the same repetition (they
        ran one after the other: a load that drifts over the run cancels out)."""
        pairs = zip(results.get(label, []), results.get(ref, []), strict=False)
        ratios = [num(a, key) / num(b, key) for a, b in pairs if key in a and key in b]
        return f"{statistics.median(ratios):.2f}x" if ratios else ""

    print(f"\n| target | {n} agents launched (median, range) | vs bash | vs bash-same | spread |")
    print("|---|---|---|---|---|")
    for label, all_rs in results.items():
        rs = [r for r in all_rs if "total" in r]
        if len(rs) < len(all_rs):
            print(f"| {label}: {len(all_rs) - len(rs)} of {len(all_rs)} reps failed | | | | |")
        if not rs:
            continue
        totals = [num(r, "total") for r in rs]
        spreads = [num(r, "spread") for r in rs if "spread" in r]
        print(
            f"| {label} | {fmt(totals, n)} | {paired(label, 'bash')} | "
            f"{paired(label, 'bash-same')} | {fmt(spreads) if spreads else ''} |"
        )
        if label.startswith("hatchctl"):
            for key in ("to_started", "from_started", "first", "worktrees", "cpu", "children_cpu"):
                vals = [num(r, key) for r in rs]
                print(f"|   {label} {key} | {fmt(vals)} | | | |")
            # the figure load disturbs least: CPU (own + waited children's) against the loops'
            cpus = [num(r, "own_children_cpu") for r in rs]
            print(
                f"|   {label} CPU, own + children | {fmt(cpus)} | "
                f"{paired(label, 'bash', 'own_children_cpu')} | "
                f"{paired(label, 'bash-same', 'own_children_cpu')} | |"
            )
        elif label.startswith("bash"):
            cpus = [num(r, "cpu") for r in rs]
            print(f"|   {label} CPU, bash + children | {fmt(cpus)} | | | |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
