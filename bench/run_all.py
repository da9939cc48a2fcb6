"""Run every benchmark and print its figures (`make bench`)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor() or platform.machine(),
    )
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M %Z')} · {cpu} · nproc {os.cpu_count()} · "
        f"load average {load} · Python {platform.python_version()}"
    )
    code = 0
    for name in (
        "bench_store.py",
        "bench_store_scale.py",
        "bench_status_scale.py",
        "bench_ssh.py",
        "bench_logtail.py",
        "bench_demo.py",
        "bench_stop_latency.py",
        "bench_keys.py",
    ):
        out = subprocess.run([sys.executable, str(HERE / name)], check=False)
        code = code or out.returncode
    return code


if __name__ == "__main__":
    raise SystemExit(main())
