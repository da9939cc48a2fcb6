"""Opening a 1 GB pane log: the last screen comes from the end of the file, never the whole."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from hatchctl.runtime.logfile import tail_lines


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "huge.log"
        line = b"\x1b[32m[0000]\x1b[0m compiling module.py ... ok\r\n"
        with path.open("wb") as fh:
            fh.truncate(1 << 30)  # 1 GiB (sparse), then real lines at the end
            fh.seek(0, os.SEEK_END)
            fh.write(line * 5000)
        size = path.stat().st_size
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            lines = tail_lines(path, 60)
            times.append(time.perf_counter() - t0)
        assert len(lines) == 60 and lines[-1].endswith("ok")
        times.sort()
        print(
            f"log tail: last 60 lines of a {size / 2**30:.2f} GiB log in median {times[10] * 1000:.2f}ms "
            f"(max {times[-1] * 1000:.2f}ms)"
        )


if __name__ == "__main__":
    main()
