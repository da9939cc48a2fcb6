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

The targets take turns (the order rotates each repetition). Usage: bench_launch.py [--agents 20]
[--reps 3] [--tree DIR] [--tmuxp /tmp/tmuxp-venv/bin/tmuxp] [--only T,T] [--json FILE]
[--tick 0.2s: hatchctl's [limits] tick] [--py-spy FILE: record the supervisor of the first
rep of each hatchctl target, py-spy on PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, load_average, machine

from hatchctl.project import tmux_socket
from hatchctl.runtime.scripts import Scripts, builtin_root, unmount_all_under
from hatchctl.runtime.tmux import Tmux

CONFIG = """\
[project]
name = "{name}"
base_ref = "main"

[limits]
max_active = {active}
{tick}run_timeout = "30m"
idle_timeout = "20m"

[agents.factory]
command = ["bash", "-c", "exec sleep 600", "agent"]  # the prompt argument: ignored
{sandbox}
[agents.qa]
command = ["bash", "-c", "exec sleep 600", "agent"]  # the prompt argument: ignored
{sandbox}
"""

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

TIMEOUT = 300.0  # every wait is bounded


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, timeout=60)


def make_repo(
    root: Path, name: str, agents: int, sandbox: str | None, tick: str | None = None
) -> None:
    """The same repository for every target: a README, hatch.toml and N specs, one commit."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "bench@example.invalid")
    git(root, "config", "user.name", "bench")
    (root / "README.md").write_text("bench project\n")
    line = f'sandbox = "{sandbox}"\n' if sandbox else ""
    ticks = f'tick = "{tick}"\n' if tick else ""
    (root / "hatch.toml").write_text(
        CONFIG.format(name=name, active=agents, sandbox=line, tick=ticks)
    )
    specs = root / "specs"
    specs.mkdir()
    for i in range(agents):
        tid = f"L{i:03d}"
        (specs / f"{tid}.md").write_text(
            f"---\nid: {tid}\ntitle: Launch task {i}\npriority: {agents - i}\n"
            f"files: [src/{tid}.py]\n---\nWait.\n"
        )
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "bench project")
    with (root / ".git" / "info" / "exclude").open("a") as f:
        f.write(".hatch/\n.bench/\n")


def poll(check: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> float:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise TimeoutError(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.05)
    return time.time()


def tmux_panes(socket: str) -> int:
    out = subprocess.run(
        ["tmux", "-L", socket, "list-panes", "-a", "-F", "#{pane_id} #{pane_current_command}"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return len(out.stdout.splitlines())  # every pane of the server (hatchctl's: its agents')


def broken_worktrees(repo: Path, under: Path) -> list[str]:
    """Worktrees whose admin directory (.git/worktrees/NAME) is gone: git cannot use them."""
    if not under.is_dir():
        return []
    admin = repo / ".git" / "worktrees"
    return sorted(
        d.name for d in under.iterdir() if (d / ".git").is_file() and not (admin / d.name).is_dir()
    )


FAILED = "FROM events WHERE kind IN ('job_failed', 'infra_failure')"
QUERIES = {  # what the store says once the Nth run is running (or a launch failed)
    "running": "SELECT running_at FROM runs WHERE running_at IS NOT NULL ORDER BY running_at",
    "states": "SELECT state, reason, COUNT(*) FROM runs GROUP BY state, reason",
    "events": "SELECT kind, COUNT(*) FROM events WHERE kind NOT IN ('run_state', 'task_state', "
    "'task_started', 'worktree_ready', 'supervisor_started', 'spec_added') GROUP BY kind",
    "steps": "SELECT kind, MIN(at), MAX(at) FROM events WHERE kind IN ('supervisor_started', "
    "'task_started', 'worktree_ready', 'run_created') GROUP BY kind",
    "failures": f"SELECT data {FAILED} LIMIT 4",
    "sandbox": "SELECT DISTINCT json_extract(data, '$.sandbox') FROM events "
    "WHERE kind = 'run_state' AND to_state = 'running'",
}


def done(db: Path, agents: int) -> bool:
    """N runs reached `running`, or a job or launch failed (a failed rep: not timed)."""
    if not db.exists():
        return False
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        up = conn.execute("SELECT COUNT(*) FROM runs WHERE running_at IS NOT NULL").fetchone()
        bad = conn.execute(f"SELECT COUNT(*) {FAILED}").fetchone()
        return int(up[0]) >= agents or int(bad[0]) > 0
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def stop_supervisor(proc: subprocess.Popen[str], root: Path, env: dict[str, str]) -> None:
    """`hatchctl down` as a user stops it; SIGTERM, then SIGKILL, if it does not exit."""
    down = [sys.executable, "-m", "hatchctl", "-C", str(root), "down"]
    subprocess.run(down, cwd=root, env=env, capture_output=True, timeout=120, check=False)
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            proc.send_signal(sig)
        try:
            proc.wait(timeout=60)
            return
        except subprocess.TimeoutExpired:
            continue


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
        conn = sqlite3.connect(str(db), timeout=5)
        got = {key: conn.execute(sql).fetchall() for key, sql in QUERIES.items()}
        conn.close()
        panes = tmux_panes(socket)
        broken = broken_worktrees(root, root / ".hatch" / "worktrees")
    finally:
        stop_supervisor(proc, root, env)
        Tmux(socket).kill_server()
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


def timed(argv: list[str], cwd: Path, what: str) -> tuple[float, float]:
    """Run ``argv`` (no TMUX in its environment); its start and end (wall clock)."""
    env = {k: v for k, v in os.environ.items() if k != "TMUX"}
    t0 = time.time()
    out = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    t1 = time.time()
    if out.returncode != 0:
        raise RuntimeError(
            f"{what} exited {out.returncode}: {out.stderr[-2000:]}{out.stdout[-500:]}"
        )
    return t0, t1


def bash(tmp: Path, label: str, agents: int) -> dict[str, object]:
    root = tmp / "proj"
    make_repo(root, label, agents, None)
    script = tmp / "launch.sh"
    script.write_text(BASH)
    socket = f"blaunch{os.getpid()}bash"
    try:
        t0, t1 = timed(["bash", str(script), socket, str(root), str(agents)], root, "bash loop")
        times = [float(x) for x in (root / ".bench" / "times").read_text().split()]
        panes = tmux_panes(socket)
        broken = broken_worktrees(root, root / ".bench" / "wt")
    finally:
        Tmux(socket).kill_server()
    return {
        "total": t1 - t0,
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
        Tmux(socket).kill_server()
    return {"total": t1 - t0, "panes": panes, "broken_worktrees": broken}


def num(r: dict[str, object], key: str) -> float:
    value = r[key]
    assert isinstance(value, (int, float))
    return float(value)


def fmt(values: list[float], agents: int | None = None) -> str:
    ms = [v * 1000 for v in values]
    text = f"{statistics.median(ms):,.0f} ms ({min(ms):,.0f}-{max(ms):,.0f})".replace(",", " ")
    if agents:
        text += f", {statistics.median(ms) / agents:.0f} ms/agent"
    return text


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tree", type=Path, default=ROOT, help="the hatchctl tree to run")
    parser.add_argument("--tmuxp", default=shutil.which("tmuxp") or "/tmp/tmuxp-venv/bin/tmuxp")
    parser.add_argument("--only", help="comma-separated targets")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--py-spy", type=Path)
    parser.add_argument("--tick", help="[limits] tick for hatchctl (default: hatchctl's, 1s)")
    args = parser.parse_args()
    n = args.agents
    targets: dict[str, Callable[[Path], dict[str, object]]] = {
        "hatchctl": lambda t: hatchctl(
            t, "hatchctl", n, args.tree, None, spy("hatchctl"), args.tick
        ),
        "hatchctl-none": lambda t: hatchctl(
            t, "hatchctl-none", n, args.tree, "none", spy("none"), args.tick
        ),
        "bash": lambda t: bash(t, "bash", n),
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
        sys.exit(f"no tmuxp at {args.tmuxp} (--tmuxp)")
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
    bash_totals = [num(r, "total") for r in results.get("bash", [])]
    floor = statistics.median(bash_totals) if bash_totals else None
    print(f"\n| target | {n} agents launched (median, range) | vs bash | first-to-last spread |")
    print("|---|---|---|---|")
    for label, all_rs in results.items():
        rs = [r for r in all_rs if "total" in r]
        if len(rs) < len(all_rs):
            print(f"| {label}: {len(all_rs) - len(rs)} of {len(all_rs)} reps failed | | | |")
        if not rs:
            continue
        totals = [num(r, "total") for r in rs]
        ratio = f"{statistics.median(totals) / floor:.1f}x" if floor else ""
        spreads = [num(r, "spread") for r in rs if "spread" in r]
        print(f"| {label} | {fmt(totals, n)} | {ratio} | {fmt(spreads) if spreads else ''} |")
        if label.startswith("hatchctl"):
            for key in ("to_started", "from_started", "first", "worktrees"):
                vals = [num(r, key) for r in rs]
                print(f"|   {label} {key} | {fmt(vals)} | | |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
