"""Paging back through a log: the follower's first render says where its lines start, and the
pages before it, rendered one bounded chunk at a time, join it with no line lost or repeated."""

from __future__ import annotations

from pathlib import Path

from hatchctl.runtime.logfile import render_page
from hatchctl.runtime.logfollow import LogFollower


def test_pages_before_the_tail_join_it_exactly(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    want = [f"line {i:06d}: \x1b[32mok\x1b[0m agent output" for i in range(40_000)]
    log.write_bytes("".join(line + "\r\n" for line in want).encode())
    want = [line.replace("\x1b[32m", "").replace("\x1b[0m", "") for line in want]
    update = LogFollower(log, start_bytes=64 << 10).poll()
    assert update is not None and update.keep == 0 and update.start > 0
    assert update.lines[0].startswith("[... ") and update.lines[-1] == want[-1]
    lines, end, pages = update.lines[1:], update.start, 0
    while end:
        start, page = render_page(log, end, max_bytes=300 << 10)
        assert 0 <= start < end and end - start <= 300 << 10  # bounded: never the whole file
        lines[:0], end, pages = page, start, pages + 1
    assert pages >= 5 and lines == want  # 1.6 MB before the tail, 300 KiB a page


def test_a_tail_whose_lines_were_dropped_cannot_page_back(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    log.write_bytes(b"".join(b"%d\r\n" % i for i in range(60_000)))
    update = LogFollower(log, history=1000).poll()  # more lines than the history holds
    assert update is not None and update.start == -1
    marker = update.lines[0]  # what is missing, in lines (1 000 of history + the 23 rows shown)
    assert marker == "[... 58,977 earlier lines not shown; `hatchctl logs --raw` has all]"
    assert update.lines[1:] == [str(i) for i in range(58_977, 60_000)]
