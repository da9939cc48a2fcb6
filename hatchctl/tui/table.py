"""The dashboard's task table, a DataTable that takes each refresh as a diff: rows added,
removed, cells updated (only those cells' renders dropped), the order sorted, the cursor kept on
its task. Its columns and each task's cells are computed in columns.py."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, overload

from rich.text import Text
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from hatchctl.tui.columns import MATCH_STYLE as MATCH_STYLE  # re-exported (tests)
from hatchctl.tui.columns import NAMES as NAMES  # re-exported (palette.py)
from hatchctl.tui.columns import Layout, changed_cells, same


def drop(cache: LRUCache[Any, Any], gone: Callable[[Any], bool]) -> None:
    """Discard the entries of one of DataTable's render caches whose key ``gone`` picks."""
    keys = cache.keys()
    for key in [k for k in keys if gone(k)]:
        cache.discard(key)


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
