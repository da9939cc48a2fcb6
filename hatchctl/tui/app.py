"""The control room: a dashboard of every task and its agent, the selected agent's log below,
keys to kill, restart, retry, attach, pause and drill down. A client of the supervisor: it reads
the store and writes commands; tmux, git, psutil and the store are only touched in workers."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Input, ProgressBar, Static

from hatchctl.errors import HatchError
from hatchctl.project import Project
from hatchctl.runtime.tmux import Tmux
from hatchctl.state.store import Store
from hatchctl.tui.data import DataSource, Snapshot, TaskView
from hatchctl.tui.logview import LogView
from hatchctl.tui.palette import HatchCommands
from hatchctl.tui.screens import ConfirmScreen, DetailScreen, HelpScreen
from hatchctl.tui.table import Layout, TaskTable, cells, layout

Sender = Callable[[str, str | None], tuple[bool, str]]
# keys of the dashboard: off (and out of the footer) while a drill-down or a dialog is shown
DASHBOARD_ACTIONS = frozenset(
    {"drill", "kill", "restart", "retry", "attach", "pause", "filter", "help"}
)


class HatchApp(App[None]):
    CSS_PATH = "hatch.tcss"
    TITLE = "hatchctl"
    COMMANDS = App.COMMANDS | {HatchCommands}
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("enter", "drill", "Details"),
        Binding("k", "kill", "Kill"),
        Binding("r", "restart", "Restart"),
        Binding("x", "retry", "Retry"),
        Binding("a", "attach", "Attach"),
        Binding("p", "pause", "Pause/resume"),
        Binding("slash", "filter", "Filter"),
        Binding("colon", "command_palette", "Commands", show=False),
        Binding("question_mark", "help", "Help"),
    ]

    def __init__(
        self,
        project: Project,
        store: Store,
        *,
        send: Sender | None = None,
        read_only: bool = False,
        source: DataSource | None = None,
        refresh_every: float = 1.0,
    ) -> None:
        super().__init__()
        self.project = project
        self.store = store
        self.source = source or DataSource(project, store)
        self.send = send
        self.read_only = read_only or send is None
        self.refresh_every = refresh_every
        self.snapshot: Snapshot | None = None
        self.filter_text = ""
        self.selected: str | None = None
        self.known_states: dict[str, str] = {}
        self.columns: Layout = ()
        self.exit_note = ""  # printed by `hatchctl` when the control room closes

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="top"):
            yield Static("", id="overview")
            with Horizontal(id="progress-row"):
                yield ProgressBar(total=1, show_eta=False, id="progress")
                yield Static("", id="progress-label")
            yield Input(
                placeholder="filter tasks; enter to apply, empty to clear", id="task-filter"
            )
            yield TaskTable(id="tasks", cursor_type="row", zebra_stripes=True)
        yield Static("", id="log-title")
        yield LogView(None, id="tail")
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"hatchctl · {self.project.name}"
        table = self.query_one("#tasks", DataTable)
        self.query_one("#task-filter", Input).display = False
        table.focus()
        self.refresh_data()
        self.set_interval(self.refresh_every, self.refresh_data)

    # -- data (worker thread) ---------------------------------------------------------------
    @work(thread=True, exclusive=True, group="snapshot")
    def refresh_data(self) -> None:
        try:
            snap = self.source.load()
        except HatchError as exc:
            self.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.call_from_thread(self.show, snap)

    def show(self, snap: Snapshot) -> None:
        self.snapshot = snap
        self._notify_changes(snap)
        # the supervisor first: at 80 columns the counts may be cut, never the pid
        sup = (
            f"supervisor pid {snap.supervisor_pid}"
            if snap.supervisor_pid
            else "no supervisor (viewer)"
        )
        if snap.paused:
            sup += f" · PAUSED: {snap.pause_reason or 'by user'}"
        if self.read_only:
            sup += " · read-only"
        counts = " ".join(f"{k} {v}" for k, v in snap.counts.items() if v)
        self.query_one("#overview", Static).update(
            Text.assemble(sup, "  ", (snap.project, "bold"), "  ", counts, no_wrap=True)
        )
        bar = self.query_one("#progress", ProgressBar)
        bar.update(total=max(snap.total, 1), progress=snap.completed)
        self.query_one("#progress-label", Static).update(snap.progress_label())
        self._fill_table(snap)

    def on_resize(self) -> None:
        if self.snapshot is not None:
            self._fill_table(self.snapshot)

    def _notify_changes(self, snap: Snapshot) -> None:
        for v in snap.views:
            before = self.known_states.get(v.task.id)
            if before is not None and before != v.task.state:
                if v.task.state == "completed":
                    self.notify(f"{v.task.id} completed", title="hatchctl")
                elif v.task.state == "failed":
                    self.notify(
                        f"{v.task.id} failed: {v.task.last_error or ''}",
                        severity="error",
                        title="hatchctl",
                    )
            self.known_states[v.task.id] = v.task.state

    def _fill_table(self, snap: Snapshot) -> None:
        table = self.query_one("#tasks", DataTable)
        views = [
            v
            for v in snap.views
            if not self.filter_text
            or self.filter_text.lower() in f"{v.task.id} {v.task.title} {v.status}".lower()
        ]
        wanted = [v.task.id for v in views]
        existing = [str(k.value) for k in table.rows]
        columns = layout(max(table.size.width or self.size.width, 40) - 2, views, snap)
        if existing != wanted or columns != self.columns:
            cursor_id = self.selected
            table.clear(columns=columns != self.columns)
            if columns != self.columns:
                self.columns = columns
                for name, width in columns:
                    table.add_column(name, key=name, width=width)
            for v in views:
                table.add_row(*cells(v, snap, columns), key=v.task.id)
            if cursor_id in wanted:
                table.move_cursor(row=wanted.index(cursor_id))
        else:  # the same rows and columns: only the cells that changed are drawn again
            for v in views:
                row = table.get_row(v.task.id)
                for (name, _), old, value in zip(
                    columns, row, cells(v, snap, columns), strict=True
                ):
                    if old != value:
                        table.update_cell(v.task.id, name, value)
        self._follow_selection()

    def _current(self) -> TaskView | None:
        if self.snapshot is None:
            return None
        table = self.query_one("#tasks", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((v for v in self.snapshot.views if v.task.id == key), None)

    def _follow_selection(self) -> None:
        view = self._current()
        task_id = view.task.id if view else None
        log = self.query_one("#tail", LogView)
        path = self.project.root / view.run.log_path if view and view.run else None
        if view is None:
            title = ""
        elif view.run is None:
            title = f"{task_id}: no agent has run yet"
        else:  # the states are read from every snapshot: never a stale "running"
            title = f"{task_id} · {view.run.window_name} · run {view.run.state} · {view.status}"
        label = self.query_one("#log-title", Static)
        if str(label.render()) != title:
            label.update(title)
        if task_id != self.selected or path != log.path:
            self.selected = task_id
            log.open(path)

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._follow_selection()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "tasks":  # not a row of a drill-down's table
            self.action_drill()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in DASHBOARD_ACTIONS:
            return self.screen is self.screen_stack[0]
        return True

    def quit_note(self) -> str:
        """What keeps running once the control room is closed."""
        snap = self.snapshot
        if snap is None:
            return ""
        live = snap.live_agents
        if snap.supervisor_pid:
            return (
                f"hatchctl: the supervisor (pid {snap.supervisor_pid}) and {live} agent(s) keep "
                "running; `hatchctl` reopens the control room, `hatchctl down` stops them"
            )
        if live:
            return f"hatchctl: {live} agent(s) still running; `hatchctl down` stops them"
        return ""

    async def action_quit(self) -> None:
        self.exit_note = self.quit_note()
        self.exit()

    # -- actions -----------------------------------------------------------------------------
    def _command(self, kind: str, task_id: str | None) -> None:
        if self.read_only or self.send is None:
            self.notify("read-only: actions are refused", severity="warning")
            return
        self._send(kind, task_id)

    @work(thread=True, group="commands")
    def _send(self, kind: str, task_id: str | None) -> None:
        assert self.send is not None
        try:
            ok, result = self.send(kind, task_id)
        except HatchError as exc:
            ok, result = False, str(exc)
        self.call_from_thread(self.notify, result, severity="information" if ok else "error")
        self.call_from_thread(self.refresh_data)

    def run_command(self, kind: str, task_id: str | None) -> None:
        self._command(kind, task_id)

    def confirm_kill(self, task_id: str) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self._command("kill", task_id)

        self.push_screen(
            ConfirmScreen(f"Kill the agent of {task_id}? The task will fail."), answered
        )

    def open_detail(self, task_id: str) -> None:
        self.push_screen(DetailScreen(self.project, self.store, task_id))

    def action_kill(self) -> None:
        if (view := self._current()) is not None:
            self.confirm_kill(view.task.id)

    def action_restart(self) -> None:
        if (view := self._current()) is not None:
            self._command("restart", view.task.id)

    def action_retry(self) -> None:
        if (view := self._current()) is not None:
            self._command("retry", view.task.id)

    def action_pause(self) -> None:
        paused = self.snapshot is not None and self.snapshot.paused
        self._command("resume" if paused else "pause", None)

    def action_attach(self) -> None:
        view = self._current()
        if (
            view is None
            or view.run is None
            or view.run.state not in ("running", "stalled", "stopped", "summarizing")
        ):
            self.notify("no live agent pane for this task", severity="warning")
            return
        argv = Tmux(self.project.tmux_socket).attach_argv(
            view.run.pane_id or "", read_only=self.read_only
        )
        with self.suspend():
            subprocess.run(argv, check=False, timeout=None)  # the user detaches when done

    def action_drill(self) -> None:
        if (view := self._current()) is not None:
            self.open_detail(view.task.id)

    def action_filter(self) -> None:
        box = self.query_one("#task-filter", Input)
        box.display = True
        box.value = self.filter_text
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "task-filter":
            return
        self.filter_text = event.value.strip()
        event.input.display = False
        self.query_one("#tasks", DataTable).focus()
        if self.snapshot is not None:
            self._fill_table(self.snapshot)

    def action_help(self) -> None:
        self.push_screen(HelpScreen("dashboard"))


def css_path() -> Path:
    return Path(__file__).with_name("hatch.tcss")
