"""The control room's one-line preview of each task: the last non-blank line its pane shows,
read from the log's end as plain text when that end is plain (``plain_last_line``), else from a
kept ``LogFollower``."""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import OrderedDict
from pathlib import Path

from hatchctl.runtime.logfile import read_range, size_of
from hatchctl.runtime.logfollow import LogFollower
from hatchctl.runtime.termsize import COLUMNS

PREVIEWS = 256
QUICK_TAIL = 4096  # how much of a log's end the plain-text preview reads
_SGR_OSC = re.compile(rb"\x1b\[[0-9;:]*m|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
_NEEDS_SCREEN = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # ESC included
_C1 = re.compile("[\x80-\x9f]")  # controls too, once decoded


def _narrow_text(line: str) -> bool:
    """Every character takes one cell, as is (no wide, combining or invisible ones)."""
    return line.isascii() or all(
        unicodedata.east_asian_width(c) not in "WF"
        and unicodedata.category(c) not in ("Mn", "Me", "Cf", "Cc", "Co", "Cn", "Cs")
        and unicodedata.normalize("NFC", c) == c
        for c in line
    )


def _overwritten(parts: list[str]) -> str:
    """A line as a terminal shows it after carriage returns: each part overwrites from column 0."""
    line = parts[0]
    for part in parts[1:]:
        line = part + line[len(part) :]
    return line


def plain_last_line(path: Path, size: int) -> str | None:
    """The last non-blank line of a log whose end is plain lines (colours and titles allowed):
    read from its last ``QUICK_TAIL`` bytes, without the terminal emulator, so 50 agents
    streaming 100 lines/s cost the control room a few KiB each per refresh, not every byte
    they wrote. None when that end moves the cursor, erases or is otherwise not plain: then
    only the screen (``LogFollower``) knows what the pane shows."""
    start = max(0, size - QUICK_TAIL)
    data = read_range(path, start, size)
    first_at_column_0 = True
    if start:
        cut = data.find(b"\n")
        if cut < 0:
            return None
        first_at_column_0 = data[cut - 1 : cut] == b"\r"
        data = data[cut + 1 :]  # the first line may be cut, even mid-sequence
    data = _SGR_OSC.sub(b"", data)
    if _NEEDS_SCREEN.search(data):
        return None
    text = data.decode("utf-8", errors="replace")
    if _C1.search(text):
        return None
    lines = text.split("\n")
    for i in range(len(lines) - 1, -1, -1):
        parts = lines[i].split("\r")
        if not all(map(_narrow_text, parts)) or any("\t" in part for part in parts[1:]):
            return None  # cells not one per character; a tab over text moves, not blanks
        line = _overwritten(parts).expandtabs(8)
        if not line.strip():
            continue
        if not (lines[i - 1].endswith("\r") if i else first_at_column_0):
            return None  # a bare LF keeps the column: where the line starts is unknown
        return line.strip() if len(line) <= COLUMNS else None  # (else wrapped on the screen)
    return None if start else ""


_PREVIEWS: OrderedDict[Path, LogFollower] = OrderedDict()  # the logs that grow
_LAST: OrderedDict[Path, tuple[int, str]] = OrderedDict()  # size -> line, for every log seen
_PREVIEW_LOCK = threading.Lock()


def last_line(path: Path) -> str:
    """The last non-blank line the pane shows (the dashboard's preview, asked for every task at
    every refresh): a log that did not change costs a stat; one that grew costs the bytes
    appended since (its renderer is kept, for the PREVIEWS most recently changed logs: more
    than the agents that run at once, or 50 streaming logs would evict each other and every
    refresh would render each one afresh from 64 KiB)."""
    size = size_of(path)
    with _PREVIEW_LOCK:
        known = _LAST.get(path)
        if size is None or (known is not None and known[0] == size):
            return known[1] if known is not None and size is not None else ""
        line = plain_last_line(path, size)
        if line is not None:
            _remember(path, size, line)
            return line
        follower = _PREVIEWS.pop(path, None) or LogFollower(path, max_bytes=64 << 10, history=50)
        _PREVIEWS[path] = follower
        while len(_PREVIEWS) > PREVIEWS:
            _PREVIEWS.popitem(last=False)
        follower.poll()
        base, shown = follower.snapshot()
        shown = shown[0 if base else len(follower._head) :]  # not the marker of what was cut
        line = next((ln.strip() for ln in reversed(shown) if ln.strip()), "")
        _remember(path, follower.pos, line)
        return line


def _remember(path: Path, size: int, line: str) -> None:
    _LAST[path] = (size, line)
    _LAST.move_to_end(path)
    while len(_LAST) > 4096:
        _LAST.popitem(last=False)
