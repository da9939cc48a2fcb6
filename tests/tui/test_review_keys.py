"""`A`, `R` and `h` in the control room: a task waiting for review (active, phase ``review``) is
in the attention strip and reads `review` in the table; `A` approves it and `R` rejects it with a
note typed in a box (never empty; esc cancels), from the dashboard and from the drill-down, whose
Diff tab shows the branch's change; `h` holds or unholds the selected task (held ones read
`pending·held`); all three are refused read-only. Sent through a recording sender."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import TabbedContent

from hatchctl.project import Project
from hatchctl.state.store import Store
from hatchctl.tui.diffview import DiffView
from hatchctl.tui.screens import DetailScreen, NoteScreen
from tests.tui.test_app import app_for, settle
from tests.tui.test_message import Sent, notes, recorder, until
from tests.tui.test_snapshots import drill_project


def review_project(tmp_path: Path) -> tuple[Project, Store]:
    """The drill-down project (API-1's branch holds a commit), with API-2 waiting for review on
    that branch and UI-2 held."""
    project, store = drill_project(tmp_path)
    api1 = store.task("API-1")
    assert api1 is not None
    with store.tx() as tx:
        tx.update_task("API-2", phase="review", base_sha=api1.base_sha, branch=api1.branch)
        tx.update_task("UI-2", held=1)
    return project, store


def cell(app: object, task_id: str, column: str) -> str:
    return str(app.query_one("#tasks").get_cell(task_id, column))  # type: ignore[attr-defined]


async def test_review_keys_from_the_dashboard_and_the_drill_down(tmp_path: Path) -> None:
    project, store = review_project(tmp_path)
    sent: Sent = []
    app = app_for(project, store, send=recorder(sent))
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        assert cell(app, "API-2", "STATE") == "review"
        assert cell(app, "UI-2", "STATE") == "pending·held"
        assert "API-2 waiting for review" in str(app.query_one("#attention").render())

        await pilot.press("A")  # API-1 is not in review: A does not apply
        await pilot.press("down", "A")
        await until(pilot, lambda: bool(sent), "the approval")
        assert sent == [("approve", "API-2", None)]

        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, NoteScreen), "the note box")
        await pilot.press("enter")  # an empty note is refused, the box stays
        await until(pilot, lambda: "a rejection needs a note" in notes(app), "the refusal")
        assert isinstance(app.screen, NoteScreen)
        await pilot.press(*"add a test", "enter")
        await until(pilot, lambda: len(sent) == 2, "the rejection")
        assert sent[1] == ("reject", "API-2", {"note": "add a test"})
        await pilot.press("R", *"never mind", "escape")  # esc cancels: nothing is sent
        await until(pilot, lambda: not isinstance(app.screen, NoteScreen), "the box closed")

        await pilot.press("enter")  # the drill-down: the diff, then A and R there too
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), "the drill-down")
        await pilot.press("4")
        screen = app.screen
        assert screen.query_one(TabbedContent).active == "diff"
        view = screen.query_one(DiffView)
        await until(pilot, lambda: "health.py" in [f.path for f in view.diff.files], "diff")
        await pilot.press("A")
        await until(pilot, lambda: len(sent) == 3, "the approval from the drill-down")
        await pilot.press("R", *"rename it", "enter")
        await until(pilot, lambda: len(sent) == 4, "the rejection from the drill-down")
        assert sent[2:] == [("approve", "API-2", None), ("reject", "API-2", {"note": "rename it"})]
        assert app.screen is screen


async def test_h_holds_and_unholds(tmp_path: Path) -> None:
    project, store = review_project(tmp_path)
    sent: Sent = []
    app = app_for(project, store, send=recorder(sent))
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        await pilot.press("h")  # API-1, not held
        await pilot.press("end", "h")  # UI-2, held
        await pilot.press("up", "up", "h")  # DB-1 failed: nothing to hold
        await until(pilot, lambda: len(sent) == 2, "two commands")
        await pilot.pause(0.1)
        assert sent == [("hold", "API-1", None), ("unhold", "UI-2", None)]


async def test_review_and_hold_keys_are_refused_read_only(tmp_path: Path) -> None:
    project, store = review_project(tmp_path)
    app = app_for(project, store, read_only=True)
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        await pilot.press("down", "A", "R", "h")
        await until(pilot, lambda: len(notes(app)) >= 3, "three refusals")
        assert all("read-only" in n for n in notes(app)[-3:])
        assert not isinstance(app.screen, NoteScreen)
