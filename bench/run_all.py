"""Run every benchmark and print its figures (`make bench`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import machine  # noqa: E402


def main() -> int:
    print(f"# {machine()}")
    code = 0
    for name in (
        "bench_store.py",
        "bench_store_scale.py",
        "bench_status_scale.py",
        "bench_ssh.py",
        "bench_remote_stop.py",
        "bench_logtail.py",
        "bench_biglog.py",
        "bench_demo.py",
        "bench_stop_latency.py",
        "bench_launch.py",
        "bench_setup.py",
        "bench_keys.py",
        "bench_ui_scale.py",
    ):
        out = subprocess.run([sys.executable, str(HERE / name)], check=False)
        code = code or out.returncode
    return code


if __name__ == "__main__":
    raise SystemExit(main())
