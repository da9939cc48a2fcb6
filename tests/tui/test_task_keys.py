"""`n` and `e` in the control room, and the feature roll-ups over the table.

`n` asks for a new task in a form, then opens ``$EDITOR`` on its spec; `e` opens the selected
task's spec. Textual's headless driver (Pilot) cannot suspend the app (``can_suspend`` is False:
``App.suspend`` raises SuspendNotSupported), so the app takes the editor as a function and these
tests pass one that runs the ``$EDITOR`` command (a script written here) directly, without the
suspension. What the editor leaves is validated with the whole spec set before it is written."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input

from hatchctl.project import Project
from hatchctl.state.spec import load_specs, parse_spec
from hatchctl.state.store import Store
from hatchctl.tui.app import HatchApp
from hatchctl.tui.specedit import editor_argv
from hatchctl.tui.taskedit import FIELDS, ProblemsScreen, TaskFormScreen
from tests.tui.test_app import app_for, fixed_project, settle
from tests.tui.test_message import Sent, notes, recorder, until


def run_editor(path: Path) -> bool:
    """The editor as the app runs it, minus the suspension (Pilot's driver cannot suspend)."""
    return subprocess.run(editor_argv(path), check=False, timeout=10).returncode == 0


@pytest.fixture
def editor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$EDITOR: a script that puts `content` (if it exists) into the file it is given, else
    appends a body line to it. Returns the content file's path."""
    content = tmp_path / "content.md"
    script = tmp_path / "fake-editor"
    script.write_text(
        f'#!/bin/sh\nif [ -f "{content}" ]; then cat "{content}" > "$1"; '
        f"else printf 'Body from the editor.\\n' >> \"$1\"; fi\n"
    )
    script.chmod(0o755)
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", str(script))
    return content


def app_with_editor(project: Project, store: Store, **kw: object) -> HatchApp:
    sent: Sent = []
    return app_for(project, store, send=recorder(sent), editor=run_editor, **kw)


async def fill_form(pilot: Any, app: HatchApp, *fields: str, typed: int = 0) -> None:
    """`n`, the form's fields (the first ``typed`` typed, tab between them; the rest set: typing
    is slow), then enter."""
    await pilot.press("n")
    await until(pilot, lambda: isinstance(app.screen, TaskFormScreen), "the form")
    for n, value in enumerate(fields):
        if n < typed:
            await pilot.press(*value, "tab")
        else:
            app.screen.query_one(f"#form-{FIELDS[n][0]}", Input).value = value
    await pilot.press("enter")


def problems_text(app: HatchApp) -> str:
    return str(app.screen.query_one("#spec-problems").render())


async def test_n_creates_a_valid_spec_and_refuses_an_invalid_one(
    tmp_path: Path, editor: Path
) -> None:
    project, store = fixed_project(tmp_path)
    specs = project.specs_dir
    app = app_with_editor(project, store)
    async with app.run_test(size=(120, 32)) as pilot:
        await settle(pilot, app)
        await fill_form(pilot, app, "API-1", "taken")  # an id that exists: the form says so
        await until(
            pilot,
            lambda: "API-1 exists" in str(app.screen.query_one("#form-problems").render()),
            "refusal",
        )
        await pilot.press("escape")

        await fill_form(
            pilot, app, "NEW-1", "A task", "API-1, DB-1", "pytest -q", "calc", typed=True
        )
        await until(pilot, lambda: any("NEW-1.md written" in n for n in notes(app)), "written")
        path = specs / "NEW-1.md"
        spec = parse_spec(path.read_text(), path).spec
        assert spec is not None
        assert (spec.id, spec.title, spec.depends_on) == ("NEW-1", "A task", ["API-1", "DB-1"])
        assert (spec.acceptance, spec.feature, spec.body) == (
            "pytest -q",
            "calc",
            "Describe the task: what to build, where, and how to tell it is "
            "done.\nBody from the editor.",
        )
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert load_specs(specs).ok

        # an unknown key and an unknown dependency: refused with the problems, nothing written
        editor.write_text("---\nid: NEW-2\ntitle: T\nowner: me\ndepends_on: [GHOST]\n---\nb\n")
        await fill_form(pilot, app, "NEW-2", "T")
        await until(pilot, lambda: isinstance(app.screen, ProblemsScreen), "the problems")
        assert "unknown key 'owner'" in problems_text(app)
        await pilot.press("escape")
        await until(
            pilot, lambda: any("cancelled, nothing written" in n for n in notes(app)), "cancel"
        )
        assert not (specs / "NEW-2.md").exists()

        # a cycle through the new task (UI-2 depends on it): refused; fixed, `e` edits again
        ui2 = specs / "UI-2.md"
        ui2.write_text("---\nid: UI-2\ntitle: Task UI-2\ndepends_on: [NEW-3]\n---\nDo it.\n")
        editor.write_text("---\nid: NEW-3\ntitle: T\ndepends_on: [UI-2]\n---\nb\n")
        await fill_form(pilot, app, "NEW-3", "T")
        await until(pilot, lambda: isinstance(app.screen, ProblemsScreen), "the cycle")
        assert "dependency cycle: NEW-3 -> UI-2 -> NEW-3" in problems_text(app)
        assert not (specs / "NEW-3.md").exists()
        editor.write_text("---\nid: NEW-3\ntitle: T\n---\nb\n")
        await pilot.press("e")
        await until(pilot, lambda: (specs / "NEW-3.md").exists(), "the fixed spec written")
        assert load_specs(specs).ok
        assert sorted(p.name for p in specs.iterdir() if not p.name.endswith(".md")) == []


async def test_e_edits_the_spec_validated(tmp_path: Path, editor: Path) -> None:
    project, store = fixed_project(tmp_path)
    path = project.specs_dir / "API-2.md"
    app = app_with_editor(project, store)
    async with app.run_test(size=(120, 32)) as pilot:
        await settle(pilot, app)
        await pilot.press("down")  # API-2
        editor.write_text("---\nid: API-2\ntitle: Task API-2\ndepends_on: [API-2]\n---\nx\n")
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ProblemsScreen), "the problems")
        assert "task depends on itself" in problems_text(app)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ProblemsScreen), "cancelled")
        assert "depends_on" not in path.read_text()

        new = "---\nid: API-2\ntitle: Health endpoint\nacceptance: pytest -q\n---\nAdd it.\n"
        editor.write_text(new)
        await pilot.press("e")
        await until(pilot, lambda: path.read_text() == new, "the spec replaced")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

        before = path.stat().st_mtime_ns
        await pilot.press("e")  # the editor writes the same text: nothing is written
        await until(pilot, lambda: any("unchanged" in n for n in notes(app)), "unchanged")
        assert path.stat().st_mtime_ns == before


