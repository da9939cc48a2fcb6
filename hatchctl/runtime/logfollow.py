"""Following a growing pane log (``logfile`` reads and renders its bytes): a ``LogFollower``
keeps its screen and feeds only the bytes appended since its last poll, reporting what changed;
``StablePrinter`` turns such changes into lines printed once (``hatchctl logs --follow``)."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from pathlib import Path

from hatchctl.runtime.logfile import TAIL_BYTES, read_range, size_of, skipped_marker, window
from hatchctl.runtime.screenlog import ScreenRenderer
from hatchctl.runtime.termsize import HISTORY, ROWS


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
            size = size_of(self.path)
            if size is None:
                return None
            if self._renderer is None or size < self.pos or size - self.pos > self.max_bytes:
                return self._restart(size)
            if size == self.pos:
                return None
            data = read_range(self.path, self.pos, size)
            self.pos += len(data)
            self._renderer.feed(data)
            return self._changes()

    def _restart(self, size: int) -> Update:
        skipped, data = window(self.path, size, self.start_bytes)
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
