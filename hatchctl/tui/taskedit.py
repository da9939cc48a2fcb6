"""`n` and `e`: a new task from a form and ``$EDITOR``, a task's spec edited in ``$EDITOR``.
The editor works on a private temporary copy; the result is validated with the whole spec set
(specedit.py, in a worker) before it is written, and refused with its problems otherwise (edit
again, or cancel: nothing is written). A running supervisor picks the file up by itself.

The editor is a replaceable function (``Editor``): by default it suspends the app and runs
``$VISUAL``/``$EDITOR``/``vi``; Textual's headless driver cannot suspend, so tests pass one that
runs the editor command directly."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from hatchctl.errors import HatchError, SpecError
from hatchctl.project import Project
from hatchctl.tui.dashboard import Dashboard
from hatchctl.tui.specedit import (
    Draft,
    check,
    editor_argv,
    form_problems,
    new_spec_text,
    read_spec,
    replace_spec,
    spec_file,
    write_new,
)

Editor = Callable[[Path], bool]  # edits the file in place; False: cancelled (nothing written)
FIELDS = (
    ("id", "id (e.g. API-3)"),
    ("title", "title"),
    ("depends", "depends on (comma separated ids)"),
    ("acceptance", "acceptance command (optional)"),
    ("feature", "feature (optional)"),
)


class TaskFormScreen(ModalScreen[dict[str, str] | None]):
    """`n`: the new task's id, title, dependencies, acceptance and feature; enter opens the
    editor on the spec made from them (tab: next field), esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, taken: set[str]) -> None:
        super().__init__()
        self.taken = taken

    def compose(self) -> ComposeResult:
        with Vertical(id="task-form"):
            yield Label("[b]New task[/b]: the body is written in $EDITOR next")
            for key, hint in FIELDS:
                yield Input(placeholder=hint, id=f"form-{key}")
            yield Static("", id="form-problems")
            yield Label(
                "[b]enter[/b] edit the body   [b]tab[/b] next   [b]esc[/b] cancel", classes="hint"
            )

    def values(self) -> dict[str, str]:
        return {key: self.query_one(f"#form-{key}", Input).value.strip() for key, _ in FIELDS}

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()  # not the dashboard's filter box
        v = self.values()
        problems = form_problems(v["id"], v["title"], v["depends"], self.taken)
        if problems:
            self.query_one("#form-problems", Static).update(Text("; ".join(problems), "red"))
            return
        self.dismiss(v)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ProblemsScreen(ModalScreen[bool]):
    """The edited spec was refused: its problems; `e` edits it again, esc cancels."""

    BINDINGS = [Binding("e", "answer(True)", "Edit again"), Binding("escape", "answer(False)")]

    def __init__(self, what: str, problems: list[str]) -> None:
        super().__init__()
        self.what = what
        self.problems = problems

    def compose(self) -> ComposeResult:
        with Vertical(id="problems-dialog"):
            yield Label(f"[b]{self.what}[/b] is not valid: nothing was written")
            yield Static(Text("\n".join(self.problems), style="red"), id="spec-problems")
            yield Label("[b]e[/b] edit again   [b]esc[/b] cancel", classes="hint")

    def action_answer(self, again: bool) -> None:
        self.dismiss(again)


@dataclass
class Session:
    """One `n` or `e`: the draft the editor works on and where an accepted one goes."""

    draft: Draft
    name: str  # the spec file's name (`n`: from the id; may follow an id changed in the editor)
    what: str  # for the messages: "new task API-3", "API-3's spec"
    keep_id: str | None = None  # `e`: the id may not change
    was: str | None = None  # `e`: the file's text before (unchanged: nothing written)
    target: Path | None = None  # `e`: the spec file


