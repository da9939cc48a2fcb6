"""The task table's columns and each task's cells: the columns, a task's values and cells, a
layout that fits the width by dropping low-value columns (never the id, the state or the sort
column) instead of cutting them off, and the rows as last computed (Rows). A row's values, widths
and cells are computed once per TaskView (the data source hands out a new view only when its task
changed), and a cell whose text and style did not change keeps its very Text, so a refresh costs
what changed, not the number of tasks. Drawn by TaskTable (table.py)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import itemgetter

from rich.cells import cell_len
from rich.text import Text

from hatchctl.tui.views import Snapshot, TaskView, clock

# name, widest cell, drop rank (0: never dropped; the highest is dropped first). A task id is at
# most 64 characters: never cut.
COLUMNS: tuple[tuple[str, int, int], ...] = (
    ("ID", 64, 0),
    ("TITLE", 24, 4),
    ("ROLE", 8, 6),
    ("HOST", 12, 12),  # the run's [hosts.NAME]; only when a run is on one, dropped first
    ("STATE", 20, 0),
    ("ITER", 4, 8),
    ("RESTARTS", 8, 7),
    ("STRIKES", 7, 2),
    ("RUNTIME", 7, 1),
    ("IDLE", 6, 5),
    ("CPU", 5, 9),
    ("ACTIVITY", 10, 10),
    ("USAGE", 16, 11),
    ("LAST LINE", 0, 3),
)
WHEN_USED = frozenset({"HOST"})  # shown only when a row has a value (a run on an SSH host)
NAMES = tuple(name for name, _, _ in COLUMNS)
SIZED = tuple((name, cap) for name, cap, _ in COLUMNS if name != "LAST LINE")
LAST = "LAST LINE"
MIN_LAST = 20
PAD = 2  # a DataTable cell has one cell of padding each side
STATE_STYLE = {
    "completed": "green",
    "failed": "bold red",
    "blocked": "yellow",
    "pending": "dim",
    "active": "cyan",
}

Layout = tuple[tuple[str, int], ...]
MATCH_STYLE = "bold black on yellow"


def cell_values(v: TaskView, snap: Snapshot) -> dict[str, tuple[str, str]]:
    """Every column's text and style for one task."""
    t = v.task
    if t.state == "active" and t.phase == "review":
        style = "bold cyan"  # waiting for a person's review
    elif v.run is not None and (v.run.state == "stalled" or v.run.waiting_since is not None):
        style = "bold magenta"
    else:
        style = STATE_STYLE.get(t.state, "")
    if t.held:
        style = f"{style} italic".strip()
    if v.reason:  # why, before what the agent printed
        last = (v.last_text, "red" if t.state == "failed" else "yellow")
    else:
        last = (v.last_text, "" if v.last_line else "dim")
    return {
        "ID": (t.id, ""),
        "TITLE": (t.title, ""),
        "ROLE": (v.role, ""),
        "HOST": ("" if v.run is None or v.run.host is None else v.run.host, ""),
        "STATE": (v.status, style),
        "ITER": (str(t.iteration), ""),
        "RESTARTS": (f"{t.restarts}/{snap.max_restarts}", "yellow" if t.restarts else ""),
        "STRIKES": (f"{t.strikes}/{snap.max_strikes}", "red" if t.strikes else ""),
        "RUNTIME": (clock(v.runtime), ""),
        "IDLE": (clock(v.idle), ""),
        "CPU": (v.cpu_text, ""),
        "ACTIVITY": (v.activity, "green"),
        "USAGE": (v.usage or "-", ""),
        LAST: last,
    }


def layout(
    width: int,
    views: list[TaskView],
    snap: Snapshot,
    labels: dict[str, str] | None = None,
    keep: str | None = None,
    rows: Rows | None = None,
) -> Layout:
    """The columns shown and their widths: each as wide as its content (up to its cap; its header
    always whole), the lowest-ranked dropped until the rest fit (never ``keep``, the sort column),
    LAST LINE taking what is left."""
    rows = rows or Rows()
    sized = [rows.entry(v, snap).widths for v in views]
    content = [max(map(itemgetter(n), sized), default=0) for n in range(len(SIZED))]
    return fit(width, content, labels or {}, keep)


