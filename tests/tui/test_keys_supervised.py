"""Issue 12's keys against a real supervisor (a `hatchctl run` process, real tmux and git, the
simulated agent), driven with Pilot through the control room's real sender:

- `h` holds a pending task (a lower-priority one starts instead, and completes, while it
  waits), `p` resumes the paused project, `R` rejects reviewed work with a note that reaches the
  factory's next prompt, `A` approves the next round, which merges; `e` edits the held task's
  spec and `h` unholds it: its run follows the edited spec.
- `n` creates a task while the supervisor runs; it is picked up and completes.

Both run against one supervisor (one test: a supervisor, its tmux server and a control room
started once, not twice); `n` comes last, once the other tasks are done.

The other tests of these keys use a recording sender (test_review_keys.py, test_task_keys.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from hatchctl.cmds.ui import sender_for
from hatchctl.project import Project
from hatchctl.tui.app import HatchApp
from hatchctl.tui.screens import NoteScreen
from hatchctl.tui.table import TaskTable
from tests.conftest import git
from tests.integration.conftest import Projects, SupervisorProcess, spec_text
from tests.tui.test_app import app_for, fixed_project
from tests.tui.test_feature_keys import select
from tests.tui.test_message import notes
from tests.tui.test_task_keys import fill_form

SIZE = (120, 30)
BOUND = 60.0  # seconds: a bound on each wait for the supervisor and its agents, never reached


def busy(app: HatchApp, *groups: str) -> bool:
    """A worker of these groups is queued or running."""
    return any(w.group in groups for w in app.workers)


async def wait(pilot: Any, condition: Callable[[], object], what: str) -> None:
    """Until ``condition``, the control room refreshed every 0.2 s meanwhile. The apps here
    have no refresh timer (refresh_every is an hour), so that no refresh runs while the app
    closes: a snapshot shown then moves the table's cursor, and the RowHighlighted it posts
    finds the log view gone (fixed: see the last test; these tests still avoid depending on it)."""
    app = pilot.app
    deadline = time.monotonic() + BOUND
    polls = 0
    while time.monotonic() < deadline:
        if polls % 4 == 0 and not busy(app, "snapshot"):
            app.refresh_data()
        polls += 1
        await pilot.pause(0.05)
        if condition():
            return
    raise AssertionError(f"timed out waiting for {what}")


async def quiesce(pilot: Any) -> None:
    """No command, spec or snapshot worker is left, and the messages they posted are handled
    (twice in a row: a command's worker asks for a refresh as it ends)."""
    deadline = time.monotonic() + BOUND
    quiet = 0
    while quiet < 2:
        assert time.monotonic() < deadline, "the control room's workers did not finish"
        await pilot.pause(0.05)
        quiet = 0 if busy(pilot.app, "commands", "specs", "snapshot") else quiet + 1


@pytest.fixture
def projects(tmp_path: Path) -> Iterator[Projects]:
    ps = Projects(tmp_path)
    yield ps
    ps.cleanup()


class Running:
    """A project's supervisor (`hatchctl run`, a child process) and a store to poll; `stop`
    closes the store and stops the supervisor."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.sup = SupervisorProcess(project)
        try:
            self.sup.wait_running(timeout=BOUND)
        except BaseException:
            self.sup.kill()
            raise
        self.store = project.open_store()

    def task(self, task_id: str) -> dict[str, Any]:
        t = self.store.task(task_id)  # None until the supervisor has read the specs
        if t is None:
            return {}
        return {"state": t.state, "phase": t.phase, "iteration": t.iteration, "held": t.held}

    def on_integration(self, rel: str) -> str:
        branch = self.project.config.project.integration_branch
        return git(self.project.root, "show", f"{branch}:{rel}")

    def app(self, **kw: Any) -> HatchApp:
        return HatchApp(
            self.project, self.store, send=sender_for(self.project), refresh_every=3600, **kw
        )

    def stop(self) -> None:
        try:
            self.store.close()
            # SIGTERM: it finishes its pass and exits, as `hatchctl down` asks (without
            # starting a CLI's interpreter, ~0.2 CPU-s)
            if self.sup.proc.poll() is None:
                self.sup.proc.terminate()
                self.sup.wait(timeout=30)
        finally:
            self.sup.kill()


def shown(app: HatchApp, task_id: str) -> Any:
    """The task as the control room shows it (its last snapshot), or None."""
    view = app.snapshot.by_id.get(task_id) if app.snapshot else None
    return view.task if view else None


def shown_held(app: HatchApp, task_id: str) -> bool:
    task = shown(app, task_id)
    return task is not None and bool(task.held)


async def test_h_p_R_A_e_n_against_a_real_supervisor(projects: Projects) -> None:
    """`h`, `p`, `R`, `A`, `e`, then `n` (a task created while the supervisor runs is picked up
    and completes), against one real supervisor."""
    p = projects.make(
        {
            "REV": {"priority": 90, "review": "human", "sim": {"files": {"rev.txt": "rev\n"}}},
            "HELD": {"priority": 50, "sim": {"files": {"held.txt": "held\n"}}},
            "LOW": {"priority": 10, "sim": {"files": {"low.txt": "low\n"}}},
        },
        config={"limits": {"max_active": 1}},
    )
    store = p.open_store()
    with store.tx() as tx:  # nothing starts until `p`: HELD is held before it could start
        tx.set_meta("paused", "1")
        tx.set_meta("pause_reason", "paused by user")
    store.close()
    new_spec = spec_text(
        "HELD", priority=50, sim={"files": {"held.txt": "edited\n"}}, body="Edited body."
    )

    def editor(path: Path) -> bool:  # what a person leaves in $EDITOR
        if path.name == "HELD.md":  # `e`: the edited spec
            path.write_text(new_spec)
            return True
        # `n`: the form's front matter, a sim script and a body added
        text = path.read_text()
        head = text.split("\n---\n", 1)[0]
        path.write_text(f'{head}\nsim: {{"files": {{"n.txt": "n\\n"}}}}\n---\nMade with n.\n')
        return True

    run = Running(p)
    try:
        app = run.app(editor=editor)
        async with app.run_test(size=SIZE) as pilot:
            await wait(pilot, lambda: app.snapshot is not None and app.snapshot.paused, "paused")
            await select(pilot, app, "HELD")
            await pilot.press("h")
            await wait(pilot, lambda: run.task("HELD").get("held") == 1, "HELD held")
            await wait(pilot, lambda: shown_held(app, "HELD"), "HELD shown held")
            await pilot.press("p")  # resume: REV starts (max_active = 1), HELD waits
            await wait(pilot, lambda: run.store.meta("paused") != "1", "resumed")

            await wait(pilot, lambda: app.in_review("REV"), "REV in review")
            # REV in review holds no agent slot: LOW starts although HELD ranks above it
            await wait(pilot, lambda: run.task("LOW").get("state") == "completed", "LOW done")
            assert run.task("HELD") == {
                "state": "pending",
                "phase": None,
                "iteration": 0,
                "held": 1,
            }
            assert run.store.runs("HELD") == []

            await select(pilot, app, "REV")
            await pilot.press("R")
            await wait(pilot, lambda: isinstance(app.screen, NoteScreen), "the note box")
            await pilot.press(*"call it rev2", "enter")
            await wait(pilot, lambda: run.task("REV").get("iteration") == 2, "REV rejected")
            prompt = p.paths.prompt_file("REV", "factory", 2, 1)
            await wait(pilot, prompt.exists, "the factory's second prompt")
            assert "call it rev2" in prompt.read_text()  # the note reached the factory

            def round_two() -> bool:
                view = shown(app, "REV")
                return app.in_review("REV") and view is not None and view.iteration == 2

            await wait(pilot, round_two, "REV in review again")
            await select(pilot, app, "REV")
            await pilot.press("A")
            await wait(pilot, lambda: run.task("REV").get("state") == "completed", "REV merged")
            assert run.on_integration("rev.txt") == "rev"
            assert run.on_integration("low.txt") == "low"
            kinds = [e.kind for e in run.store.events("REV")]
            assert kinds.count("review_waiting") == 2
            assert "review_rejected" in kinds and "review_approved" in kinds

            # `e` on the held (pending) task: the supervisor takes the edited spec
            digest = run.store.task("HELD").spec_digest  # type: ignore[union-attr]
            await select(pilot, app, "HELD")
            await pilot.press("e")
            await wait(pilot, lambda: p.specs_dir.joinpath("HELD.md").read_text() == new_spec, "e")

            def spec_taken() -> bool:
                task = run.store.task("HELD")
                return task is not None and task.spec_digest != digest

            await wait(pilot, spec_taken, "the edited spec synced")
            assert run.store.runs("HELD") == []  # still held: not started
            await wait(pilot, lambda: shown_held(app, "HELD"), "HELD shown held")
            await pilot.press("h")  # unhold: it runs the edited spec
            await wait(pilot, lambda: run.task("HELD").get("state") == "completed", "HELD done")
            assert run.on_integration("held.txt") == "edited"
            assert "Edited body." in p.paths.prompt_file("HELD", "factory", 1, 1).read_text()

            # `n` while the supervisor runs: the new task is picked up and completes
            await fill_form(pilot, app, "NEW-1", "Made in the control room", "LOW", "", "ui")
            await wait(pilot, lambda: any("NEW-1.md written" in n for n in notes(app)), "n")
            await wait(
                pilot,
                lambda: run.task("NEW-1").get("state") == "completed",
                "NEW-1 picked up and completed",
            )
            await wait(pilot, lambda: shown(app, "NEW-1") is not None, "NEW-1 shown")
            await quiesce(pilot)
        shown_notes = notes(app)  # each key's result, as the supervisor answered it
        for note in (
            "held HELD",
            "resumed",
            "rejected REV: the factory starts iteration 2 with the note",
            "approved REV: merging",
            "specs/HELD.md written: the supervisor picks it up",
            "unheld HELD",
        ):
            assert note in shown_notes, shown_notes
        task = run.store.task("NEW-1")
        assert task is not None and task.title == "Made in the control room"
        assert task.depends_on == ["LOW"] and task.feature == "ui"
        assert run.on_integration("n.txt") == "n"
        assert "Made with n." in p.paths.prompt_file("NEW-1", "factory", 1, 1).read_text()
    finally:
        run.stop()


async def test_a_row_highlighted_while_the_app_closes_does_nothing(tmp_path: Path) -> None:
    """Found here with a refresh timer running: a snapshot shown just before the app closed
    moved the table's cursor; Textual handled the RowHighlighted after the dashboard's widgets
    were removed, and `_follow_selection` raised NoMatches '#tail' (its `_current` already
    returned None then). This replays that order: it now does nothing."""
    project, store = fixed_project(tmp_path)
    app = app_for(project, store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.query_one("#tasks", TaskTable)
        event = DataTable.RowHighlighted(table, 0, RowKey("API-1"))
        await app.query_one("#tail").remove()
        await table.remove()
        app.on_data_table_row_highlighted(event)
