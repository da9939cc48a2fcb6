"""The dashboard's task table: its columns, the cells of one task, a layout that fits the
width by dropping low-value columns (never the id, the state or the sort column) instead of cutting
them off, and a table that takes each refresh as a diff: rows added, removed, cells updated, the
order sorted, the cursor kept on its task. A row's values, widths and cells are computed once per
TaskView (the data source hands out a new view only when its task changed), so a refresh costs
what changed, not the number of tasks."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, overload

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

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
            e = self.entries[v.task.id] = Entry(v, values, widths)
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
            e.cells, e.cells_for = cells(v, snap, columns, search, e.values), (columns, search)
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
) -> list[Text]:
    """Every cell is a Text (never markup: ids and log lines may contain brackets); the search's
    matches are highlighted."""
    values = values or cell_values(v, snap)
    pattern = re.compile(re.escape(search), re.IGNORECASE) if search else None
    out = []
    for name, width in columns:
        value, style = values[name]
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
        if not same(was, cell)
    ]


def drop(cache: LRUCache[Any, Any], gone: Callable[[Any], bool]) -> None:
    """Discard the entries of one of DataTable's render caches whose key ``gone`` picks."""
    keys = cache.keys()
    for key in [k for k in keys if gone(k)]:
        cache.discard(key)


def same(a: Text, b: Text) -> bool:
    """Text's own == ignores its base style (a state's colour)."""
    return a.plain == b.plain and a.style == b.style and a.spans == b.spans


class Lines(Sequence[tuple[RowKey, int]]):
    """DataTable's (row key, line within the row) for each line, for rows one line high."""

    def __init__(self, table: DataTable[Text]) -> None:
        self.table = table

    def __len__(self) -> int:
        return self.table.row_count

    @overload
    def __getitem__(self, y: int) -> tuple[RowKey, int]: ...
    @overload
    def __getitem__(self, y: slice) -> list[tuple[RowKey, int]]: ...
    def __getitem__(self, y: int | slice) -> tuple[RowKey, int] | list[tuple[RowKey, int]]:
        if isinstance(y, slice):
            return [self[n] for n in range(*y.indices(len(self)))]
        key = self.table._row_locations.get_key(y if y >= 0 else len(self) + y)
        if key is None:
            raise IndexError(y)
        return key, 0

    def clear(self) -> None:
        """DataTable.clear() empties its cached list; there is none here."""


