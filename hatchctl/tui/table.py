"""The dashboard's task table: its columns, the cells of one task, and a layout that fits the
width by dropping low-value columns (never the id or the state) instead of cutting them off."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from hatchctl.state.durations import format_duration
from hatchctl.tui.data import Snapshot, TaskView

# name, widest cell, drop rank (0: never dropped; the highest is dropped first)
COLUMNS: tuple[tuple[str, int, int], ...] = (
    ("ID", 16, 0),
    ("TITLE", 24, 3),
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
    ("LAST LINE", 0, 4),
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


def cell_values(v: TaskView, snap: Snapshot) -> dict[str, tuple[str, str]]:
    """Every column's text and style for one task."""
    t = v.task
    style = (
        "bold magenta"
        if v.run is not None and (v.run.state == "stalled" or v.run.waiting_since is not None)
        else STATE_STYLE.get(t.state, "")
    )
    if t.state in ("failed", "blocked") and t.last_error:  # why, before what the agent printed
        last = (t.last_error, "red" if t.state == "failed" else "yellow")
    else:
        last = (v.last_line or t.last_error or "", "" if v.last_line else "dim")
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


def layout(width: int, views: list[TaskView], snap: Snapshot) -> Layout:
    """The columns shown and their widths: each as wide as its content (up to its cap), the
    lowest-ranked dropped until the rest fit, LAST LINE taking what is left."""
    values = [cell_values(v, snap) for v in views]
    widths = {
        name: min(cap, max([cell_len(name), *(cell_len(row[name][0]) for row in values)]))
        for name, cap, _ in COLUMNS
        if name != LAST
    }
    shown = [name for name, _, _ in COLUMNS]
    for name, _, _ in sorted((c for c in COLUMNS if c[2]), key=lambda c: -c[2]):
        fixed = sum(widths[n] + PAD for n in shown if n != LAST)
        if fixed + (MIN_LAST + PAD if LAST in shown else 0) <= width:
            break
        shown.remove(name)
    fixed = sum(widths[n] + PAD for n in shown if n != LAST)
    return tuple((n, max(MIN_LAST, width - fixed - PAD) if n == LAST else widths[n]) for n in shown)


def cells(v: TaskView, snap: Snapshot, columns: Layout) -> list[Text]:
    """Every cell is a Text (never markup: ids and log lines may contain brackets)."""
    values = cell_values(v, snap)
    out = []
    for name, width in columns:
        value, style = values[name]
        text = Text(value, style=style, end="", no_wrap=True, overflow="ellipsis")
        text.truncate(width, overflow="ellipsis")
        out.append(text)
    return out


class TaskTable(DataTable[Text]):
    """The task list; home/end go to the first/last task."""

    BINDINGS = [
        Binding("home", "first", "Top", show=False),
        Binding("end", "last", "Bottom", show=False),
    ]

    def action_first(self) -> None:
        self.move_cursor(row=0)

    def action_last(self) -> None:
        self.move_cursor(row=max(0, self.row_count - 1))
