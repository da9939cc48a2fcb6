"""A log pane: what the agent's screen showed. A worker thread follows the log
(``logfollow.LogFollower``: the last ``START_BYTES`` rendered through a terminal emulator, then
only new bytes) and posts what changed; the UI thread only edits a list of lines and draws the
visible ones, so neither a 1 GB log nor a TUI redrawing in place blocks it. Scrolling up past
the first line renders the page before it (``logfile.render_page``, in a worker), up to
``MAX_PAGED`` lines in all. The followers of the last ``KEPT`` logs shown are kept: going back
to a task (the cursor moving between rows) reads only what its log gained since, instead of
rendering its tail again through the emulator. Filters, inverts, searches, wraps and saves."""

from __future__ import annotations

import re
import threading
import time
from bisect import bisect_left
from collections.abc import Callable
from itertools import compress
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.cache import LRUCache
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from hatchctl.runtime.logfile import render_page, skipped_marker
from hatchctl.runtime.logfollow import LogFollower, Update
from hatchctl.tui.loglines import LogLines as LogLines  # re-exported (the tests use it here)

MAX_LINES = 20_000  # kept while following (older lines are dropped as new ones come)
MAX_PAGED = 250_000  # kept once paged back
START_BYTES = 64 << 10  # the tail rendered first (~1 000 lines; older ones page in): on every
# move of the cursor to another task, so it is kept small (was 256 KiB, ~4 000 lines)
POLL_SECONDS = 0.25
KEPT = 8  # followers kept for the logs shown last (each holds at most its emulator's history)


class Followed:
    """A kept follower: polled by one worker at a time (the view's current generation's), and
    where its last fresh render started (for paging back)."""

    def __init__(self, path: Path) -> None:
        self.follower = LogFollower(path, start_bytes=START_BYTES)
        self.lock = threading.Lock()
        self.start = -1
        self.shown = -1  # the view's generation that has its lines (then only what changed)

    def updates(
        self, generation: int, current: Callable[[], bool]
    ) -> Update | tuple[int, list[str], int] | None:
        """The next change to post while ``current()`` is true; all it has, as (first number,
        lines, start), the first time for a ``generation`` (the view's open) that lacks them."""
        with self.lock:
            if not current():
                return None
            update = self.follower.poll()
            if update is not None and update.keep == 0:
                self.start = update.start  # a fresh render: the view starts over with it
            shown, self.shown = self.shown, generation
            if shown == generation or (update is not None and update.keep == 0):
                return update
            base, lines = self.follower.snapshot()
            return base, lines, self.start


