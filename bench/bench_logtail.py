"""Pane logs rendered as the pane showed them (a terminal emulator), never the whole file:
the last lines of a 1 GiB log, the 2 MiB tail of a 200 MB log (plain line output, and a
full-screen TUI redrawing in place), and the cost of one follow update."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hatchctl.runtime.logfile import TAIL_BYTES, render_tail, tail_lines
from hatchctl.runtime.logfollow import LogFollower

LINE = b"\x1b[32m[0000]\x1b[0m compiling module.py ... \x1b[1mok\x1b[0m\r\n"


def frame(n: int) -> bytes:
    """One redraw of a Claude Code-like full-screen TUI: absolute moves, erased and padded rows."""
    rows = b"".join(
        b"\x1b[%d;1H\x1b[2K\x1b[48;5;237m  \x1b[38;5;231mtranscript row %d, frame %d\x1b[39m%s\x1b[49m"
        % (4 + i, i, n, b" " * 40)
        for i in range(14)
    )
    return (
        b"\x1b[?2026h\x1b[H\x1b[2K\x1b[1m \xe2\x9c\xbb Claude Code\x1b[22m"
        + rows
        + b"\x1b[20;1H\x1b[2K\x1b[38;5;174m\xe2\x9c\xa2 Thinking\xe2\x80\xa6 (%ds)\x1b[39m" % n
        + b"\x1b[24;1H\x1b[2K\x1b[2m ? for shortcuts\x1b[22m\x1b[?2026l"
    )


def huge(path: Path, size: int, tail: bytes) -> None:
    with path.open("wb") as fh:
        fh.truncate(size)  # sparse, then real output at the end
        fh.seek(0, os.SEEK_END)
        fh.write(tail)


def describe(name: str, times: list[float]) -> str:
    ms = [t * 1000 for t in times]
    return f"{name}: median {statistics.median(ms):.2f}ms (max {max(ms):.2f}ms, n={len(ms)})"


def timed(fn: Callable[[], object], n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "huge.log"
        huge(path, 1 << 30, LINE * 5000)
        lines = tail_lines(path, 60)
        assert len(lines) == 60 and lines[-1].endswith("ok"), lines[-3:]
        print(
            describe(
                "log tail: last 60 lines of a 1 GiB log", timed(lambda: tail_lines(path, 60), 20)
            )
        )

        plain = LINE * (TAIL_BYTES // len(LINE) + 10)
        huge(path, 200 << 20, plain)
        out = render_tail(path)
        assert out[0].startswith("[... ") and out[-1].endswith("ok"), out[-1]
        print(
            describe(
                f"render 2 MiB tail of a 200 MB log, plain lines ({len(out)} lines)",
                timed(lambda: render_tail(path), 5),
            )
        )

        tui = b"\x1b[?1049h\x1b[2J"
        n = 0
        while len(tui) < TAIL_BYTES + 4096:
            tui += frame(n)
            n += 1
        huge(path, 200 << 20, tui)
        out = render_tail(path)
        assert out[0].startswith("[... ") and f"({n - 1}s)" in out[-5], out[-5:]
        print(
            describe(
                f"render 2 MiB tail of a 200 MB log, TUI redrawn in place ({n} frames)",
                timed(lambda: render_tail(path), 3),
            )
        )

        print(follow_cost("one TUI frame", path, lambda i: frame(n + i)))
        huge(path, 200 << 20, plain)
        print(follow_cost("one line", path, lambda i: LINE))


def follow_cost(name: str, path: Path, chunk: Callable[[int], bytes]) -> str:
    """A follower on the log, then: append, poll (what `logs --follow` and the Log tab do)."""
    follower = LogFollower(path)
    follower.poll()
    count = iter(range(1 << 30))

    def update() -> None:
        data = chunk(next(count))
        with path.open("ab") as fh:
            fh.write(data)
        assert follower.poll() is not None

    return describe(
        f"follow update: {name} ({len(chunk(0))} bytes) appended and polled", timed(update, 200)
    )


if __name__ == "__main__":
    main()
