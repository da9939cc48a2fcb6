"""Pane logs: raw terminal bytes on disk (never rewritten), shown as the pane's screen showed
them (``screenlog``), read from the end.

Work is bounded: a log is rendered from its last ``TAIL_BYTES`` at most (a marker line says
what was skipped), so a 1 GiB log costs one seek and a 2 MiB render; a ``LogFollower`` keeps
its screen and feeds only the bytes appended since its last poll (its first render can be
smaller: ``start_bytes``), and ``render_page`` renders the ``PAGE_BYTES`` before an offset, so a
viewer pages back through the rest on demand, never reading more than a page at a time."""

from __future__ import annotations

import itertools
import os
import re
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from hatchctl.runtime.screenlog import COLUMNS, HISTORY, ROWS, ScreenRenderer

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


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _read(path: Path, start: int, end: int) -> bytes:
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


def _window(path: Path, size: int, max_bytes: int) -> tuple[int, bytes]:
    """The bytes to render from the end of a log of ``size`` bytes, and how many precede them."""
    start = max(0, size - max_bytes)
    data = _read(path, start, size)
    if start:
        cut = _clean_start(data)
        start, data = start + cut, data[cut:]
    return start, data


def render_tail(
    path: Path, *, max_bytes: int = TAIL_BYTES, rows: int = ROWS, history: int = HISTORY
) -> list[str]:
    """What the pane showed, rendered from the last ``max_bytes`` of its log."""
    size = _size(path)
    if size is None:
        return []
    skipped, data = _window(path, size, max_bytes)
    renderer = ScreenRenderer(rows=rows, history=history)
    renderer.feed(data)
    return ([skipped_marker(skipped)] if skipped else []) + renderer.lines()


def render_page(path: Path, end: int, *, max_bytes: int = PAGE_BYTES) -> tuple[int, list[str]]:
    """The lines of the (at most ``max_bytes``) bytes before offset ``end``, from a clean place
    to start, and that place: one page back from where a view's lines begin. Every line of the
    page is kept (a history as long as the page's bytes)."""
    start = max(0, min(end, _size(path) or 0) - max_bytes)
    data = _read(path, start, end)
    if start:
        cut = _clean_start(data)
        start, data = start + cut, data[cut:]
    renderer = ScreenRenderer(history=max(HISTORY, len(data)))
    renderer.feed(data)
    return start, renderer.lines()


def tail_lines(
    path: Path, lines: int, *, chunk: int = 16384, max_bytes: int = TAIL_BYTES
) -> list[str]:
    """The last ``lines`` display lines of a log: rendered from a window at its end that grows
    until it holds enough lines (or stops adding any: a full-screen TUI is one screen)."""
    size = _size(path)
    if size is None or lines <= 0:
        return []
    window, got = max(1, chunk), -1
    while True:
        rendered = render_tail(path, max_bytes=window, history=lines + 1)
        if len(rendered) > lines or window >= min(size, max_bytes) or len(rendered) <= got:
            return rendered[-lines:]
        window, got = window * 4, len(rendered)


@dataclass(frozen=True)
class Update:
    """A change to a follower's lines: the first ``keep`` lines reported so far stay, the ones
    after them are replaced by ``lines`` (``keep == 0``: everything is new). ``start``: for a
    fresh render, the offset of the first byte its lines come from (what precedes them is
    ``render_page``'s to read); -1 when unknown (lines were dropped: paging back would leave a
    gap)."""

    keep: int
    lines: list[str]
    start: int = -1