class LogView(Vertical):
    BINDINGS = [
        Binding("slash", "find", "Search"),
        Binding("f", "filter", "Filter"),
        Binding("exclamation_mark", "invert", "Invert"),
        Binding("n", "search(1)", "Next"),
        Binding("N", "search(-1)", "Prev"),
        Binding("w", "wrap", "Wrap"),
        Binding("ctrl+s", "save", "Save"),
        Binding("end", "follow", "Follow", show=False),
    ]

    class Updated(Message):
        """The followed log changed (posted by the follower thread)."""

        bubble = False

        def __init__(self, generation: int, update: Update, base: int = 0) -> None:
            super().__init__()
            self.generation = generation
            self.update = update
            self.base = base  # for a start over: the follower's number of its first line

    class Paged(Message):
        """The page of the log before offset ``end``: its ``lines`` start at offset ``start``."""

        bubble = False

        def __init__(self, generation: int, end: int, start: int, lines: list[str]) -> None:
            super().__init__()
            self.generation, self.end, self.start, self.lines = generation, end, start, lines

    def __init__(self, path: Path | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.path = path
        self.lines: list[str] = []
        self.first = 0  # the follower's number of lines[0] (older lines were dropped)
        self._numbers: list[int] = []  # the number of each shown (filtered) line
        self.pattern = ""  # the filter: only matching lines are shown
        self.search = ""  # the search: highlighted, jumped to with n / N, nothing hidden
        self.prompt = "filter"  # what the input box sets
        self.invert = False
        self.wrap = False
        self.new_lines = 0
        self.match_at = -1  # the shown line the search is on
        self.found = ""  # "match 2/7"
        self._generation = 0
        self.older = 0  # bytes before lines[0] that paging back can still read
        self.cap = MAX_LINES  # lines kept (more once paged back)
        self._paging = False
        self.badge = ""  # what the badge under the lines shows
        self.followers: LRUCache[Path, Followed] = LRUCache(KEPT)  # the UI thread's only

    def compose(self) -> ComposeResult:
        yield Input(id="log-filter")
        yield LogLines(id="log-body")
        yield Static("", id="log-badge")

    def on_mount(self) -> None:
        self.query_one("#log-filter", Input).display = False
        self.open(self.path)

    # -- following (a worker thread renders; the UI applies changes) -------------------------
    def open(self, path: Path | None) -> None:
        self.path = path
        self._generation += 1
        followed = self.followers.get(path) if path is not None else None
        if followed is not None and followed.lock.acquire(blocking=False):
            try:  # kept: its lines as last polled now, what they gained since comes next
                base, lines = followed.follower.snapshot()
                followed.shown, start = self._generation, followed.start
            finally:
                followed.lock.release()
            self.apply(Update(0, lines, start), base)
        else:
            self.lines, self.first, self.older, self.cap = [], 0, 0, MAX_LINES
            self.redraw()
        if path is None:
            self.workers.cancel_group(self, "log-follow")
            return
        if followed is None:
            followed = Followed(path)
            self.followers[path] = followed
        self._follow(followed, self._generation)

    @work(thread=True, exclusive=True, group="log-follow")
    def _follow(self, followed: Followed, generation: int) -> None:
        worker = get_current_worker()

        def current() -> bool:  # a worker of an earlier open may still run: it stops polling
            return not worker.is_cancelled and generation == self._generation

        while current():
            update = followed.updates(generation, current)
            if isinstance(update, tuple):  # a kept follower: its lines as they are now
                base, lines, start = update
                self.post_message(self.Updated(generation, Update(0, lines, start), base))
            elif update is not None:
                self.post_message(self.Updated(generation, update))
            worker.cancelled_event.wait(POLL_SECONDS)

    def on_log_view_updated(self, message: Updated) -> None:
        if message.generation == self._generation:
            self.apply(message.update, message.base)

    def apply(self, update: Update, base: int = 0) -> None:
        """Lines from number ``update.keep`` on are replaced by ``update.lines`` (``keep`` 0: all
        of them, the first numbered ``base``)."""
        keep, new = update.keep, update.lines
        if keep == 0 or keep < self.first:  # start over
            self.lines, self.first = new[-MAX_LINES:], base + max(0, len(new) - MAX_LINES)
            paged = keep == 0 and update.start > 0 and self.first == 0  # lines[0]: the marker
            self.older, self.cap = update.start if paged else 0, MAX_LINES
            if paged:
                self.lines[0] = skipped_marker(self.older, page=True)
            self.redraw()
            return
        body = self.query_one("#log-body", LogLines)
        at_end = body.is_vertical_scroll_end
        del self.lines[keep - self.first :]
        self.lines.extend(new)
        cut = bisect_left(self._numbers, keep)
        removed = len(self._numbers) - cut
        del self._numbers[cut:]
        shown = [(n, line) for n, line in enumerate(new, start=keep) if self._keep(line)]
        self._numbers.extend(n for n, _ in shown)
        body.replace_from(cut, [line for _, line in shown])
        excess = len(self.lines) - self.cap
        if excess > 0:
            del self.lines[:excess]
            self.first += excess
            self.older = 0  # the lines kept no longer start where the older bytes end
            gone = bisect_left(self._numbers, self.first)
            del self._numbers[:gone]
            body.drop_front(gone)
        if at_end:
            body.scroll_end(animate=False, immediate=False, x_axis=False)
        else:
            self.new_lines += max(0, len(shown) - removed)
        self._badge()

    # -- paging back (a worker renders the page before the first line) -------------------------
    def on_log_lines_top(self, event: LogLines.Top) -> None:
        event.stop()
        if self.path is not None and self.older and not self._paging:
            if len(self.lines) >= MAX_PAGED:
                self.app.notify(f"{MAX_PAGED:,} lines shown: `hatchctl logs --raw` has all")
                return
            self._paging = True
            self._page(self.path, self.older, self._generation)

    @work(thread=True, group="log-page")
    def _page(self, path: Path, end: int, generation: int) -> None:
        start, lines = render_page(path, end)
        self.post_message(self.Paged(generation, end, start, lines))

    def on_log_view_paged(self, message: Paged) -> None:
        self._paging = False
        if message.generation != self._generation or message.end != self.older:
            return
        new = ([skipped_marker(message.start, page=True)] if message.start else []) + message.lines
        self.older, self.lines[:1] = message.start, new  # the page replaces the marker
        self.first -= len(new) - 1
        self.cap = max(self.cap, len(self.lines))
        cut = int(bool(self._numbers) and self._numbers[0] == self.first + len(new) - 1)
        shown = [(n, ln) for n, ln in enumerate(new, start=self.first) if self._keep(ln)]
        self._numbers[:cut] = [n for n, _ in shown]
        if self.match_at >= 0:
            self.match_at += len(shown) - cut
        self.query_one("#log-body", LogLines).prepend(cut, [ln for _, ln in shown])

    # -- display ---------------------------------------------------------------------------
    def _matches(self, line: str, pattern: str | None = None) -> bool:
        pattern = self.pattern if pattern is None else pattern
        try:
            return re.search(pattern, line) is not None
        except re.error:
            return pattern in line

    def _keep(self, line: str) -> bool:
        return not self.pattern or self._matches(line) != self.invert

    def shown_lines(self) -> list[str]:
        return [ln for ln in self.lines if self._keep(ln)]

    def redraw(self) -> None:
        """Show the lines again (after a filter change or a start over), at the end."""
        numbers = range(self.first, self.first + len(self.lines))
        if self.pattern:
            kept = [self._keep(ln) for ln in self.lines]
            shown, self._numbers = list(compress(self.lines, kept)), list(compress(numbers, kept))
        else:
            shown, self._numbers = list(self.lines), list(numbers)
        body = self.query_one("#log-body", LogLines)
        body.set_lines(shown, pattern=self._highlight(), wrap=self.wrap)
        body.scroll_end(animate=False, immediate=False, x_axis=False)
        self.new_lines = 0
        self.match_at = -1
        self._badge()

    def _highlight(self) -> str:
        return self.search or (self.pattern if not self.invert else "")

    def _badge(self) -> None:
        parts = []
        if self.search:
            parts.append(f"search /{self.search}/ {self.found} (n/N)")
        if self.new_lines:
            parts.append(f"{self.new_lines} new lines (end: follow)")
        if self.pattern:
            parts.append("filter " + ("NOT " if self.invert else "") + f"/{self.pattern}/")
        if self.wrap:
            parts.append("wrap")
        text = "  ".join(parts)
        if text != self.badge:  # one line high: no layout (it was redone 4 times a second)
            self.badge = text
            self.query_one("#log-badge", Static).update(text, layout=False)

    # -- actions ---------------------------------------------------------------------------
    def action_filter(self) -> None:
        self._ask("filter", "filter: show only lines matching (regex); enter applies, esc cancels")

    def action_find(self) -> None:
        self._ask("search", "search (regex): n / N jump between matches; esc cancels")

    def _ask(self, prompt: str, placeholder: str) -> None:
        box = self.query_one("#log-filter", Input)
        self.prompt = prompt
        box.placeholder = placeholder
        box.display = True
        box.value = self.pattern if prompt == "filter" else self.search
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        event.input.display = False
        self.query_one("#log-body", LogLines).focus()
        if self.prompt == "filter":
            self.pattern = event.value
            self.redraw()
            return
        self.search, self.match_at = event.value, -1
        body = self.query_one("#log-body", LogLines)
        body.pattern = self._highlight()
        body.refresh()
        if self.search:
            self.action_search(1)
        self._badge()

    def key_escape(self) -> bool:
        box = self.query_one("#log-filter", Input)
        if box.display:
            box.display = False
            self.query_one("#log-body", LogLines).focus()
            return True
        return False

    def action_invert(self) -> None:
        self.invert = not self.invert
        self.redraw()

    def action_wrap(self) -> None:
        self.wrap = not self.wrap
        self.redraw()

    def action_follow(self) -> None:
        self.query_one("#log-body", LogLines).scroll_end(animate=False)
        self.new_lines = 0
        self._badge()

    def _hit(self, line: str) -> bool:
        return bool(self.search) and self._matches(line, self.search)

    def action_search(self, direction: int) -> None:
        """Jump to the next (or previous) line matching the search, without hiding lines."""
        if not self.search:
            self.app.notify("search with / first")
            return
        body = self.query_one("#log-body", LogLines)
        lines = body.lines
        n = len(lines)
        for step in range(1, n + 1):
            i = (self.match_at + direction * step) % n
            if self._hit(lines[i]):
                self.match_at = i
                hits = [j for j, line in enumerate(lines) if self._hit(line)]
                self.found = f"match {hits.index(i) + 1}/{len(hits)}"
                top = max(0, body.row_of(i) - body.scrollable_content_region.height // 3)
                body.scroll_to(y=top, animate=False, immediate=True)
                self._badge()
                return
        self.found = "no match"
        self._badge()
        self.app.notify(f"no line matches /{self.search}/", severity="warning")

    def export_dir(self) -> Path:
        """The project's .hatch/exports (a log lives under .hatch/logs), never the cwd."""
        assert self.path is not None
        hatch = next((p for p in self.path.parents if p.name == ".hatch"), self.path.parent)
        return hatch / "exports"

    def action_save(self) -> None:
        if self.path is None:
            return
        target = self.export_dir() / f"{self.path.stem}.{time.strftime('%Y%m%d-%H%M%S')}.txt"
        self._save(target, self.shown_lines())

    @work(thread=True, group="log-save")
    def _save(self, target: Path, lines: list[str]) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("\n".join(lines) + "\n", encoding="utf-8")
        except OSError as exc:
            self.app.call_from_thread(self.app.notify, f"not saved: {exc}", severity="error")
            return
        self.app.call_from_thread(self.app.notify, f"saved {len(lines)} lines to {target}")
