"""Shared helpers for the benchmarks (each prints its figures; results go in docs/benchmarks.md)."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HATCHCTL = [sys.executable, "-m", "hatchctl"]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def describe(name: str, values: list[float], unit: str = "ms", scale: float = 1000.0) -> str:
    v = [x * scale for x in values]
    return (
        f"{name}: n={len(v)} median={statistics.median(v):.1f}{unit} p95={pct(v, 0.95):.1f}{unit} "
        f"max={max(v):.1f}{unit}"
    )


def run(
    argv: list[str], cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def compile_tree(tree: Path) -> Path:
    """``tree``'s hatchctl compiled to bytecode, as an installed package is (pip compiles it;
    tools/bootstrap.sh does for this repository). A tree run from source with
    PYTHONDONTWRITEBYTECODE set (as on CI and on these machines) compiles every module it imports
    again in every process: ~60 ms more before a supervisor starts, ~5 ms more per agent (its
    reaper), measured as hatchctl's cost. Returns ``tree``."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(tree / "hatchctl")],
        capture_output=True,
        timeout=300,
        check=False,
    )
    return tree


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> str:
    """Date, CPU, nproc, load average and Python: what every figure is printed with."""
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor() or platform.machine(),
    )
    return (
        f"{time.strftime('%Y-%m-%d %H:%M %Z')} · {cpu} · nproc {os.cpu_count()} · "
        f"load average {load_average()} · Python {platform.python_version()}"
    )
