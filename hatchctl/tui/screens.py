"""Screens: the drill-down (Log, Events, Summary, Diff, Spec), confirmation, a message to an
agent and a reviewer's note (`R`); help is in help.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from rich.syntax import Syntax
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import (
    DataTable,
    Header,
    Input,
    Label,
    Static,
    TabbedContent,
    TabPane,
    Tabs,
)

from hatchctl.errors import SummaryError
from hatchctl.project import Project
from hatchctl.runtime.gitrepo import Git
from hatchctl.state.diffparse import Diff, parse_diff
from hatchctl.state.rows import RunRow
from hatchctl.state.store import Store
from hatchctl.state.summary import read_agent_file
from hatchctl.tui.diffview import DiffLines, DiffView
from hatchctl.tui.footer import FitFooter
from hatchctl.tui.help import HelpScreen
from hatchctl.tui.logview import LogView
from hatchctl.tui.usage import usage_line

if TYPE_CHECKING:
    from hatchctl.tui.app import HatchApp

DIFF_BYTES = 2_000_000  # of `git diff` read for the Diff tab
DIFF_CUT = "the diff is over 2 MB: the rest is not shown"


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.question)
            yield Label("[b]y[/b] yes   [b]n[/b] no", classes="hint")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class AskLine(ModalScreen[str | None]):
    """One line of text from the user: enter gives it (never empty), esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    input_id = "ask"
    empty = "nothing was typed"

    def __init__(self, title: str, placeholder: str, verb: str) -> None:
        super().__init__()
        self.title_text, self.placeholder, self.verb = title, placeholder, verb

    def compose(self) -> ComposeResult:
        with Vertical(id="message-dialog"):
            yield Label(self.title_text)
            yield Input(placeholder=self.placeholder, id=self.input_id)
            yield Label(f"[b]enter[/b] {self.verb}   [b]esc[/b] cancel", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()  # not the dashboard's filter box
        if not event.value.strip():
            self.notify(self.empty, severity="warning")
            return
        self.dismiss(self.result_of(event.value))

    def result_of(self, text: str) -> str:
        return text

    def action_cancel(self) -> None:
        self.dismiss(None)


class MessageScreen(AskLine):
    """`m`: a line of text for a task's running agent (sent as typed)."""

    input_id = "message-text"
    empty = "the message is empty"

    def __init__(self, task_id: str, window: str) -> None:
        super().__init__(
            f"Message to the agent of [b]{task_id}[/b] ({window})", "what to tell it", "send"
        )
        self.task_id, self.window = task_id, window


class NoteScreen(AskLine):
    """`R`: why a task in review is rejected (the factory's next iteration gets it)."""

    input_id = "note"
    empty = "a rejection needs a note"

    def __init__(self, task_id: str) -> None:
        super().__init__(
            f"Reject [b]{task_id}[/b]: what should the factory change?",
            "the note (the factory's next iteration gets it)",
            "reject",
        )
        self.task_id = task_id

    def result_of(self, text: str) -> str:
        return text.strip()


class DetailScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,q", "back", "Back"),
        Binding("p", "attempt(-1)", "Prev attempt"),
        Binding("P", "attempt(1)", "Next attempt"),
        Binding("slash", "find", "Search log", show=False),
        Binding("n", "search(1)", "Next match", show=False),
        Binding("N", "search(-1)", "Prev match", show=False),
        Binding("m", "message", "Message"),
        Binding("A", "approve", "Approve"),
        Binding("R", "reject", "Reject"),
        Binding("question_mark", "help", "Help"),
        Binding("1", "tab('log')", show=False),
        Binding("2", "tab('events')", show=False),
        Binding("3", "tab('summary')", show=False),
        Binding("4", "tab('diff')", show=False),
        Binding("5", "tab('spec')", show=False),
    ]

    def __init__(self, project: Project, store: Store, task_id: str) -> None:
        super().__init__()
        self.project = project
        self.store = store
        self.task_id = task_id
        self.runs: list[RunRow] = []
        self.run_index = -1
        self.event_data: dict[str, str] = {}  # event id: its data, whole
        self.live = False  # the task has a running agent: `m` applies (set by the app)
        self.review = False  # the task waits for a person's review: `A`/`R` apply (the app)

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="log"):
            with TabPane("Log", id="log"):
                yield Static("", id="log-title")
                yield Static("", id="run-usage")
                yield LogView(None, id="logview")
            with TabPane("Events", id="events"):
                yield DataTable(id="events-table", cursor_type="row")
                with VerticalScroll(id="event-data"):
                    yield Static("", id="event-data-body")
            with TabPane("Summary", id="summary"), VerticalScroll():
                yield Static("", id="summary-body")
            with TabPane("Diff", id="diff"):
                yield DiffView(id="diff-view")
            with TabPane("Spec", id="spec"), VerticalScroll():
                yield Static("", id="spec-body")
        yield FitFooter(
            drop=("attempt", "search", "invert", "save", "wrap", "find", "filter", "step")
        )

    def on_mount(self) -> None:
        self.title = f"hatchctl · {self.task_id}"
        self._load()

    @work(thread=True, exclusive=True)
    def _load(self) -> None:
        runs = self.store.runs(self.task_id)
        self.app.call_from_thread(self._show_runs, runs)  # the log first: not after the diff
        events = self.store.events(self.task_id, limit=500)
        task = self.store.task(self.task_id)
        summary_text = "no summary yet"
        for run in reversed(runs):
            path = self.project.root / run.summary_path
            if path.exists():
                try:
                    doc = json.loads(read_agent_file(path, "summary"))
                    summary_text = f"{path.name}\n\n" + json.dumps(doc, indent=2, sort_keys=True)
                except (SummaryError, ValueError) as exc:
                    summary_text = f"{path.name}: unreadable ({exc})"
                break
        diff: Diff | str = "no diff yet (the worktree is created when the task starts)"
        if task is not None and task.base_sha and task.branch:
            try:  # parsed here, off the UI thread
                text = Git(self.project.root, 20).diff_text(task.base_sha, task.branch, DIFF_BYTES)
                diff = parse_diff(text, cut=DIFF_CUT if len(text) >= DIFF_BYTES else "")
            except Exception as exc:
                diff = f"(no diff: {exc})"
            if isinstance(diff, Diff) and not diff.files:
                diff = f"no changes on {task.branch} since {task.base_sha[:12]}"
        spec = ""
        if task is not None:
            try:
                spec = (self.project.root / task.spec_path).read_text(encoding="utf-8")
            except OSError:
                spec = (
                    Path(task.spec_path).read_text(encoding="utf-8")
                    if Path(task.spec_path).exists()
                    else ""
                )
        self.app.call_from_thread(self._show, events, summary_text, diff, spec)

    def _show_runs(self, runs: list[RunRow]) -> None:
        self.runs = runs
        self.run_index = len(runs) - 1
        self._show_run()

    def _show(
        self,
        events: list,  # type: ignore[type-arg]
        summary: str,
        diff: Diff | str,  # a message when there is no diff to show
        spec: str,
    ) -> None:
        table = self.query_one("#events-table", DataTable)
        table.clear(columns=True)
        table.add_columns("#", "at", "run", "kind", "from -> to", "data")
        self.event_data = {}
        for e in events:
            doc = e.to_json()
            data = json.dumps(e.data, sort_keys=True)
            self.event_data[str(e.id)] = json.dumps(e.data, sort_keys=True, indent=2)
            table.add_row(
                str(e.id),
                doc["at"][11:23],
                str(e.run_id or ""),
                e.kind,
                f"{e.from_state or ''} -> {e.to_state or ''}" if e.to_state else "",
                data if len(data) <= 60 else data[:59] + "…",
                key=str(e.id),
            )
        if events:
            table.move_cursor(row=len(events) - 1)
            self._show_event(str(events[-1].id))
        self.query_one("#summary-body", Static).update(  # Text: `[x]` is not markup here
            Syntax(summary, "json", word_wrap=True)
            if summary.strip().endswith("}")
            else Text(summary)
        )
        if isinstance(diff, Diff):
            self.query_one(DiffView).show(diff)
        else:
            self.query_one(DiffView).show(None, diff)
        self.query_one("#spec-body", Static).update(Text(spec or "spec not found"))

    def _show_run(self) -> None:
        title = self.query_one("#log-title", Static)
        view = self.query_one("#logview", LogView)
        if not self.runs:
            title.update("no agent has run for this task yet")
            self.query_one("#run-usage", Static).update("")
            view.open(None)
            return
        run = self.runs[self.run_index]
        title.update(
            f"{run.role} iteration {run.iteration} attempt {run.attempt} · {run.state}"
            f" · run {self.run_index + 1}/{len(self.runs)} · {run.log_path}"
        )
        self.query_one("#run-usage", Static).update(usage_line(run, self.runs))
        view.open(self.project.root / run.log_path)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "events-table" and event.row_key.value is not None:
            self._show_event(str(event.row_key.value))

    def _show_event(self, key: str) -> None:
        """The highlighted event's data, whole and wrapped (the table shows a preview)."""
        text = Text(f"event {key}\n", style="bold")
        text.append(self.event_data.get(key, ""), style="")
        self.query_one("#event-data-body", Static).update(text)

    def action_attempt(self, step: int) -> None:
        if self.runs:
            self.run_index = (self.run_index + step) % len(self.runs)
            self._show_run()

    def action_find(self) -> None:
        self.action_tab("log")
        self.query_one("#logview", LogView).action_find()

    def action_search(self, direction: int) -> None:
        self.query_one("#logview", LogView).action_search(direction)

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "diff":  # its keys (v, [, ]) are the diff view's: focus it
            self.query_one(DiffLines).focus()
        elif self.focused is not None and self.query_one(DiffView) in self.focused.ancestors:
            self.query_one(Tabs).focus()  # left on another tab: not a hidden widget

    def action_back(self) -> None:
        self.app.pop_screen()

    def set_live(self, live: bool, review: bool = False) -> None:
        if (live, review) != (self.live, self.review):
            self.live, self.review = live, review
            self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("approve", "reject"):
            return self.review
        return self.live if action == "message" else True

    def action_message(self) -> None:
        app: HatchApp = self.app  # type: ignore[assignment]
        app.message_agent(self.task_id)

    def action_approve(self) -> None:
        app: HatchApp = self.app  # type: ignore[assignment]
        app.approve(self.task_id)

    def action_reject(self) -> None:
        app: HatchApp = self.app  # type: ignore[assignment]
        app.reject(self.task_id)

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen("detail"))