def fit(width: int, content: list[int], labels: dict[str, str], keep: str | None) -> Layout:
    """``layout`` from the widest content of each column (in SIZED's order)."""
    widths = {
        name: max(cell_len(labels.get(name, name)), most)
        for (name, _), most in zip(SIZED, content, strict=True)
    }
    used = dict(zip((n for n, _ in SIZED), content, strict=True))
    shown = [name for name, _, _ in COLUMNS if name not in WHEN_USED or used[name] or name == keep]
    droppable = sorted(
        (c for c in COLUMNS if c[2] and c[0] in shown and c[0] != keep), key=lambda c: -c[2]
    )
    for name, _, _ in droppable:
        fixed = sum(widths[n] + PAD for n in shown if n != LAST)
        if fixed + (MIN_LAST + PAD if LAST in shown else 0) <= width:
            break
        shown.remove(name)
    fixed = sum(widths[n] + PAD for n in shown if n != LAST)
    return tuple((n, max(MIN_LAST, width - fixed - PAD) if n == LAST else widths[n]) for n in shown)


@dataclass
class Entry:
    """One task's row as last computed: its view, values, widths (capped) and cells."""

    view: TaskView
    values: dict[str, tuple[str, str]]
    widths: tuple[int, ...]
    cells: list[Text] = field(default_factory=list)
    cells_for: tuple[Layout, str] | None = None
    was: Entry | None = None  # the entry this one replaced, until its cells are made


class Rows:
    """Each task's Entry, recomputed only when the snapshot hands out another view for it, and
    how many entries have each width in each column (the widest, without looking at them all)."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self.limits = (0, 0)  # the snapshot's max_restarts and max_strikes: in the values
        self.counts: list[dict[int, int]] = [{} for _ in SIZED]

    def entry(self, v: TaskView, snap: Snapshot) -> Entry:
        if (snap.max_restarts, snap.max_strikes) != self.limits:
            self.limits = (snap.max_restarts, snap.max_strikes)
            self.forget(())
        e = self.entries.get(v.task.id)
        if e is None or e.view is not v:
            values = cell_values(v, snap)
            widths = tuple(min(cap, cell_len(values[name][0])) for name, cap in SIZED)
            if e is not None:
                self._count(e.widths, -1)
            self._count(widths, 1)
            was = e if e is not None and e.cells_for is not None else None
            if was is not None:
                was.was = None  # one entry back, never a chain
            e = self.entries[v.task.id] = Entry(v, values, widths, was=was)
        return e

    def _count(self, widths: tuple[int, ...], step: int) -> None:
        for counts, w in zip(self.counts, widths, strict=True):
            counts[w] = counts.get(w, 0) + step
            if not counts[w]:
                del counts[w]

    def widest(self) -> list[int]:
        """The widest content of each column over every entry."""
        return [max(counts, default=0) for counts in self.counts]

    def cells(self, v: TaskView, snap: Snapshot, columns: Layout, search: str) -> list[Text]:
        """The row's cells (the same list while nothing in it changed)."""
        e = self.entry(v, snap)
        if e.cells_for != (columns, search):
            was = e.was if e.was is not None and e.was.cells_for == (columns, search) else None
            old = (was.values, was.cells) if was is not None else None
            e.cells = cells(v, snap, columns, search, e.values, old)
            e.cells_for = (columns, search)
        e.was = None
        return e.cells

    def forget(self, keep: Iterable[str]) -> None:
        """Drop the entries of tasks not in ``keep``."""
        kept = set(keep)
        for key in [k for k in self.entries if k not in kept]:
            self._count(self.entries.pop(key).widths, -1)


def cells(
    v: TaskView,
    snap: Snapshot,
    columns: Layout,
    search: str = "",
    values: dict[str, tuple[str, str]] | None = None,
    old: tuple[dict[str, tuple[str, str]], list[Text]] | None = None,
) -> list[Text]:
    """Every cell is a Text (never markup: ids and log lines may contain brackets); the search's
    matches are highlighted. With ``old`` (the row's values and cells before, for the same
    columns and search), a cell whose value and style are the same is the very Text it was
    (compared by identity, not re-made: most of a live row does not change in a second)."""
    values = values or cell_values(v, snap)
    pattern = re.compile(re.escape(search), re.IGNORECASE) if search else None
    out = []
    for n, (name, width) in enumerate(columns):
        value, style = values[name]
        if old is not None and old[0][name] == (value, style):
            out.append(old[1][n])
            continue
        text = Text(value, style=style, end="", no_wrap=True, overflow="ellipsis")
        if pattern is not None:
            for m in pattern.finditer(value):
                text.stylize(MATCH_STYLE, m.start(), m.end())
        text.truncate(width, overflow="ellipsis")
        out.append(text)
    return out


def changed_cells(columns: Layout, old: list[Text], new: list[Text]) -> list[tuple[str, Text]]:
    """The (column, value) of each cell of a row whose text or style changed."""
    return [
        (name, cell)
        for (name, _), was, cell in zip(columns, old, new, strict=True)
        if was is not cell and not same(was, cell)
    ]


def same(a: Text, b: Text) -> bool:
    """Text's own == ignores its base style (a state's colour)."""
    return a.plain == b.plain and a.style == b.style and a.spans == b.spans