def _common(a: list[str], b: list[str]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class LogFollower:
    """Follows a growing log: the first ``poll`` renders its tail, later ones feed only the new
    bytes into the same screen and report what changed. Line output appends; a TUI's redraw
    replaces only the rows it changed. Lines are numbered from the first one reported, as if
    none were ever dropped; ``snapshot`` gives the last ``history`` (plus the screen)."""

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = TAIL_BYTES,
        rows: int = ROWS,
        history: int = HISTORY,
        start_bytes: int | None = None,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.start_bytes = max_bytes if start_bytes is None else min(start_bytes, max_bytes)
        self.rows = rows
        self.history = history
        self.pos = 0  # bytes of the file consumed
        self._renderer: ScreenRenderer | None = None
        self._shown: list[str] = []  # the reported lines, numbered from self._base
        self._base = 0
        self._screen: list[str] = []  # the last reported lines that may still change
        self._head: list[str] = []
        self._pushed = self._cleared = 0
        self._lock = threading.Lock()

    def snapshot(self) -> tuple[int, list[str]]:
        """The number of the first line kept, and the lines."""
        with self._lock:
            return self._base, list(self._shown)

    def poll(self) -> Update | None:
        """Read what was appended; None when nothing changed. A log that shrank, or grew by
        more than ``max_bytes`` since the last poll, is rendered afresh from its tail."""
        with self._lock:
            size = _size(self.path)
            if size is None:
                return None
            if self._renderer is None or size < self.pos or size - self.pos > self.max_bytes:
                return self._restart(size)
            if size == self.pos:
                return None
            data = _read(self.path, self.pos, size)
            self.pos += len(data)
            self._renderer.feed(data)
            return self._changes()

    def _restart(self, size: int) -> Update:
        skipped, data = _window(self.path, size, self.start_bytes)
        self._renderer = ScreenRenderer(rows=self.rows, history=self.history)
        self._renderer.feed(data)
        self.pos = skipped + len(data)
        screen = self._renderer.screen
        dropped = 0 if screen.cleared else screen.pushed - len(screen.history)  # over history
        self._head = (
            [skipped_marker(skipped)]
            if skipped
            else [f"[... {dropped:,} earlier lines not shown; `hatchctl logs --raw` has all]"]
            if dropped
            else []
        )
        self._screen = screen.rows()
        self._shown, self._base = [*self._head, *screen.history, *self._screen], 0
        self._pushed, self._cleared = screen.pushed, screen.cleared
        return Update(0, list(self._shown), skipped if not dropped and not screen.cleared else -1)

    def _changes(self) -> Update | None:
        assert self._renderer is not None
        screen = self._renderer.screen
        rows = screen.rows()
        total = self._base + len(self._shown)
        if screen.cleared != self._cleared:  # the history was erased: compare everything
            full = [*self._head, *screen.history, *rows]
            keep = _common(self._shown, full) if self._base == 0 else 0
            new = full[keep:]
        else:  # rows that scrolled into the history since, then the screen
            n = min(screen.pushed - self._pushed, len(screen.history))
            fresh = [*reversed(list(itertools.islice(reversed(screen.history), n))), *rows]
            same = _common(self._screen, fresh)
            keep, new = total - len(self._screen) + same, fresh[same:]
        self._screen, self._pushed, self._cleared = rows, screen.pushed, screen.cleared
        if keep == total and not new:
            return None
        if keep < self._base:
            self._shown, self._base = new, keep
        else:
            del self._shown[keep - self._base :]
            self._shown.extend(new)
        excess = len(self._shown) - (self.history + len(rows) + len(self._head))
        if excess > 0:
            del self._shown[:excess]
            self._base += excess
        return Update(keep, new)


class StablePrinter:
    """For a plain stream of lines (``logs --follow``): a line is printed once it has not
    changed for one poll, so a spinner redrawn in place never floods the output; a line
    already printed is printed again when it settles on a different text (a TUI's redraw)."""

    def __init__(self, base: int, lines: list[str]) -> None:
        self.printed = {base + i: line for i, line in enumerate(lines)}
        self.next = base + len(lines)  # the first line never printed
        self.prev = (base, lines)

    def step(self, base: int, lines: list[str], *, restarted: bool = False) -> list[str]:
        if restarted:  # numbering starts over: everything shown is new
            self.printed, self.next, self.prev = {}, base, (base, [])
        pbase, plines = self.prev
        out: list[str] = []
        for i, line in enumerate(lines, start=base):
            j = i - pbase
            stable = 0 <= j < len(plines) and plines[j] == line
            if i >= self.next:
                if not stable:
                    break  # keep new lines in order: wait for this one
                self.next = i + 1
            elif not stable or self.printed.get(i) == line:
                continue
            out.append(line)
            self.printed[i] = line
        for i in [i for i in self.printed if i < base]:
            del self.printed[i]
        self.prev = (base, lines)
        return out


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
    data = _read(path, start, size)
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
    size = _size(path)
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
