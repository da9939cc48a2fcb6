"""Pane logs as the agent's screen showed them: the raw bytes go through a terminal emulator
(pyte), so full-screen TUIs that redraw in place (cursor moves, erased lines, the alternate
screen: Claude Code) read as their final screen plus what scrolled off, and plain line output
still reads line by line. The bytes on disk are never touched.

Size: hatchctl's panes are tmux's ``default-size`` (80x24). The emulated screen is 24 rows
(what absolute cursor moves address), grown when the stream addresses a lower row (a client
attached and the pane got taller), and 1000 columns: a long plain line is never wrapped (it
reads as it did before emulation), and a TUI drawn for 80 or 200 columns lands the same.
Only text is kept (colors are not rendered), so erasing cells just forgets them: every
operation costs what the line holds, never the screen's width.

Plain line output (most of most logs) skips pyte: whole printable lines arriving at a fresh
line are appended directly, which is what pyte would do, 10x faster. Reading files, tails
and following live in ``logfile``."""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections import deque
from collections.abc import Iterable
from typing import Any

import pyte
from pyte import modes as mo
from pyte.screens import Char, Margins, StaticDefaultDict, wcwidth

from hatchctl.runtime.termsize import COLUMNS, HISTORY, ROWS

MAX_ROWS = 200  # a cursor move below this row grows the screen; beyond it is a size probe

