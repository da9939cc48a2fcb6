"""The control room's keys that act on a task's agent or on the project: kill, restart, retry,
message, approve or reject reviewed work, hold (a task or its whole feature), pause, attach, the
drill-down, the timeline and the help. Each one a command to the supervisor, sent in a worker
(HatchApp, app.py, sets the attributes declared here)."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable

from textual import work
from textual.app import SuspendNotSupported

from hatchctl.errors import HatchError
from hatchctl.hosts.attach import attach_argv
from hatchctl.project import Project
from hatchctl.state.rows import EventRow
from hatchctl.state.store import Store
from hatchctl.tui import keys
from hatchctl.tui.data import DataSource
from hatchctl.tui.help import HelpScreen
from hatchctl.tui.keys import APPLIES, ATTACHABLE, Sender
from hatchctl.tui.screens import ConfirmScreen, DetailScreen, MessageScreen, NoteScreen
from hatchctl.tui.taskedit import TaskKeys
from hatchctl.tui.timeline import TimelineScreen
from hatchctl.tui.views import TaskView


class AgentKeys(TaskKeys):
    """The keys on the selected task's agent and on the project (bound in keys.py)."""

    project: Project
    store: Store
    source: DataSource
    send: Sender | None
    read_only: bool
    refresh_data: Callable[[], object]  # a new snapshot now (HatchApp's worker)

    def _command(self, kind: str, task_id: str | None) -> None:
        if self.read_only or self.send is None:
            self.notify("read-only: actions are refused", severity="warning")
            return
        self._send(kind, task_id)

    @work(thread=True, group="commands")
    def _send(self, kind: str, task_id: str | None, args: dict[str, str] | None = None) -> None:
        assert self.send is not None
        try:
            ok, result = (
                self.send(kind, task_id) if args is None else self.send(kind, task_id, args)
            )
        except HatchError as exc:
            ok, result = False, str(exc)
        severity = "information" if ok else "error"
        self.call_from_thread(self.notify, result, severity=severity, markup=False)
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
        if self.attention.seen(task_id):  # looked at: its attention items go
            self._show_attention()
        screen = DetailScreen(self.project, self.store, task_id)
        screen.live, screen.review = self.can_message(task_id), self.in_review(task_id)
        self.push_screen(screen)

    def in_review(self, task_id: str) -> bool:
        """The task waits for a person's review: `A` and `R` apply."""
        view = self._view(task_id)
        return view is not None and APPLIES["approve"](view)

    def approve(self, task_id: str) -> None:
        """`A`: the reviewed work merges (the supervisor checks it is still in review)."""
        if not self.read_only and not self.in_review(task_id):
            self.notify(f"{task_id} is not waiting for review", severity="warning")
            return
        self._command("approve", task_id)

    def reject(self, task_id: str) -> None:
        """`R`: ask for a note, then reject the reviewed work with it."""
        if self.read_only or self.send is None:
            self.notify("read-only: actions are refused", severity="warning")
            return
        if not self.in_review(task_id):
            self.notify(f"{task_id} is not waiting for review", severity="warning")
            return

        def answered(note: str | None) -> None:
            if note and note.strip():
                self._send("reject", task_id, {"note": note.strip()})

        self.push_screen(NoteScreen(task_id), answered)

    def open_timeline(self) -> None:
        """`t`: the snapshots carry the timeline while it is open; one is loaded now."""
        self.source.want_timeline = True
        screen = TimelineScreen()
        self.push_screen(screen)
        if self.snapshot is not None and self.snapshot.timeline is not None:
            screen.set_timeline(self.snapshot.timeline)
        self.refresh_data()

    def can_message(self, task_id: str) -> bool:
        """The task has a running agent (with a pane) to send a message to."""
        view = self._view(task_id)
        return view is not None and APPLIES["message"](view)

    def _view(self, task_id: str) -> TaskView | None:
        return self.snapshot.by_id.get(task_id) if self.snapshot else None

    def message_agent(self, task_id: str) -> None:
        """`m`: ask for a line of text, then queue it for the task's running agent."""
        if self.read_only or self.send is None:
            self.notify("read-only: messages to agents are refused", severity="warning")
            return
        view = self._view(task_id)
        if view is None or view.run is None or not self.can_message(task_id):
            self.notify(f"{task_id} has no running agent to message", severity="warning")
            return

        def answered(text: str | None) -> None:
            if text and text.strip():
                self._send("send", task_id, {"text": text})

        self.push_screen(MessageScreen(task_id, view.run.window_name), answered)

    def _notify_delivery(self, event: EventRow) -> None:
        """A message's outcome (``delivered``/``delivery_failed``), from the event log."""
        who = event.task_id or "?"
        if event.kind == "delivered":
            how = event.data.get("how") or "confirmed"
            self.notify(f"{who}: message delivered ({how})", title="message", markup=False)
        else:
            why = event.data.get("error") or "no confirmation"
            self.notify(
                f"{who}: message not delivered: {why}",
                title="message",
                severity="error",
                markup=False,
            )

    def action_kill(self) -> None:
        if (view := self._current()) is not None:
            self.confirm_kill(view.task.id)

    def action_restart(self) -> None:
        if (view := self._current()) is not None:
            self._command("restart", view.task.id)

    def action_retry(self) -> None:
        if (view := self._current()) is not None:
            self._command("retry", view.task.id)

    def action_message(self) -> None:
        if (view := self._current()) is not None:
            self.message_agent(view.task.id)

    def action_approve(self) -> None:
        if (view := self._current()) is not None:
            self.approve(view.task.id)

    def action_reject(self) -> None:
        if (view := self._current()) is not None:
            self.reject(view.task.id)

    def action_hold(self) -> None:
        """`h`: hold the task, or unhold a held one."""
        if (view := self._current()) is not None:
            self._command("unhold" if view.task.held else "hold", view.task.id)

    def action_hold_feature(self) -> None:
        """`H`: hold the selected task's whole feature, or unhold it when all of it is held."""
        if (view := self._current()) is None or self.snapshot is None:
            return
        if self.read_only or self.send is None:
            self.notify("read-only: actions are refused", severity="warning")
            return
        plan = keys.feature_hold(view, self.snapshot.views)
        if isinstance(plan, str):
            self.notify(plan, severity="warning", markup=False)
            return
        self._send_feature(plan)

    @work(thread=True, group="commands")
    def _send_feature(self, plan: keys.FeatureHold) -> None:
        assert self.send is not None
        ok, result = keys.send_feature_hold(self.send, plan)
        severity = "information" if ok else "error"
        self.call_from_thread(self.notify, result, severity=severity, markup=False)
        self.call_from_thread(self.refresh_data)

    def action_timeline(self) -> None:
        self.open_timeline()

    def action_pause(self) -> None:
        paused = self.snapshot is not None and self.snapshot.paused
        self._command("resume" if paused else "pause", None)

    def action_attach(self) -> None:
        view = self._current()
        if view is None or view.run is None or view.run.state not in ATTACHABLE:
            self.notify("no live agent pane for this task", severity="warning")
            return
        try:  # a run on an SSH host: `ssh -t` to the host's tmux server (hosts/attach.py)
            argv = attach_argv(self.project, view.run, read_only=self.read_only)
        except HatchError as exc:
            self.notify(f"cannot attach: {exc}", severity="warning", markup=False)
            return
        try:
            with self.suspend():
                subprocess.run(argv, check=False, timeout=None)  # the user detaches when done
        except SuspendNotSupported:  # a browser session (`hatchctl serve`): no terminal to lend
            self.notify(f"attach needs a terminal: {shlex.join(argv)}", severity="warning")

    def action_drill(self) -> None:
        if (view := self._current()) is not None:
            self.open_detail(view.task.id)

    def action_help(self) -> None:
        self.push_screen(HelpScreen("dashboard"))
