"""The per-task setup scripts of a launch, without the supervisor (issue 11): for N tasks at once
(a thread each, as the supervisor's setup jobs), what engine/jobs.py's setup runs:
`ensure_integration.sh` (under one lock, as `integration_lock`), `create_worktree.sh --reset`
from the tip, `mount_readonly.sh` of the planning directory into the worktree. Each tree's own
hatch_scripts/, side by side in the same run: the trees take turns (the order rotates each
repetition), each on a fresh copy of the same repository.

Reports per tree: wall time for the N setups, and the CPU time (user + system) of the processes
they started (RUSAGE_CHILDREN: every script and what it ran; the figure a loaded machine
disturbs least). Usage: bench_setup.py [--agents 20] [--reps 3] [TREE ...] (default: this
tree; e.g. a clone of the commit before a change, then this tree).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, load_average, machine
from launchkit import make_repo

from hatchctl.runtime.gitrepo import git_env
from hatchctl.runtime.scripts import Scripts, builtin_root, unmount_all_under

TIMEOUT = 120.0


def script(tree: Path, name: str, *args: str) -> str:
    argv = ["bash", str(tree / "hatch_scripts" / name), *args]
    out = subprocess.run(
        argv, capture_output=True, text=True, timeout=TIMEOUT, env=git_env(), check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"{name} exited {out.returncode}: {out.stderr[-1500:]}")
    return out.stdout.strip().splitlines()[-1]


def setups(tree: Path, root: Path, agents: int) -> tuple[float, float]:
    """N setups at once on a fresh repository: (wall s, children's CPU s)."""
    planning = root / ".hatch" / "planning"
    planning.mkdir(parents=True)
    for i in range(5):
        (planning / f"plan{i}.md").write_text(f"plan {i}\n")
    integration = root / ".hatch" / "integration"
    lock = threading.Lock()

    def one(i: int) -> None:
        with lock:  # engine/jobs.py: the tip read under integration_lock
            tip = script(tree, "git/ensure_integration.sh", str(root), str(integration),
                         "hatch/integration", "main")  # fmt: skip
        worktree = root / ".hatch" / "worktrees" / f"L{i:03d}"
        script(tree, "git/create_worktree.sh", "--reset", str(root), str(worktree), f"L{i:03d}",
               tip)  # fmt: skip
        script(
            tree, "mount/mount_readonly.sh", str(planning), str(worktree / "project-state-readonly")
        )

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=agents) as pool:
        for f in [pool.submit(one, i) for i in range(agents)]:
            f.result()
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("trees", nargs="*", type=Path, default=[ROOT])
    args = parser.parse_args()
    print(machine())
    print(f"{args.agents} setups at once, {args.reps} repetitions, load {load_average()}")
    results: dict[Path, list[tuple[float, float]]] = {t: [] for t in args.trees}
    for rep in range(args.reps):
        turn = args.trees[rep % len(args.trees) :] + args.trees[: rep % len(args.trees)]
        for tree in turn:
            with tempfile.TemporaryDirectory(prefix="hatch-bench-setup-") as tmp:
                root = Path(tmp) / "proj"
                make_repo(root, f"bsetup{os.getpid()}", args.agents, None)
                try:
                    wall, cpu = setups(tree, root, args.agents)
                finally:
                    unmount_all_under(Scripts(builtin_root(), timeout=30), root)
            results[tree].append((wall, cpu))
            print(f"rep {rep + 1} {tree}: wall {wall * 1000:.0f} ms, CPU {cpu * 1000:.0f} ms, "
                  f"load {load_average()}", flush=True)  # fmt: skip
    print(f"\n| tree | {args.agents} setups: wall (median, range) | CPU of their processes |")
    print("|---|---|---|")
    for tree, rs in results.items():
        walls, cpus = [r[0] * 1000 for r in rs], [r[1] * 1000 for r in rs]
        print(f"| {tree} | {statistics.median(walls):.0f} ms ({min(walls):.0f}-{max(walls):.0f}) "
              f"| {statistics.median(cpus):.0f} ms ({min(cpus):.0f}-{max(cpus):.0f}) |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
