"""The help screen (`?`): the keys of each view, one phrase a line."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = {
    "dashboard": [
        ("enter", "open the task's drill-down (clears its ⚑ items)"),
        ("k", "kill the task's agent (asks first); the task fails"),
        ("r", "restart the task's agent (no strike)"),
        ("x", "retry a failed or blocked task"),
        ("a", "attach to the agent's tmux pane (detach: C-b d)"),
        ("m", "message the running agent (enter sends, esc cancels)"),
        ("A", "approve a task waiting for review: it merges"),
        ("R", "reject it with a note (enter sends); the factory gets it"),
        ("h", "hold / unhold the task (a running agent finishes first)"),
        ("H", "hold / unhold the task's whole feature"),
        ("n", "new task: a form, then its spec in $EDITOR, validated"),
        ("e", "edit the task's spec in $EDITOR, validated before it is saved"),
        ("t", "timeline: every task's runs over time"),
        ("p", "pause / resume starting new agents"),
        ("/", "search: jump to the tasks that match, hide none"),
        ("n / N", "while searching: next / previous match"),
        ("f", "filter: show only the tasks that match"),
        ("1-4", "only failed / active / waiting for input / blocked"),
        ("0", "every state again (as does the same digit)"),
        ("esc", "clear the filter, the state and the search"),
        ("s / S", "sort by the next column (STATE▲) / reverse it"),
        ("g / G", "first / last task (also home / end)"),
        ("d", "dismiss the task's ⚑ item (else the first one)"),
        ("tab", "move between the task list and the log tail"),
        (":", "command palette"),
        ("?", "this help"),
        ("q", "quit (agents keep running; `hatchctl down` stops them)"),
    ],
    "detail": [
        ("1-5", "Log, Events, Summary, Diff, Spec"),
        ("m", "message the running agent (enter sends, esc cancels)"),
        ("A / R", "in review: approve / reject with a note (Diff: 4)"),
        ("v", "diff: unified / side by side"),
        ("[ / ]", "diff: previous / next file (or pick it in the list)"),
        ("/", "log: search (regex); nothing is hidden"),
        ("n / N", "log: next / previous match"),
        ("f", "log: filter, show only matching lines (regex)"),
        ("!", "log: invert the filter"),
        ("w", "log: wrap long lines"),
        ("p / P", "log: previous / next attempt"),
        ("end", "log: follow new output"),
        ("ctrl+s", "log: save the shown lines to .hatch/exports/"),
        ("?", "this help"),
        ("esc / q", "back to the dashboard"),
    ],
    "timeline": [
        ("+ / -", "zoom in / out (the scale is over the chart)"),
        ("f", "fit: the whole night on one screen, following it"),
        ("← / →", "earlier / later; home: the start"),
        ("↑ / ↓", "previous / next lane (also page up / down)"),
        ("enter", "open the lane's task in the drill-down"),
        ("★", "a lane on the critical path of the dependencies"),
        ("█ █", "a factory / QA run; its end cell is its outcome"),
        ("▼ ↻ ◆ ┃", "strike, restart, merged, the task's end"),
        ("?", "this help"),
        ("esc / q", "back to the dashboard"),
    ],
}


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, view: str) -> None:
        super().__init__()
        self.view = view

    def compose(self) -> ComposeResult:
        rows = HELP[self.view]
        wide = max(len(key) for key, _ in rows)
        text = Text(no_wrap=True)  # one phrase a line: the dialog is as wide as the text
        for n, (key, what) in enumerate(rows):
            text.append(f"{key:>{wide}}  ", style="bold cyan")
            text.append(what + ("\n" if n < len(rows) - 1 else ""))
        with Vertical(id="help-dialog"):
            yield Static(Text(f"keys: {self.view}", style="bold"))
            yield Static(text, id="help-keys")

    def action_close(self) -> None:
        self.dismiss(None)