# Removed before pyte sees them: SGR (only text is rendered), CSIs with a private marker
# (keyboard protocols, queries: pyte would draw their final byte) and DCS/APC/PM/SOS strings
# (kitty graphics and capability queries: pyte would draw their payload).
_DROP = re.compile(
    r"\x1b\[[0-9;:]*m"
    r"|\x1b\[[<=>][0-?]*[ -/]*[@-~]"
    r"|\x1b[P_^X][^\x07\x1b]*(?:\x07|\x1b\\)"
)
# A complete escape sequence starting at an ESC (anything else is held for the next feed).
_COMPLETE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[\]P_^X][^\x07\x1b]*(?:\x07|\x1b\\)|[ -/]*[0-OQ-WYZ\\`-~])"
)
# Whole lines of printable text, each ended by CR LF: the shape of plain line output.
_PLAIN_LINES = re.compile(r"(?:[^\x00-\x1f\x7f-\x9f]*\r\n)+")
_ALT_SCREEN = (1049, 1047, 47)
_NARROW: set[str] = {chr(c) for c in range(0x20, 0x7F)}  # characters one cell wide


def _narrow(text: str) -> bool:
    chars = set(text)
    if chars <= _NARROW:
        return True
    for ch in chars - _NARROW:
        if wcwidth(ch) != 1 or unicodedata.combining(ch):
            return False
        if len(_NARROW) < 10_000:
            _NARROW.add(ch)
    return True


def _text(line: dict[int, Char]) -> str:
    if not line:
        return ""
    return "".join([line[x].data for x in range(max(line) + 1)]).rstrip(" ")


def _trimmed(rows: list[str]) -> list[str]:
    end = len(rows)
    while end and not rows[end - 1]:
        end -= 1
    return rows[:end]


class _Screen(pyte.Screen):
    """A pyte screen that keeps its scrollback as text. Unlike pyte's HistoryScreen (which
    wraps every attribute access and costs 3x) it adds history where a terminal does: a line
    scrolled off the top, and (like tmux's ``scroll-on-clear``) a screen cleared whole."""

    def __init__(self, columns: int, rows: int, history: int) -> None:
        self.history: deque[str] = deque(maxlen=history)
        self.pushed = 0  # lines ever added to the history
        self.cleared = 0  # times the history was erased (ED 3)
        self.alt = False
        self._cells: dict[Char, dict[str, Char]] = {}
        super().__init__(columns, rows)

    # -- text out --------------------------------------------------------------------------
    def rows(self) -> list[str]:
        get = self.buffer.get
        return _trimmed([_text(get(y) or {}) for y in range(self.lines)])

    def _push(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.history.append(line)
            self.pushed += 1

    def _scroll_out(self) -> None:
        """The screen's content goes to the history; the screen is left empty."""
        self._push(self.rows())
        self.buffer.clear()

    # -- plain lines without pyte: what drawing them and CR LF would do ----------------------
    def at_fresh_line(self) -> bool:
        """The cursor starts an empty line with only empty lines below, in a plain state."""
        c, mode = self.cursor, self.mode
        return (
            c.x == 0
            and not self.alt
            and self.margins is None
            and mo.DECAWM in mode
            and mo.IRM not in mode
            and not self.charset
            and not any(self.buffer.get(y) for y in range(c.y, self.lines))
        )

    def put_lines(self, lines: list[str]) -> bool:
        """Append whole lines at a fresh line (see ``at_fresh_line``): rows that scroll off go
        to the history. False (nothing done) for a line too wide or with wide characters."""
        if max(map(len, lines)) > self.columns or not _narrow("".join(lines)):
            return False
        y, buffer = self.cursor.y, self.buffer
        overflow = max(0, y + len(lines) + 1 - self.lines)
        old = min(overflow, y)  # rows of the screen that scroll off, then new lines
        self._push([_text(buffer.get(r) or {}) for r in range(old)])
        self._push([ln.rstrip(" ") for ln in lines[: overflow - old]])
        for r in range(old, y):
            moved = buffer.pop(r, None)
            if moved is None:
                buffer.pop(r - old, None)
            else:
                buffer[r - old] = moved
        cells = self._cells_for(self.cursor.attrs, "".join(lines[overflow - old :]))
        row = y - old
        for ln in lines[overflow - old :]:
            line: StaticDefaultDict[int, Char] = StaticDefaultDict(self.default_char)
            line.update(zip(range(len(ln)), map(cells.__getitem__, ln), strict=True))
            buffer[row] = line
            row += 1
        buffer.pop(row, None)
        self.cursor.y = row
        return True

    def _cells_for(self, attrs: Char, text: str) -> dict[str, Char]:
        cells = self._cells.get(attrs)
        if cells is None:
            if len(self._cells) > 256:
                self._cells.clear()
            cells = self._cells[attrs] = {}
        for ch in set(text) - cells.keys():
            cells[ch] = attrs._replace(data=ch)
        return cells

    # -- drawing: one dict update per run of narrow characters ------------------------------
    def draw(self, data: str) -> None:
        if self.charset or mo.IRM in self.mode or not _narrow(data):
            super().draw(data)
            return
        cursor = self.cursor
        cells = self._cells_for(cursor.attrs, data)
        i, n, columns = 0, len(data), self.columns
        while i < n:
            if cursor.x >= columns:
                if mo.DECAWM not in self.mode:
                    super().draw(data[i:])
                    return
                self.carriage_return()
                self.linefeed()
            take = min(n - i, columns - cursor.x)
            line = self.buffer[cursor.y]
            line.update(
                zip(
                    range(cursor.x, cursor.x + take),
                    map(cells.__getitem__, data[i : i + take]),
                    strict=True,
                )
            )
            cursor.x += take
            i += take
        self.dirty.add(cursor.y)

    # -- scrolling and clearing ------------------------------------------------------------
    def index(self) -> None:
        top, bottom = self.margins or Margins(0, self.lines - 1)
        if self.cursor.y == bottom and not self.alt:  # tmux keeps what leaves any region
            self._push([_text(self.buffer.get(top) or {})])
        super().index()

    def erase_in_display(self, how: int = 0, *args: Any, **kwargs: Any) -> None:
        if how == 3:  # the scrollback: the terminal forgets it (Claude Code's clearTerminal)
            self.history.clear()
            self.cleared += 1
            return
        whole = how == 2 or (how == 0 and self.cursor.x == 0 and self.cursor.y == 0)
        if whole and not self.alt:
            self._scroll_out()
            return
        if how == 0:
            rows = range(self.cursor.y + 1, self.lines)
        elif how == 1:
            rows = range(self.cursor.y)
        else:
            rows = range(self.lines)
        for y in rows:
            self.buffer.pop(y, None)
        self.dirty.update(rows)
        if how in (0, 1):
            self.erase_in_line(how)

    def erase_in_line(self, how: int = 0, private: bool = False) -> None:
        self.dirty.add(self.cursor.y)
        line = self.buffer[self.cursor.y]
        x = self.cursor.x
        if how == 2:
            line.clear()
            return
        for k in [k for k in line if (k >= x if how == 0 else k <= x)]:
            del line[k]

    def erase_characters(self, count: int | None = None) -> None:
        line = self.buffer[self.cursor.y]
        for x in range(self.cursor.x, min(self.cursor.x + (count or 1), self.columns)):
            line.pop(x, None)

    def insert_characters(self, count: int | None = None) -> None:
        count, line, x = count or 1, self.buffer[self.cursor.y], self.cursor.x
        for k in sorted((k for k in line if k >= x), reverse=True):
            cell = line.pop(k)
            if k + count < self.columns:
                line[k + count] = cell

    def delete_characters(self, count: int | None = None) -> None:
        count, line, x = count or 1, self.buffer[self.cursor.y], self.cursor.x
        for k in sorted(k for k in line if k >= x):
            cell = line.pop(k)
            if k - count >= x:
                line[k - count] = cell

    def reset(self) -> None:
        """RIS: a fresh terminal, but what it showed stays in the log."""
        if self.buffer:
            self._scroll_out()
        self.alt = False
        super().reset()

    # -- modes: the alternate screen, no 132-column switch -----------------------------------
    def set_mode(self, *modes: int, **kwargs: Any) -> None:
        if kwargs.get("private"):
            if not self.alt and any(m in _ALT_SCREEN for m in modes):
                # What the main screen showed goes to the history first, so the log reads in
                # order: before the TUI, the TUI's last screen (pushed when it leaves), after.
                self._scroll_out()
                self.alt = True
            modes = tuple(m for m in modes if m != 3)
        super().set_mode(*modes, **kwargs)

    def reset_mode(self, *modes: int, **kwargs: Any) -> None:
        if kwargs.get("private"):
            if self.alt and any(m in _ALT_SCREEN for m in modes):
                self.alt = False
                self._scroll_out()  # the TUI's last screen stays in the log
                self.cursor.x = self.cursor.y = 0
            modes = tuple(m for m in modes if m != 3)
        super().reset_mode(*modes, **kwargs)

    # -- a pane taller than 24 rows shows in the rows the stream addresses ----------------------
    def _grow(self, row: int | None) -> None:
        if row is not None and self.lines < row <= MAX_ROWS and self.margins is None:
            self.lines = row

    def cursor_position(self, line: int | None = None, column: int | None = None) -> None:
        self._grow(line)
        super().cursor_position(line, column)

    def cursor_to_line(self, line: int | None = None) -> None:
        self._grow(line)
        super().cursor_to_line(line)

    def set_margins(self, top: int | None = None, bottom: int | None = None) -> None:
        self._grow(bottom)
        if not top and bottom is None:  # a reset homes the cursor too (tmux, xterm; not pyte)
            self.margins = None
            self.cursor_position()
            return
        super().set_margins(top, bottom)


class _Stream(pyte.Stream):
    def _send_to_parser(self, data: str) -> bool | None:
        try:
            return super()._send_to_parser(data)
        except Exception:  # a malformed sequence (wrong parameter count): pyte reset its parser
            return True


class ScreenRenderer:
    """Bytes in (in any chunks: split characters and sequences wait for the rest), lines out."""

    def __init__(self, *, columns: int = COLUMNS, rows: int = ROWS, history: int = HISTORY) -> None:
        self.screen = _Screen(columns, rows, history)
        self._stream = _Stream(self.screen)
        self._decode = codecs.getincrementaldecoder("utf-8")("replace").decode
        self._held = ""
        self.fast = True  # tests turn the plain-line shortcut off to compare with pyte alone

    def feed(self, data: bytes) -> None:
        text = self._held + self._decode(data)
        cut = len(text)
        esc = text.rfind("\x1b", max(0, cut - 4096))
        if esc >= 0 and not _COMPLETE.match(text, esc):
            cut = esc
        self._held = text[cut:]
        if cut:
            self._feed(_DROP.sub("", text[:cut]))

    def _feed(self, text: str) -> None:
        """Runs of whole plain lines at a fresh line skip pyte (10x faster: most logs are
        mostly lines); everything else goes through it, a line at a time."""
        screen, stream, p, n = self.screen, self._stream, 0, len(text)
        while p < n:
            if self.fast and stream._taking_plain_text and screen.at_fresh_line():
                m = _PLAIN_LINES.match(text, p)
                if m and screen.put_lines(m.group().split("\r\n")[:-1]):
                    p = m.end()
                    continue
            end = text.find("\n", p) + 1 or n
            stream.feed(text[p:end])
            p = end

    def lines(self) -> list[str]:
        """The scrollback history, then the screen (its trailing blank lines trimmed)."""
        return [*self.screen.history, *self.screen.rows()]
