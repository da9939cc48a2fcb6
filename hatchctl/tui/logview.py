"""A log pane: reads from the end of the file (a 1 GB log shows its last screen at once), follows
new output off the UI thread, and filters, inverts, searches, wraps and saves."""

from __future__ import annotations

import re
import time
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, RichLog, Static

from hatchctl.runtime.logfile import strip_ansi, tail_bytes

INITIAL_BYTES = 256 * 1024
MAX_LINES = 20_000


class LogView(Vertical):
    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("exclamation_mark", "invert", "Invert"),
        Binding("n", "search(1)", "Next"),
        Binding("N", "search(-1)", "Prev"),
        Binding("w", "wrap", "Wrap"),
        Binding("ctrl+s", "save", "Save"),
        Binding("end", "follow", "Follow", show=False),
    ]

    def __init__(self, path: Path | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.path = path
        self.lines: list[str] = []
        self.pattern = ""
        self.invert = False
        self.wrap = False
        self.read_pos = 0
        self.new_lines = 0
        self.match_at = -1

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter (regex); enter to apply, esc to cancel", id="log-filter")
        yield RichLog(highlight=False, markup=False, wrap=False, max_lines=MAX_LINES, id="log-body")
        yield Static("", id="log-badge")

    def on_mount(self) -> None:
        self.query_one("#log-filter", Input).display = False
        self.set_interval(0.5, self.poll)
        self.open(self.path)

    # -- loading (worker threads) -----------------------------------------------------------
    def open(self, path: Path | None) -> None:
        self.path = path
        self.lines, self.read_pos, self.new_lines = [], 0, 0
        self.query_one("#log-body", RichLog).clear()
        if path is not None:
            self._load_tail(path)

    @work(thread=True, exclusive=True, group="log-load")
    def _load_tail(self, path: Path) -> None:
        data = tail_bytes(path, INITIAL_BYTES)
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        text = strip_ansi(data.decode("utf-8", errors="replace"))
        lines = text.split("\n")
        if size > len(data) and lines:
            lines = lines[1:]  # cut mid-line
        self.app.call_from_thread(self._loaded, path, lines, size)

    def _loaded(self, path: Path, lines: list[str], size: int) -> None:
        if path != self.path:
            return
        self.lines = [ln for ln in lines if ln or ln is not lines[-1]][-MAX_LINES:]
        self.read_pos = size
        self.redraw()

    def poll(self) -> None:
        if self.path is not None:
            self._read_new(self.path, self.read_pos)

    @work(thread=True, exclusive=True, group="log-poll")
    def _read_new(self, path: Path, offset: int) -> None:
        try:
            with path.open("rb") as fh:
                fh.seek(offset)
                chunk = fh.read(4 * 1024 * 1024)
        except OSError:
            return
        if chunk:
            self.app.call_from_thread(self._append, path, offset, chunk)

    def _append(self, path: Path, offset: int, chunk: bytes) -> None:
        if path != self.path or offset != self.read_pos:
            return
        self.read_pos += len(chunk)
        new = strip_ansi(chunk.decode("utf-8", errors="replace")).split("\n")
        if self.lines and new:
            self.lines[-1] += new.pop(0)
        self.lines.extend(new)
        self.lines = self.lines[-MAX_LINES:]
        body = self.query_one("#log-body", RichLog)
        at_end = body.is_vertical_scroll_end
        shown = [ln for ln in new if self._keep(ln)]
        body.auto_scroll = at_end
        for line in shown:
            body.write(self._styled(line))
        if not at_end:
            self.new_lines += len(shown)
        self._badge()

    # -- display ---------------------------------------------------------------------------
    def _matches(self, line: str) -> bool:
        try:
            return re.search(self.pattern, line) is not None
        except re.error:
            return self.pattern in line

    def _keep(self, line: str) -> bool:
        return not self.pattern or self._matches(line) != self.invert

    def _styled(self, line: str) -> Text:
        text = Text(line)
        if self.pattern and not self.invert:
            try:
                text.highlight_regex(self.pattern, "reverse")
            except re.error:
                text.highlight_words([self.pattern], "reverse")
        return text

    def shown_lines(self) -> list[str]:
        return [ln for ln in self.lines if self._keep(ln)]

    def redraw(self) -> None:
        body = self.query_one("#log-body", RichLog)
        body.clear()
        body.wrap = self.wrap
        body.auto_scroll = True
        for line in self.shown_lines():
            body.write(self._styled(line))
        self.new_lines = 0
        self._badge()

    def _badge(self) -> None:
        parts = []
        if self.new_lines:
            parts.append(f"{self.new_lines} new lines (end: follow)")
        if self.pattern:
            parts.append(("NOT " if self.invert else "") + f"/{self.pattern}/")
        if self.wrap:
            parts.append("wrap")
        self.query_one("#log-badge", Static).update("  ".join(parts))

    # -- actions ---------------------------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query_one("#log-filter", Input)
        box.display = True
        box.value = self.pattern
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.pattern = event.value
        event.input.display = False
        self.query_one("#log-body", RichLog).focus()
        self.redraw()

    def key_escape(self) -> bool:
        box = self.query_one("#log-filter", Input)
        if box.display:
            box.display = False
            self.query_one("#log-body", RichLog).focus()
            return True
        return False

    def action_invert(self) -> None:
        self.invert = not self.invert
        self.redraw()

    def action_wrap(self) -> None:
        self.wrap = not self.wrap
        self.redraw()

    def action_follow(self) -> None:
        self.query_one("#log-body", RichLog).scroll_end(animate=False)
        self.new_lines = 0
        self._badge()

    def action_search(self, direction: int) -> None:
        """Jump to the next (or previous) line matching the filter pattern, without hiding lines."""
        if not self.pattern:
            self.app.notify("set a pattern with / first")
            return
        lines = self.shown_lines()
        n = len(lines)
        for step in range(1, n + 1):
            i = (self.match_at + direction * step) % n
            if self._matches(lines[i]):
                self.match_at = i
                self.query_one("#log-body", RichLog).scroll_to(y=i, animate=False)
                return

    def action_save(self) -> None:
        if self.path is None:
            return
        target = Path.cwd() / f"{self.path.stem}.{time.strftime('%Y%m%d-%H%M%S')}.txt"
        target.write_text("\n".join(self.shown_lines()) + "\n", encoding="utf-8")
        self.app.notify(f"saved {len(self.shown_lines())} lines to {target}")
