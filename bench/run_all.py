"""Run every benchmark and print its figures (`make bench`)."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    print(
        f"# {platform.node()} · {platform.processor() or platform.machine()} · "
        f"{__import__('os').cpu_count()} cores · Python {platform.python_version()}"
    )
    code = 0
    for name in ("bench_store.py", "bench_logtail.py", "bench_demo.py"):
        out = subprocess.run([sys.executable, str(HERE / name)], check=False)
        code = code or out.returncode
    return code


if __name__ == "__main__":
    raise SystemExit(main())