class TaskTable(DataTable[Text]):
    """The task list; g/home and G/end go to the first/last task."""

    BINDINGS = [
        Binding("g,home", "first", "Top", show=False),
        Binding("G,end", "last", "Bottom", show=False),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keys: list[str] = []  # the row keys as shown, top to bottom (show() keeps it)
        self.given: dict[str, list[Text]] = {}  # the cells each row was last given

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """Every column has a fixed width and every row one line: the new rows' cells need no
        measuring (DataTable measures each cell of each new row: 130 000 at 10 000 tasks)."""
        if any(c.auto_width for c in self.columns.values()) or any(
            r.auto_height or r.label is not None for r in map(self.rows.get, new_rows) if r
        ):
            super()._update_dimensions(new_rows)
            return
        width = sum(c.get_render_width(self) for c in self.columns.values())
        header = self.header_height if self.show_header else 0
        self.virtual_size = Size(width + self._row_label_column_width, self.row_count + header)

    @property
    def _y_offsets(self) -> Lines:  # type: ignore[override]
        """Every row is one line high (show() adds them so): the row of each line is looked up
        when asked for (DataTable lists all of them again after every cell update)."""
        return Lines(self)

    def in_view(self) -> list[str]:
        """The keys of the rows on screen (every row is one line high)."""
        top = self.scroll_offset.y
        height = max(0, self.size.height - (self.header_height if self.show_header else 0))
        return self.keys[top : top + height + 1]

    def action_first(self) -> None:
        self.move_cursor(row=0)

    def action_last(self) -> None:
        self.move_cursor(row=max(0, self.row_count - 1))

    @property
    def order(self) -> list[str]:
        """The task ids as shown, top to bottom."""
        return [str(row.key.value) for row in self.ordered_rows]

    @property
    def current(self) -> str | None:
        if self.row_count == 0:
            return None
        return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)

    def update_rows(self, columns: Layout, rows: list[tuple[str, list[Text]]]) -> None:
        """New cells for rows the table shows (their order and the columns unchanged)."""
        changes: dict[str, list[tuple[str, Text]]] = {}
        for key, values in rows:
            given = self.given[key]
            if given is not values:
                changes[key] = changed_cells(columns, given, values)
                self.given[key] = values
        self.set_cells(changes)

    def set_cells(self, changes: dict[str, list[tuple[str, Text]]]) -> None:
        """New values for cells (row key -> (column, value)); only the renders of those cells
        and of their rows are dropped, and only their lines redrawn. DataTable.update_cell
        drops every render of the table for each cell, so a clock in each row re-rendered every
        cell on screen every second."""
        cells: set[tuple[str | None, str | None]] = set()
        lines: set[int] = set()
        top = self.header_height if self.show_header else 0
        for key, values in changes.items():
            row_key = RowKey(key)
            data = self._data[row_key]
            for name, value in values:
                data[ColumnKey(name)] = value
                cells.add((key, name))
            index = self._row_locations.get(row_key)
            if values and index is not None:
                lines.add(top + index)
        if not lines:
            return
        rows = {key for key, _ in cells}
        indices = {y - top for y in lines}
        drop(self._cell_render_cache, lambda k: (k[0].value, k[1].value) in cells)
        drop(self._row_render_cache, lambda k: k[0].value in rows)
        drop(self._row_renderable_cache, lambda k: k[1] in indices)
        drop(self._line_cache, lambda k: k[0] in lines)
        scroll_y = self.scroll_offset.y
        width, height = self.size
        for y in lines:  # a row's line on screen (the header stays on top)
            if top <= y - scroll_y < height:
                self.refresh(Region(0, y - scroll_y, width, 1))

    def show(
        self,
        columns: Layout,
        labels: dict[str, str],
        rows: list[tuple[str, list[Text]]],
        selected: str | None,
    ) -> None:
        """Make the table show ``rows`` (task id, cells), in that order, from what it shows now;
        the cursor stays on ``selected`` while it is shown. A row given the very cells list it
        was given last time is not compared."""
        names = [name for name, _ in columns]
        resized: set[str] = set()
        if names != [str(k.value) for k in self.columns] or self.row_count == 0:
            self.clear(columns=True)  # other columns (a resize): the one full rebuild
            self.keys, self.given = [], {}
            for name, width in columns:
                self.add_column(Text(labels.get(name, name)), key=name, width=width)
        else:
            for name, width in columns:
                column = self.columns[ColumnKey(name)]
                label = labels.get(name, name)
                if column.width != width or column.label.plain != label:
                    column.width, column.label = width, Text(label)
                    resized.add(name)
        wanted = {key: n for n, (key, _) in enumerate(rows)}
        for key in [k for k in self.keys if k not in wanted]:
            self.remove_row(key)
            del self.given[key]
        changes: dict[str, list[tuple[str, Text]]] = {}
        for key, values in rows:
            given = self.given.get(key)
            if given is None:
                self.add_row(*values, key=key)
            elif resized:  # widths are set, never measured; every render is dropped
                for (name, _), old, new in zip(columns, given, values, strict=True):
                    if name in resized or not same(old, new):
                        self.update_cell(key, name, new)
            elif given is not values:
                changes[key] = changed_cells(columns, given, values)
            self.given[key] = values
        self.set_cells(changes)
        order = [key for key, _ in rows]
        before = set(self.keys)
        if [k for k in self.keys if k in wanted] + [k for k in order if k not in before] != order:
            # sort() hands the key the ID cell, not the row key: find the row by that very cell
            place = {id(self.get_cell(key, "ID")): n for key, n in wanted.items()}
            self.sort("ID", key=lambda cell: place[id(cell)])
        self.keys = order
        if resized:
            self._update_dimensions(())  # the virtual width
        if selected in wanted and self.cursor_row != wanted[selected]:
            self.move_cursor(row=wanted[selected])
