"""Pane logs: raw terminal bytes on disk (never rewritten), shown as the pane's screen showed
them (``screenlog``), read from the end.

Work is bounded: a log is rendered from its last ``TAIL_BYTES`` at most (a marker line says
what was skipped), so a 1 GiB log costs one seek and a 2 MiB render; a ``LogFollower`` keeps
its screen and feeds only the bytes appended since its last poll (its first render can be
smaller: ``start_bytes``), and ``render_page`` renders the ``PAGE_BYTES`` before an offset, so a
viewer pages back through the rest on demand, never reading more than a page at a time.
Following a log: ``logfollow``; the control room's one-line previews: ``logpreview``. The
terminal emulator (pyte, through ``screenlog``) is imported by the first render, not by the
engine's plain byte tails."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from hatchctl.runtime.termsize import HISTORY, ROWS

if TYPE_CHECKING:
    from hatchctl.runtime.screenlog import ScreenRenderer

TAIL_BYTES = 2 << 20
PAGE_BYTES = 512 << 10  # what paging back reads and renders at a time
_SAFE_SCAN = 64 << 10  # how far past a cut to look for a clean place to start rendering

# CSI sequences, OSC sequences (terminated by BEL or ST), other two-byte escapes, and stray CRs.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|\x1b[@-Z\\-_]"
    r"|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
)


def strip_ansi(text: str) -> str:
    """Remove escape sequences and control characters; turn CR-overwritten lines into their end.
    (Loses whatever a TUI drew with cursor moves: the views render through ``screenlog``.)"""
    out = []
    for line in _ANSI.sub("", text.replace("\r\n", "\n")).split("\n"):
        out.append(line.rsplit("\r", 1)[-1] if "\r" in line else line)
    return "\n".join(out)


def tail_bytes(path: Path, max_bytes: int) -> bytes:
    """The last ``max_bytes`` of a file, without reading the rest (a 1 GB log costs one seek)."""
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - max_bytes))
            return fh.read(max_bytes)
    except FileNotFoundError:
        return b""


def renderer(*, rows: int = ROWS, history: int = HISTORY) -> ScreenRenderer:
    """A terminal emulator's screen to feed a log's bytes to."""
    from hatchctl.runtime.screenlog import ScreenRenderer

    return ScreenRenderer(rows=rows, history=history)


def size_of(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def read_range(path: Path, start: int, end: int) -> bytes:
    try:
        with path.open("rb") as fh:
            fh.seek(start)
            return fh.read(max(0, end - start))
    except OSError:
        return b""


def _human(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    size, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{size:.1f} {unit}"


def skipped_marker(skipped: int, *, page: bool = False) -> str:
    if page:  # a view that pages back on demand
        return f"[... {_human(skipped)} of earlier output: scroll up to read it]"
    return f"[... {_human(skipped)} of earlier output not shown; `hatchctl logs --raw` has all]"


def _clean_start(data: bytes) -> int:
    """Where to start rendering bytes cut out of a stream: after a line break, else at an
    escape sequence, else at a character boundary."""
    head = data[:_SAFE_SCAN]
    at = head.find(b"\n")
    if at >= 0:
        return at + 1
    at = head.find(b"\x1b")
    if at >= 0:
        return at
    return next((i for i, b in enumerate(head[:4]) if (b & 0xC0) != 0x80), 0)


def window(path: Path, size: int, max_bytes: int) -> tuple[int, bytes]:
    """The bytes to render from the end of a log of ``size`` bytes, and how many precede them."""
    start = max(0, size - max_bytes)
    data = read_range(path, start, size)
    if start:
        cut = _clean_start(data)
        start, data = start + cut, data[cut:]
    return start, data


def render_tail(
    path: Path, *, max_bytes: int = TAIL_BYTES, rows: int = ROWS, history: int = HISTORY
) -> list[str]:
    """What the pane showed, rendered from the last ``max_bytes`` of its log."""
    size = size_of(path)
    if size is None:
        return []
    skipped, data = window(path, size, max_bytes)
    screen = renderer(rows=rows, history=history)
    screen.feed(data)
    return ([skipped_marker(skipped)] if skipped else []) + screen.lines()


def render_page(path: Path, end: int, *, max_bytes: int = PAGE_BYTES) -> tuple[int, list[str]]:
    """The lines of the (at most ``max_bytes``) bytes before offset ``end``, from a clean place
    to start, and that place: one page back from where a view's lines begin. Every line of the
    page is kept (a history as long as the page's bytes)."""
    start = max(0, min(end, size_of(path) or 0) - max_bytes)
    data = read_range(path, start, end)
    if start:
        cut = _clean_start(data)
        start, data = start + cut, data[cut:]
    screen = renderer(history=max(HISTORY, len(data)))
    screen.feed(data)
    return start, screen.lines()


def tail_lines(
    path: Path, lines: int, *, chunk: int = 16384, max_bytes: int = TAIL_BYTES
) -> list[str]:
    """The last ``lines`` display lines of a log: rendered from a window at its end that grows
    until it holds enough lines (or stops adding any: a full-screen TUI is one screen)."""
    size = size_of(path)
    if size is None or lines <= 0:
        return []
    window, got = max(1, chunk), -1
    while True:
        rendered = render_tail(path, max_bytes=window, history=lines + 1)
        if len(rendered) > lines or window >= min(size, max_bytes) or len(rendered) <= got:
            return rendered[-lines:]
        window, got = window * 4, len(rendered)
