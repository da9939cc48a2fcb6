"""`hatchctl validate` and `hatchctl status` on a project of 10 000 specs (no supervisor),
side by side with floors in the same run: reading every spec file (`cat`), and the same
tasks selected with the `sqlite3` CLI."""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HATCHCTL, run


def make(root: Path, n: int) -> None:
    subprocess.run(["git", "init", "-q", str(root)], check=True, timeout=30)
    subprocess.run(
        [
            "git",
            "-C",
            str(root),
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@b",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "init",
        ],
        check=True,
        timeout=30,
    )
    (root / "hatch.toml").write_text('[project]\nname = "bench-status"\nbase_ref = "main"\n')
    specs = root / "specs"
    specs.mkdir()
    for i in range(n):
        deps = f"depends_on: [T-{i - 1:05d}]\n" if i % 10 else ""
        (specs / f"T-{i:05d}.md").write_text(
            f"---\nid: T-{i:05d}\ntitle: 'Task {i}'\npriority: {i % 100}\n{deps}"
            f"files: [src/m{i}.py]\nacceptance: python3 -m unittest tests.t{i}\n---\n"
            f"Do thing {i}.\n"
        )


def timed(argv: list[str], cwd: Path, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        res = run(argv, cwd=cwd)
        out.append(time.perf_counter() - t0)
        if res.returncode != 0:
            raise SystemExit(f"{argv} failed: {res.stderr[-500:]}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-status-"))
    try:
        root = tmp / "p"
        root.mkdir()
        make(root, args.tasks)
        first = timed([*HATCHCTL, "status"], root, 1)  # syncs every spec into a new store
        rows = {
            "hatchctl validate": timed([*HATCHCTL, "validate"], root, args.reps),
            "hatchctl status (store in sync)": timed([*HATCHCTL, "status"], root, args.reps),
            "hatchctl status --json": timed([*HATCHCTL, "status", "--json"], root, args.reps),
            "floor: cat every spec": timed(
                ["sh", "-c", "cat specs/*.md > /dev/null"], root, args.reps
            ),
        }
        if shutil.which("sqlite3"):
            rows["floor: sqlite3 select * from tasks"] = timed(
                ["sqlite3", ".hatch/hatch.db", "select * from tasks"], root, args.reps
            )
        print(f"## status at {args.tasks} specs (median of {args.reps})")
        print(f"hatchctl status, first (parses and stores every spec): {first[0] * 1000:.0f} ms")
        for name, values in rows.items():
            print(f"{name}: {statistics.median(values) * 1000:.0f} ms")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