async def test_n_and_e_are_refused_read_only(tmp_path: Path, editor: Path) -> None:
    project, store = fixed_project(tmp_path)
    app = app_for(project, store, read_only=True, editor=run_editor)
    before = sorted(p.name for p in project.specs_dir.iterdir())
    async with app.run_test(size=(120, 32)) as pilot:
        await settle(pilot, app)
        assert not app.query_one("#features").display  # no task has a feature
        await pilot.press("n", "e")
        await until(pilot, lambda: len(notes(app)) >= 2, "two refusals")
        assert all("read-only" in n for n in notes(app)[-2:])
        assert app.screen is app.screen_stack[0]
    assert sorted(p.name for p in project.specs_dir.iterdir()) == before


async def test_the_feature_roll_ups_over_the_table(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    with store.tx() as tx:
        for tid, feature in (("API-1", "api"), ("API-2", "api"), ("DB-1", "db"), ("UI-1", "db")):
            tx.update_task(tid, feature=feature)
        tx.update_run(1, metrics={"wall_seconds": 720, "cost_usd": 0.42})
    app = app_for(project, store)
    async with app.run_test(size=(120, 32)) as pilot:
        await settle(pilot, app)
        panel = app.query_one("#features")
        assert panel.display
        assert str(panel.render()).splitlines() == [
            "api 0/2 done · 12m00s · $0.42",
            "db 0/2 done · 1 failed · 1 blocked",
        ]
