"""The dashboard's navigation, as the control room's base: the task table drawn from each
snapshot as a diff, sorted and filtered (Nav), the search that jumps without hiding, and the strip
of what needs a person (Attention). The keys are bound in HatchApp (app.py)."""

from __future__ import annotations

import operator
from itertools import compress
from typing import Any

from rich.text import Text
from textual.app import App
from textual.widgets import DataTable, Input, Static

from hatchctl.state.durations import format_duration
from hatchctl.tui.attention import Attention
from hatchctl.tui.columns import Layout, Rows, fit, layout, same
from hatchctl.tui.nav import Nav
from hatchctl.tui.table import TaskTable
from hatchctl.tui.views import Snapshot, TaskView

FILL = 1000  # rows added to the table per frame (10 000 at once would hold the keys a second)


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
        self.rows = Rows()  # each task's cells, kept while its view does not change
        self.seen_views: dict[str, TaskView] = {}  # the views of the last snapshot taken in
        self.seen_snapshot: Snapshot | None = None
        self.attention_shown = Text()
        self.texts: dict[str, Text] = {}  # what each Static over the table shows
        self.changed: list[TaskView] | None = None  # the views new in the snapshot taken in
        self.drawn: tuple[object, ...] = ()  # the table's whole list: snapshot order, width...

    def _follow_selection(self) -> None:
        """The cursor moved or the rows changed (HatchApp shows the task's log)."""

    def on_resize(self) -> None:
        self._redraw()

    def _notify_changes(self, snap: Snapshot) -> None:
        """A notification naming the task for each new attention item, and for completions.
        Only the views that changed since the last snapshot are looked at."""
        seen, current, last = self.seen_views, snap.by_id, self.seen_snapshot
        gone: list[str] = []
        if last is not None and last.order is snap.order and snap.order:  # the same tasks
            changed = list(compress(snap.views, map(operator.is_not, snap.views, last.views)))
        else:
            changed = [v for v in snap.views if seen.get(v.task.id) is not v]
            added = sum(1 for v in changed if v.task.id not in seen)
            gone = [k for k in seen if k not in current] if len(seen) + added > len(current) else []
        new = self.attention.update(snap, changed, gone)
        self.seen_views, self.seen_snapshot, self.changed = current, snap, changed
        if len(new) > 3:  # one toast, not a screenful (a failure blocks its dependents)
            names = ", ".join(item.name for item in new)
            self.notify(f"{len(new)} new: {names}", severity="warning", title="needs you")
            new = []
        for item in new:
            if item.kind == "failed":
                self.notify(item.message, severity="error", title="needs you")
            else:
                self.notify(item.message, severity="warning", title="needs you")
        for v in changed:
            before = self.known_states.get(v.task.id)
            if before is not None and before != "completed" and v.task.state == "completed":
                self.notify(f"{v.task.id} completed", title="hatchctl")
            elif before == "pending" and v.task.state == "active" and v.task.id in self.narration:
                self.notify(f"{v.task.id} starts: {self.narration[v.task.id]}", title="demo")
            self.known_states[v.task.id] = v.task.state
        for key in gone:
            self.known_states.pop(key, None)
        self._show_attention()

    def _show_attention(self) -> None:
        strip = self.query_one("#attention", Static)
        text = self.attention.strip()
        if not same(text, self.attention_shown):  # a Static redraws on every update
            self.attention_shown = text
            strip.update(text, layout=False)  # one line high
        if strip.display != bool(self.attention.items):
            strip.display = bool(self.attention.items)
            self.refresh_bindings()  # d (dismiss) applies while there is an item

    def _update(self, selector: str, text: Text) -> None:
        """A Static's text, only when it changed (an update redraws it)."""
        old = self.texts.get(selector)
        if old is None or not same(old, text):
            self.texts[selector] = text
            self.query_one(selector, Static).update(text, layout=False)  # one line high

    def _show_features(self, snap: Snapshot) -> None:
        """The feature roll-ups over the table, only when a task has a feature (as a diff)."""
        text = "\n".join(feature_lines(snap.features))
        panel = self.query_one("#features", Static)
        if text != str(panel.render()):
            panel.update(Text(text, no_wrap=True, overflow="ellipsis"))
        panel.display = bool(text)

    def _fill_table(self, snap: Snapshot, changed: list[TaskView] | None = None) -> None:
        """The tasks as filtered and sorted, drawn as a diff of what the table shows. With
        ``changed`` (the views new in this snapshot) and the table already showing every task in
        the queue's order at this width, only those rows are looked at. A big table is filled
        FILL rows a frame."""
        table = self.query_one("#tasks", TaskTable)
        labels = {name: self.nav.label(name) for name, _ in self.columns}
        if self.nav.sort is not None:
            labels[self.nav.sort] = self.nav.label(self.nav.sort)
        width = max(table.size.width or self.size.width, 40) - 2
        rows, search = self.rows, self.nav.search
        drawn = (snap.order, width, search, self.nav.filtered, self.nav.sort, self.nav.reverse)
        if changed is not None and self.drawn and drawn == self.drawn:  # `is` on the order
            for v in changed:
                rows.entry(v, snap)
            if fit(width, rows.widest(), labels, None) == self.columns:
                table.update_rows(
                    self.columns,
                    [(v.task.id, rows.cells(v, snap, self.columns, search)) for v in changed],
                )
                if search:  # the hits may have changed
                    self._show_nav()
                self._follow_selection()
                return
        views = self.nav.visible(snap.views)
        if len(rows.entries) > len(snap.views):
            rows.forget(snap.by_id)
        self.columns = layout(width, views, snap, labels, keep=self.nav.sort, rows=rows)
        given, budget, shown = table.given, FILL, []
        for v in views:  # rows the table lacks: FILL a frame, the rest after it is drawn
            if v.task.id not in given:
                if not budget:
                    break
                budget -= 1
            shown.append((v.task.id, rows.cells(v, snap, self.columns, search)))
        table.show(self.columns, labels, shown, self.selected)
        if len(shown) < len(views):
            self.call_after_refresh(self._redraw)
        plain = not self.nav.filtered and self.nav.sort is None and not snap.partial
        self.drawn = drawn if plain and snap.order and len(shown) == len(views) else ()
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
        self._update("#nav-status", line)
        status = self.query_one("#nav-status", Static)
        status.display = bool(line.plain)

    def _current(self) -> TaskView | None:
        tables = self.query("#tasks").results(TaskTable)  # none while the app closes
        table = next(iter(tables), None)
        if self.snapshot is None or table is None:
            return None
        key = table.current
        return self.snapshot.by_id.get(key) if key is not None else None

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


def feature_lines(rollups: dict[str, dict[str, Any]], most: int = 4) -> list[str]:
    """``calc 3/5 done · 1 failed · 1 blocked · 12m00s · $0.42``, one per feature (at most
    ``most`` lines: the last then counts the rest)."""
    lines = []
    for name, f in rollups.items():
        parts = [f"{name} {f['completed']}/{f['total']} done"]
        parts += [f"{f[k]} {k}" for k in ("failed", "blocked") if f[k]]
        used = f.get("metrics") or {}
        if used.get("wall_seconds"):
            parts.append(format_duration(float(used["wall_seconds"])))
        if used.get("cost_usd") is not None:
            parts.append(f"${float(used['cost_usd']):.2f}")
        lines.append(" · ".join(parts))
    if len(lines) > most:
        rest = len(lines) - most + 1
        lines = [*lines[: most - 1], f"… {rest} more features (`hatchctl status` lists them)"]
    return lines
