"""The dashboard's navigation, as the control room's base: the task table drawn from each
snapshot as a diff, sorted and filtered (Nav), the search that jumps without hiding, and the strip
of what needs a person (Attention). The keys are bound in HatchApp (app.py)."""

from __future__ import annotations

from textual.app import App
from textual.widgets import DataTable, Input, Static

from hatchctl.tui.attention import Attention
from hatchctl.tui.data import Snapshot, TaskView
from hatchctl.tui.nav import Nav
from hatchctl.tui.table import Layout, TaskTable, cells, layout


class Dashboard(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.snapshot: Snapshot | None = None
        self.nav = Nav()
        self.asking = ""  # what the box over the table edits: "search", "filter" or ""
        self.asked_from = ""  # its value before: esc puts it back
        self.asked_row = 0
        self.attention = Attention()
        self.selected: str | None = None  # the task under the cursor
        self.known_states: dict[str, str] = {}
        self.narration: dict[str, str] = {}  # the demo's: said when each task starts
        self.columns: Layout = ()

    def _follow_selection(self) -> None:
        """The cursor moved or the rows changed (HatchApp shows the task's log)."""

    def on_resize(self) -> None:
        self._redraw()

    def _notify_changes(self, snap: Snapshot) -> None:
        """A notification naming the task for each new attention item, and for completions."""
        new = self.attention.update(snap)
        if len(new) > 3:  # one toast, not a screenful (a failure blocks its dependents)
            names = ", ".join(item.name for item in new)
            self.notify(f"{len(new)} new: {names}", severity="warning", title="needs you")
            new = []
        for item in new:
            if item.kind == "failed":
                self.notify(item.message, severity="error", title="needs you")
            else:
                self.notify(item.message, severity="warning", title="needs you")
        for v in snap.views:
            before = self.known_states.get(v.task.id)
            if before is not None and before != "completed" and v.task.state == "completed":
                self.notify(f"{v.task.id} completed", title="hatchctl")
            elif before == "pending" and v.task.state == "active" and v.task.id in self.narration:
                self.notify(f"{v.task.id} starts: {self.narration[v.task.id]}", title="demo")
            self.known_states[v.task.id] = v.task.state
        self._show_attention()

    def _show_attention(self) -> None:
        strip = self.query_one("#attention", Static)
        strip.update(self.attention.strip())
        if strip.display != bool(self.attention.items):
            strip.display = bool(self.attention.items)
            self.refresh_bindings()  # d (dismiss) applies while there is an item

    def _fill_table(self, snap: Snapshot) -> None:
        """The tasks as filtered and sorted, drawn as a diff of what the table shows."""
        table = self.query_one("#tasks", TaskTable)
        views = self.nav.visible(snap.views)
        labels = {name: self.nav.label(name) for name, _ in self.columns}
        if self.nav.sort is not None:
            labels[self.nav.sort] = self.nav.label(self.nav.sort)
        width = max(table.size.width or self.size.width, 40) - 2
        self.columns = layout(width, views, snap, labels, keep=self.nav.sort)
        rows = [(v.task.id, cells(v, snap, self.columns, self.nav.search)) for v in views]
        table.show(self.columns, labels, rows, self.selected)
        self._show_nav(views)
        self._follow_selection()

    def _show_nav(self, views: list[TaskView] | None = None) -> None:
        """The filter and search line: shown only while one is on."""
        if views is None:
            views = self.nav.visible(self.snapshot.views) if self.snapshot else []
        total = len(self.snapshot.views) if self.snapshot else 0
        hits = self.nav.hits(views)
        at = self.query_one("#tasks", TaskTable).cursor_row
        hit = (hits.index(at) + 1 if at in hits else 0, len(hits)) if self.nav.search else None
        line = self.nav.indicator(len(views), total, hit)
        status = self.query_one("#nav-status", Static)
        status.update(line)
        status.display = bool(line.plain)

    def _current(self) -> TaskView | None:
        if self.snapshot is None:
            return None
        key = self.query_one("#tasks", TaskTable).current
        return next((v for v in self.snapshot.views if v.task.id == key), None)

    # -- sort, filter, search ----------------------------------------------------------------
    def _redraw(self) -> None:
        if self.snapshot is not None:
            self._fill_table(self.snapshot)

    def _ask(self, what: str) -> None:
        box = self.query_one("#task-filter", Input)
        self.asking = what
        self.asked_from = self.nav.search if what == "search" else self.nav.text
        self.asked_row = self.query_one("#tasks", TaskTable).cursor_row  # search from here
        box.placeholder = (
            "search: jump to matching tasks, nothing hidden (n/N next/previous); enter keeps it"
            if what == "search"
            else "filter: show only matching tasks; enter keeps it, empty shows all"
        )
        box.value = self.asked_from
        box.display = True
        box.focus()

    def action_search(self) -> None:
        self._ask("search")

    def action_filter(self) -> None:
        self._ask("filter")

    def on_input_changed(self, event: Input.Changed) -> None:
        """As you type: the filter narrows, the search jumps to the first match from where the
        cursor was."""
        if event.input.id == "task-filter" and self.asking:
            self._apply(event.value.strip(), jump=True)

    def _apply(self, value: str, *, jump: bool) -> None:
        if self.asking == "search":
            self.nav.search = value
            self._redraw()
            if jump and value:
                self._jump(1, start=self.asked_row)
        else:
            self.nav.text = value
            self._redraw()

    def _close_box(self) -> None:
        self.asking = ""
        self.query_one("#task-filter", Input).display = False
        self.query_one("#tasks", DataTable).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "task-filter":
            self._apply(event.value.strip(), jump=False)
            self._close_box()

    def _jump(self, direction: int, start: int | None = None) -> None:
        """The cursor to the next (1) or previous (-1) match, wrapping around; the first from row
        ``start`` on if given, else from the row after (before) the cursor."""
        table = self.query_one("#tasks", TaskTable)
        views = self.nav.visible(self.snapshot.views) if self.snapshot else []
        hits = self.nav.hits(views)
        if not hits:
            if self.nav.search:
                self.notify(f"no task matches {self.nav.search!r}", severity="warning")
            return
        at = table.cursor_row if start is None else start - direction
        ahead = [h for h in hits if (h - at) * direction > 0]
        target = ahead[0 if direction > 0 else -1] if ahead else hits[0 if direction > 0 else -1]
        table.move_cursor(row=target)
        self._show_nav(views)

    def action_next_match(self, direction: int) -> None:
        if not self.nav.search:
            self.action_search()
            return
        self._jump(direction)

    def action_state(self, name: str) -> None:
        """`1`-`4`: only the tasks in that state (the same key again, or `0`: all)."""
        self.set_state(None if name == self.nav.state else name)

    def set_state(self, name: str | None) -> None:
        self.nav.state = name or None
        self._redraw()

    def action_sort(self) -> None:
        self.nav.next_sort([name for name, _ in self.columns])
        self._redraw()

    def sort_by(self, column: str) -> None:
        """The command palette's `sort by COLUMN` (any column: it is kept on screen)."""
        self.nav.sort, self.nav.reverse = column, False
        self._redraw()

    def action_reverse(self) -> None:
        if self.nav.sort is None:
            self.notify("in queue order: `s` picks a column to sort by", severity="warning")
            return
        self.nav.reverse = not self.nav.reverse
        self._redraw()

    def action_clear(self) -> None:
        """esc: closes the box (undoing its edit), else clears the filters and the search."""
        if self.asking:
            self._apply(self.asked_from, jump=False)
            self._close_box()
            return
        if self.nav.filtered or self.nav.search:
            self.nav.state, self.nav.text, self.nav.search = None, "", ""
            self._redraw()

    def action_dismiss(self) -> None:
        view = self._current()
        item = self.attention.dismiss(view.task.id if view else None)
        if item is None:
            self.notify("nothing needs you", severity="information")
            return
        self._show_attention()