class TaskKeys(Dashboard):
    """The control room's `n` and `e` (HatchApp sets these attributes)."""

    project: Project
    read_only: bool
    editor: Editor | None

    def _specs(self) -> tuple[Path, str]:
        """The specs dir, and how it is named to the user."""
        specs = self.project.specs_dir
        try:
            return specs, str(specs.relative_to(self.project.root))
        except ValueError:
            return specs, str(specs)

    def action_new_task(self) -> None:
        """`n`: the next match while a search is on, else a new task."""
        if self.nav.search:
            self._jump(1)
            return
        if self.read_only:
            self.notify("read-only: new tasks are refused", severity="warning")
            return
        taken = {v.task.id for v in self.snapshot.views} if self.snapshot else set()
        self.push_screen(TaskFormScreen(taken), self._form_done)

    def _form_done(self, v: dict[str, str] | None) -> None:
        if v is None:
            return
        text = new_spec_text(v["id"], v["title"], v["depends"], v["acceptance"], v["feature"])
        session = Session(Draft(f"{v['id']}.md", text), f"{v['id']}.md", f"new task {v['id']}")
        self._edit(session)

    def action_edit_task(self) -> None:
        """`e`: the selected task's spec in the editor."""
        view = self._current()
        if view is None:
            return
        if self.read_only:
            self.notify("read-only: editing specs is refused", severity="warning")
            return
        specs, _ = self._specs()
        try:
            path = spec_file(self.project.root, specs, view.task.spec_path)
            was = read_spec(path)
        except SpecError as exc:
            self.notify(f"{view.task.id}: {exc}", severity="error", markup=False)
            return
        tid = view.task.id
        session = Session(Draft(path.name, was), path.name, f"{tid}'s spec", tid, was, path)
        self._edit(session)

    def _edit(self, session: Session) -> None:
        """The editor on the draft, then the check (in a worker)."""
        if not (self.editor or self.run_editor)(session.draft.path):
            session.draft.close()
            self.notify(f"{session.what}: cancelled, nothing written", markup=False)
            return
        self._check(session)

    def run_editor(self, path: Path) -> bool:
        """The default editor: the app suspended, ``$VISUAL``/``$EDITOR``/``vi`` on ``path``."""
        argv = editor_argv(path)
        try:
            with self.suspend():
                code = subprocess.run(argv, check=False, timeout=None).returncode  # the user's
        except SuspendNotSupported:
            self.notify("this terminal cannot hand over to an editor", severity="error")
            return False
        except OSError as exc:
            self.notify(f"cannot run {argv[0]}: {exc.strerror}", severity="error", markup=False)
            return False
        if code != 0:
            self.notify(f"{argv[0]} exited with {code}", severity="warning", markup=False)
        return code == 0

    @work(thread=True, group="specs")
    def _check(self, session: Session) -> None:
        """Validate the draft with the whole spec set; write it if it is accepted."""
        specs, shown = self._specs()
        try:
            text = session.draft.text()
            if session.was is not None and text == session.was:
                self.call_from_thread(self._finish, session, f"{session.what}: unchanged")
                return
            new = session.target is None
            result = check(specs, shown, text, name=session.name, new=new, keep_id=session.keep_id)
            if result.problems:
                self.call_from_thread(self._refused, session, result.problems)
                return
            if session.target is None:
                assert result.task_id is not None
                path = write_new(specs, result.task_id, text)
            else:
                assert session.was is not None
                replace_spec(session.target, text, session.was)
                path = session.target
        except HatchError as exc:
            self.call_from_thread(self._finish, session, str(exc), "error")
            return
        note = f"{shown}/{path.name} written: the supervisor picks it up"
        if result.existing:
            note += f" (the specs had {result.existing} problems before: `hatchctl validate`)"
        self.call_from_thread(self._finish, session, note)

    def _refused(self, session: Session, problems: list[str]) -> None:
        def answered(again: bool | None) -> None:
            if again:
                self._edit(session)
            else:
                self._finish(session, f"{session.what}: cancelled, nothing written")

        self.push_screen(ProblemsScreen(session.what, problems), answered)

    def _finish(self, session: Session, note: str, severity: str = "information") -> None:
        session.draft.close()
        self.notify(note, severity="error" if severity == "error" else "information", markup=False)
