"""The control room: a dashboard of every task and its agent, the selected agent's log below,
keys to kill, restart, retry, attach, message, approve or reject reviewed work, hold (a task or
its whole feature), pause and drill down, to sort, filter and search the tasks, a timeline, and
a strip of what needs a person (the keys and where each applies: keys.py). A client of the
supervisor: it reads the store and writes commands; tmux, git, psutil and the store are only
touched in workers."""

from __future__ import annotations

import gc
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Header, Input, ProgressBar, Static

from hatchctl.demo import NARRATION, is_demo
from hatchctl.errors import HatchError
from hatchctl.project import Project
from hatchctl.state.store import Store
from hatchctl.tui.agentkeys import AgentKeys
from hatchctl.tui.data import DataSource
from hatchctl.tui.footer import FitFooter
from hatchctl.tui.keys import APPLIES, BINDINGS, DASHBOARD_ACTIONS, FOOTER_DROP
from hatchctl.tui.keys import Sender as Sender  # re-exported: `hatchctl` (cmds/ui.py) types it
from hatchctl.tui.logview import LogView
from hatchctl.tui.palette import HatchCommands
from hatchctl.tui.screens import DetailScreen
from hatchctl.tui.table import TaskTable
from hatchctl.tui.taskedit import Editor
from hatchctl.tui.timeline import TimelineScreen
from hatchctl.tui.views import Snapshot

CHANGING = ("RUNTIME", "IDLE", "ACTIVITY")  # columns whose values change by the second


class HatchApp(AgentKeys):
    CSS_PATH = "hatch.tcss"
    TITLE = "hatchctl"
    COMMANDS = App.COMMANDS | {HatchCommands}
    BINDINGS = BINDINGS

    def __init__(
        self,
        project: Project,
        store: Store,
        *,
        send: Sender | None = None,
        read_only: bool = False,
        source: DataSource | None = None,
        refresh_every: float = 1.0,
        editor: Editor | None = None,
    ) -> None:
        super().__init__()
        self.project = project
        self.store = store
        self.source = source or DataSource(project, store)
        self.send = send
        self.read_only = read_only or send is None
        self.refresh_every = refresh_every
        self.editor = editor  # `n`/`e`: None is $EDITOR with the app suspended (taskedit.py)
        self.footer_for: frozenset[str] | None = None  # the actions applying at the last rebuild
        self.exit_note = ""  # printed by `hatchctl` when the control room closes
        if is_demo(project.root):  # the demo says what each task is about to do
            self.narration = dict(NARRATION)

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="top"):
            yield Static("", id="overview")
            with Horizontal(id="progress-row"):
                yield ProgressBar(total=1, show_eta=False, id="progress")
                yield Static("", id="progress-label")
            yield Static("", id="features")
            yield Static("", id="attention")
            yield Static("", id="nav-status")
            yield Input(id="task-filter")
            yield TaskTable(id="tasks", cursor_type="row", zebra_stripes=True)
        yield Static("", id="log-title")
        yield LogView(None, id="tail")
        yield FitFooter(drop=FOOTER_DROP, compact=True)

    def on_mount(self) -> None:
        self.title = f"hatchctl · {self.project.name}"
        table = self.query_one("#tasks", DataTable)
        for hidden in ("#task-filter", "#attention", "#nav-status", "#features"):
            self.query_one(hidden).display = False
        table.focus()
        self.refresh_data()
        self.set_interval(self.refresh_every, self._tick)

    def _dashboard_gone(self) -> bool:
        """The app is closing: its timer and workers may still call in after the dashboard's
        widgets are gone (a refresh then would raise NoMatches)."""
        return not self.is_running or not self.screen_stack or not self.query("#tasks")

    def _tick(self) -> None:
        """A refresh; the rows on screen are read first (their finished runs' last lines)."""
        if self._dashboard_gone():
            return
        self.source.in_view = self.query_one("#tasks", TaskTable).in_view()
        # every row's values, off screen too: what a filter, a search or the sort looks at
        self.source.want_lines = self.nav.wants_lines or self.nav.sort in CHANGING
        self.refresh_data()

    # -- data (worker thread) ---------------------------------------------------------------
    @work(thread=True, exclusive=True, group="snapshot")
    def refresh_data(self) -> None:
        try:
            if self.snapshot is None and (first := self.source.first()) is not None:
                self.call_from_thread(self.show, first)  # a big store: the first screenful now
            snap = self.source.load()
        except HatchError as exc:
            self.call_from_thread(self.notify, str(exc), severity="error")
            return
        if snap is not self.snapshot:  # the very one again: nothing changed, nothing to draw
            self.call_from_thread(self.show, snap)

    def show(self, snap: Snapshot) -> None:
        if self._dashboard_gone():
            return
        first = self.snapshot is None or (self.snapshot.partial and not snap.partial)
        if first and not self.is_headless:  # a process of its own (not a test's Pilot)
            self.call_after_refresh(freeze)  # the first screenful, then the whole store
        self.snapshot = snap
        if not snap.partial:  # what changed is told once every task is known
            self._notify_changes(snap)
        for event in snap.deliveries:
            self._notify_delivery(event)
        for screen in self.screen_stack[1:]:  # `m` in a drill-down: while its agent runs
            if isinstance(screen, DetailScreen):
                screen.set_live(self.can_message(screen.task_id), self.in_review(screen.task_id))
            if isinstance(screen, TimelineScreen) and snap.timeline is not None:
                screen.set_timeline(snap.timeline)
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
        text = Text.assemble(sup, "  ", (snap.project, "bold"), "  ", counts, no_wrap=True)
        self._update("#overview", text)
        bar = self.query_one("#progress", ProgressBar)
        bar.update(total=max(snap.total, 1), progress=snap.completed)
        self._update("#progress-label", Text(snap.progress_label()))
        self._show_features(snap)
        self._fill_table(snap, None if snap.partial else self.changed)

    def _follow_selection(self) -> None:
        if self._dashboard_gone():  # the app closes: a RowHighlighted may follow its widgets
            return
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
            label.update(title, layout=False)  # one line high: no layout of the screen
        if task_id != self.selected or path != log.path:
            self.selected = task_id
            log.open(path)
        applies = frozenset(a for a, check in APPLIES.items() if view is not None and check(view))
        if applies != self.footer_for:  # the footer is rebuilt only when other keys apply
            self.footer_for = applies
            self.refresh_bindings()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "tasks":
            self._follow_selection()
            if self.nav.search:
                self._show_nav()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "tasks":  # not a row of a drill-down's table
            self.action_drill()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action not in DASHBOARD_ACTIONS:
            return True
        if self.screen is not self.screen_stack[0]:
            return False
        if action in APPLIES:  # off, and out of the footer, where it does not apply
            view = self._current()
            return view is not None and APPLIES[action](view)
        if action == "dismiss":
            return bool(self.attention.items)
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


def freeze() -> None:
    """Every object alive now (modules, widgets, the rows as first read) leaves the cyclic
    garbage collector's generations: its collections then walk only what was made since.
    Rendering makes many short-lived objects, and with ~200 000 tracked objects each full
    collection held the UI thread, and the keys, for 100 ms and more (50 streaming agents: a
    fifth of the UI thread's samples). Reference counting still frees what is dropped (cyclic
    garbage made before is kept: a one-time amount). The youngest generation is collected every
    10 000 allocations instead of 700, so the older ones, counted in its collections, are
    collected ten times less often. Not in a test's process: it runs many apps."""
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def css_path() -> Path:
    return Path(__file__).with_name("hatch.tcss")
