"""The dashboard's task table: its columns, the cells of one task, a layout that fits the
width by dropping low-value columns (never the id, the state or the sort column) instead of cutting
them off, and a table that takes each refresh as a diff: rows added, removed, cells updated, the
order sorted, the cursor kept on its task."""

from __future__ import annotations

import re

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from hatchctl.state.durations import format_duration
from hatchctl.tui.data import Snapshot, TaskView

# name, widest cell, drop rank (0: never dropped; the highest is dropped first). A task id is at
# most 64 characters: never cut.
COLUMNS: tuple[tuple[str, int, int], ...] = (
    ("ID", 64, 0),
    ("TITLE", 24, 4),
    ("ROLE", 8, 6),
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
NAMES = tuple(name for name, _, _ in COLUMNS)
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
        "STATE": (v.status, style),
        "ITER": (str(t.iteration), ""),
        "RESTARTS": (f"{t.restarts}/{snap.max_restarts}", "yellow" if t.restarts else ""),
        "STRIKES": (f"{t.strikes}/{snap.max_strikes}", "red" if t.strikes else ""),
        "RUNTIME": (format_duration(v.runtime), ""),
        "IDLE": (format_duration(v.idle), ""),
        "CPU": (f"{v.cpu:.0f}%" if v.cpu is not None else "-", ""),
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
) -> Layout:
    """The columns shown and their widths: each as wide as its content (up to its cap; its header
    always whole), the lowest-ranked dropped until the rest fit (never ``keep``, the sort column),
    LAST LINE taking what is left."""
    labels = labels or {}
    values = [cell_values(v, snap) for v in views]
    widths = {
        name: max(
            cell_len(labels.get(name, name)),
            min(cap, max([0, *(cell_len(row[name][0]) for row in values)])),
        )
        for name, cap, _ in COLUMNS
        if name != LAST
    }
    shown = [name for name, _, _ in COLUMNS]
    droppable = sorted((c for c in COLUMNS if c[2] and c[0] != keep), key=lambda c: -c[2])
    for name, _, _ in droppable:
        fixed = sum(widths[n] + PAD for n in shown if n != LAST)
        if fixed + (MIN_LAST + PAD if LAST in shown else 0) <= width:
            break
        shown.remove(name)
    fixed = sum(widths[n] + PAD for n in shown if n != LAST)
    return tuple((n, max(MIN_LAST, width - fixed - PAD) if n == LAST else widths[n]) for n in shown)


def cells(v: TaskView, snap: Snapshot, columns: Layout, search: str = "") -> list[Text]:
    """Every cell is a Text (never markup: ids and log lines may contain brackets); the search's
    matches are highlighted."""
    values = cell_values(v, snap)
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


def same(a: Text, b: Text) -> bool:
    """Text's own == ignores its base style (a state's colour)."""
    return a.plain == b.plain and a.style == b.style and a.spans == b.spans


class TaskTable(DataTable[Text]):
    """The task list; g/home and G/end go to the first/last task."""

    BINDINGS = [
        Binding("g,home", "first", "Top", show=False),
        Binding("G,end", "last", "Bottom", show=False),
    ]

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

    def show(
        self,
        columns: Layout,
        labels: dict[str, str],
        rows: list[tuple[str, list[Text]]],
        selected: str | None,
    ) -> None:
        """Make the table show ``rows`` (task id, cells), in that order, from what it shows now;
        the cursor stays on ``selected`` while it is shown."""
        names = [name for name, _ in columns]
        resized: set[str] = set()
        if names != [str(k.value) for k in self.columns] or self.row_count == 0:
            self.clear(columns=True)  # other columns (a resize): the one full rebuild
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
        for key in [k for k in self.order if k not in wanted]:
            self.remove_row(key)
        for key, values in rows:
            if key not in self.rows:
                self.add_row(*values, key=key)
                continue
            for (name, _), old, new in zip(columns, self.get_row(key), values, strict=True):
                if name in resized or not same(old, new):
                    self.update_cell(key, name, new, update_width=name in resized)
        if self.order != [key for key, _ in rows]:
            # sort() hands the key the ID cell, not the row key: find the row by that very cell
            place = {id(self.get_cell(key, "ID")): n for key, n in wanted.items()}
            self.sort("ID", key=lambda cell: place[id(cell)])
        if selected in wanted and self.cursor_row != wanted[selected]:
            self.move_cursor(row=wanted[selected])
