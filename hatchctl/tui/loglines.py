"""The lines of a log pane (``LogLines``): a scrolling list of what the agent's screen showed,
drawn a visible line at a time, with a filter, an inverted filter, search marks and wrapping.
Only the UI thread edits it; the follower and the pages come from LogView's workers."""

from __future__ import annotations

import re
from bisect import bisect_right

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.events import Resize
from textual.geometry import Offset, Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip


def _cells(line: str) -> int:
    return len(line) if line.isascii() else cell_len(line)


def _widest(lines: list[str]) -> int:
    """The widest line's cells: for ASCII lines (most logs), their longest (no per-line call:
    a kept log of 20 000 lines is set again on every move of the cursor back to it)."""
    if not lines:
        return 0
    if "".join(lines).isascii():
        return max(map(len, lines))
    return max(map(_cells, lines))


def _highlighted(line: str, pattern: str) -> Text:
    text = Text(line)
    text.expand_tabs()
    if pattern:
        try:
            text.highlight_regex(pattern, "reverse")
        except re.error:
            text.highlight_words([pattern], "reverse")
    return text


class LogLines(ScrollView, can_focus=True):
    """Lines drawn on demand (only the visible ones are ever rendered): replacing the last
    rows (a TUI's screen redrawn) or setting 20,000 lines costs a list edit, not a render.
    ``wrap`` breaks lines at the width, like a terminal."""

    DEFAULT_CSS = """
    LogLines {
        background: $surface;
        color: $foreground;
        overflow-y: scroll;
        &:focus {
            background-tint: $foreground 5%;
        }
    }
    """

    class Top(Message):
        """Scrolled up at the first line: the view may page back."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines: list[str] = []
        self.pattern = ""  # highlighted in every line
        self.wrap = False
        self._widest = 0
        self._starts: list[int] = [0]  # with wrap: the first row of each line, then the end
        self._strips: LRUCache[tuple[str, str], Strip] = LRUCache(4096)
        self._pass: tuple[Offset, int, Style] | None = None  # while render_lines runs

    def set_lines(self, lines: list[str], *, pattern: str, wrap: bool) -> None:
        self.lines, self.pattern, self.wrap = lines, pattern, wrap
        self._widest = _widest(lines)
        self._changed(0)

    def replace_from(self, index: int, lines: list[str]) -> None:
        del self.lines[index:]
        self.lines.extend(lines)
        self._widest = max(self._widest, _widest(lines))
        self._changed(index)

    def drop_front(self, count: int) -> None:
        if count:
            del self.lines[:count]
            self._changed(0)

    def prepend(self, cut: int, lines: list[str]) -> None:
        """``lines`` replace the first ``cut``; what was on screen stays where it was."""
        gone = self.row_of(cut)
        self.lines[:cut] = lines
        self._widest = max(self._widest, _widest(lines))
        self._changed(0)
        y = self.scroll_y + self.row_of(len(lines)) - gone
        self.scroll_to(y=y, animate=False, immediate=True)

    # scrolling up at the first line (keys, wheel; a log that fits scrolls nowhere) asks for more
    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(new_value) == 0 < round(old_value):
            self.post_message(self.Top())

    def _up(self) -> None:
        if round(self.scroll_y) == 0:
            self.post_message(self.Top())

    def action_scroll_up(self) -> None:
        self._up()
        super().action_scroll_up()

    def action_page_up(self) -> None:
        self._up()
        super().action_page_up()

    def action_scroll_home(self) -> None:  # a jump: an animation drew every row on the way
        self._up()
        self.scroll_home(animate=False, x_axis=self.scroll_y == 0)

    def on_mouse_scroll_up(self) -> None:
        self._up()

    def row_of(self, index: int) -> int:
        return self._starts[index] if self.wrap and index < len(self._starts) else index

    def on_resize(self, _event: Resize) -> None:
        if self.wrap:
            self._changed(0)

    def _changed(self, index: int) -> None:
        """Lines from ``index`` on changed: the rows they take, the size, a repaint."""
        width = max(1, self.scrollable_content_region.width)
        rows = len(self.lines)
        if self.wrap:
            starts = self._starts
            del starts[index + 1 :]
            row = starts[index] if index < len(starts) else 0
            for line in self.lines[index:]:
                row += max(1, -(-_cells(line) // width))
                starts.append(row)
            rows = starts[-1]
        size = Size(width if self.wrap else self._widest, rows)
        if size != self.virtual_size:  # no layout of the screen (a streaming log grows 4 times a
            # second): only the scrollbars change; one appearing or going asks for a layout
            self.set_reactive(LogLines.virtual_size, size)
            self._scroll_update(size)
        self.refresh()

    def _strip(self, line: str) -> Strip:
        key = (line, self.pattern)
        strip = self._strips.get(key)
        if strip is None and not self.pattern and line.isascii() and line.isprintable():
            strip = Strip([Segment(line)], len(line))  # what Rich renders it to, made directly
            self._strips[key] = strip
        elif strip is None:
            console = self.app.console
            text = _highlighted(line, self.pattern)
            options = console.options.update(overflow="ignore", no_wrap=True)
            rendered = list(
                Segment.split_lines(
                    console.render(text, options.update_width(max(1, text.cell_len)))
                )
            )
            strip = Strip(rendered[0]) if rendered else Strip.blank(0)
            self._strips[key] = strip
        return strip

    def render_lines(self, crop: Region) -> list[Strip]:
        """What every line of one render shares (the offset, the width, the style: the style
        walks the widget's ancestors) is looked up once, not per line."""
        self._pass = (self.scroll_offset, self.scrollable_content_region.width, self.rich_style)
        try:
            return super().render_lines(crop)
        finally:
            self._pass = None

    def render_line(self, y: int) -> Strip:
        if self._pass is None:
            return self._render_line(y, self.scroll_offset, self.scrollable_content_region.width)
        return self._render_line(y, self._pass[0], self._pass[1], self._pass[2])

    def _render_line(self, y: int, offset: Offset, width: int, style: Style | None = None) -> Strip:
        scroll_x, scroll_y = offset
        row, style = scroll_y + y, self.rich_style if style is None else style
        if self.wrap:
            index = bisect_right(self._starts, row) - 1
            if index < len(self.lines):
                part = (row - self._starts[index]) * width
                strip = self._strip(self.lines[index]).crop(part, part + width)
                return strip.crop_extend(0, width, style).apply_style(style)
        elif row < len(self.lines):
            strip = self._strip(self.lines[row])
            return strip.crop_extend(scroll_x, scroll_x + width, style).apply_style(style)
        return Strip.blank(width, style).apply_style(style)
