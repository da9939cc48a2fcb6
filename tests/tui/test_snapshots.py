"""Snapshots of every control-room screen the dashboard snapshots (tests/tui/test_app.py) do not
show: each drill-down tab, the help of the dashboard and of the drill-down, the kill
confirmation, the message box (`m`) and the attention strip with an item of every kind. The
content is fixed: the store rows and the log of test_app's project, a fixed clock, fixed event
times, a committed diff, a written summary, a fixed terminal size."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input

from hatchctl.project import Project
from hatchctl.state.store import Store
from hatchctl.tui.app import HatchApp
from hatchctl.tui.logview import LogView
from hatchctl.tui.screens import ConfirmScreen, DetailScreen, HelpScreen, MessageScreen
from tests.conftest import git
from tests.tui.test_app import T0, app_for, fixed_project, settle

SPEC = """---
id: API-1
title: Task API-1
---
Add a /health endpoint that answers 200 with the build's version.

Acceptance: `curl localhost:8000/health` prints {"ok": true, "version": "1.2.3"}.
Shown as written, not as markup: `list[str]`, [b]not bold[/b], [/].
"""


def drill_project(tmp_path: Path) -> tuple[Project, Store]:
    """test_app's project, and for API-1 a committed change on its branch, a summary, a spec
    with a body, and events at fixed times."""
    project, store = fixed_project(tmp_path)
    root = project.root
    base = git(root, "rev-parse", "HEAD")
    git(root, "branch", "hatch/API-1")
    git(root, "worktree", "add", "--quiet", str(tmp_path / "wt"), "hatch/API-1")
    (tmp_path / "wt" / "health.py").write_text(
        'def health() -> dict[str, object]:\n    return {"ok": True, "version": "1.2.3"}\n'
    )
    (tmp_path / "wt" / "README.md").write_text("test repo\n\nGET /health: the build's version\n")
    git(tmp_path / "wt", "add", "-A")
    git(tmp_path / "wt", "commit", "--quiet", "-m", "API-1: /health")
    (root / "specs" / "API-1.md").write_text(SPEC)
    summary = {"task_id": "API-1", "status": "completed", "files": ["health.py", "README.md"]}
    (root / "m").write_text(json.dumps(summary))  # API-1's run: summary_path "m"
    with store.tx() as tx:
        tx.update_task("API-1", base_sha=base, branch="hatch/API-1")
        tx.event("prompt_pasted", task_id="API-1", run_id=1, data={"chars": 1834})
        tx.conn.execute("UPDATE events SET at = ? + id * 7", (T0 - 300,))
    return project, store


async def open_drill(pilot: Any, app: HatchApp) -> DetailScreen:
    await settle(pilot, app)
    await pilot.press("enter")
    for _ in range(200):  # until the tabs are filled and the log is read
        await pilot.pause(0.05)
        screen = app.screen
        if (
            isinstance(screen, DetailScreen)
            and screen.runs
            and screen.query_one("#logview", LogView).lines
        ):
            await pilot.pause(0.05)
            return screen
    raise AssertionError("the drill-down did not fill in")


@pytest.mark.parametrize("tab", ["log", "events", "summary", "diff", "spec"])
def test_drill_down_tab_snapshot(tmp_path: Path, snap_compare: Any, tab: str) -> None:
    project, store = drill_project(tmp_path)
    app = app_for(project, store)

    async def run_before(pilot: Any) -> None:
        screen = await open_drill(pilot, app)
        screen.action_tab(tab)
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)


@pytest.mark.parametrize("view", ["dashboard", "detail"])
def test_help_snapshot(tmp_path: Path, snap_compare: Any, view: str) -> None:
    project, store = fixed_project(tmp_path)
    app = app_for(project, store)

    async def run_before(pilot: Any) -> None:
        if view == "detail":
            await open_drill(pilot, app)
        else:
            await settle(pilot, app)
        await pilot.press("question_mark")
        await pilot.pause(0.1)
        assert isinstance(app.screen, HelpScreen) and app.screen.view == view

    assert snap_compare(app, terminal_size=(100, 32), run_before=run_before)


def test_kill_confirmation_snapshot(tmp_path: Path, snap_compare: Any) -> None:
    project, store = fixed_project(tmp_path)
    app = app_for(project, store, send=lambda kind, task_id, args=None: (True, "unused"))

    async def run_before(pilot: Any) -> None:
        await settle(pilot, app)
        await pilot.press("k")
        await pilot.pause(0.1)
        assert isinstance(app.screen, ConfirmScreen)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_message_box_snapshot(tmp_path: Path, snap_compare: Any) -> None:
    project, store = fixed_project(tmp_path)
    app = app_for(project, store, send=lambda kind, task_id, args=None: (True, "unused"))

    async def run_before(pilot: Any) -> None:
        await settle(pilot, app)
        await pilot.press("m", *"use the fixtures")
        await pilot.pause(0.1)
        assert isinstance(app.screen, MessageScreen)
        app.screen.query_one(Input).cursor_blink = False  # the cursor: hidden, not blinking

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_attention_strip_snapshot(tmp_path: Path, snap_compare: Any) -> None:
    """Every kind at once, the worst first: failed, waiting for input, stalled, blocked, the
    paused supervisor; and one whose condition has passed, dimmed, last."""
    project, store = fixed_project(tmp_path)
    with store.tx() as tx:
        for tid, window, state in (("API-2", "API-2.qa.i2.a1", "running"),):
            run = tx.insert_run(
                task_id=tid,
                role="qa",
                iteration=2,
                attempt=1,
                window_name=window,
                log_path=f".hatch/logs/qa/{window}.log",
                stop_path="s2",
                summary_path="m2",
                prompt_path="p2",
                started_at=T0 - 60,
            )
            tx.transition_run(run.id, "starting", state, running_at=T0 - 60)
            tx.update_run(run.id, waiting_since=T0 - 20, waiting_reason="a permission dialog")
        tx.transition_task("UI-2", "pending", "active", phase="factory", iteration=1)
        run = tx.insert_run(
            task_id="UI-2",
            role="factory",
            iteration=1,
            attempt=1,
            window_name="UI-2.factory.i1.a1",
            log_path=".hatch/logs/factory/UI-2.factory.i1.a1.log",
            stop_path="s3",
            summary_path="m3",
            prompt_path="p3",
            started_at=T0 - 900,
        )
        tx.transition_run(run.id, "starting", "running", running_at=T0 - 900)
        tx.transition_run(run.id, "running", "stalled", last_activity_at=T0 - 600)
        tx.set_meta("paused", "1")
        tx.set_meta("pause_reason", "disk_full")
    app = app_for(project, store)

    async def run_before(pilot: Any) -> None:
        await settle(pilot, app)
        with store.tx() as tx:  # UI-1 is no longer blocked: its item stays, dimmed
            tx.transition_task("UI-1", "blocked", "pending", last_error=None)
        app.refresh_data()
        for _ in range(100):
            await pilot.pause(0.05)
            if str(app.query_one("#tasks").get_cell("UI-1", "STATE")) == "pending":
                break
        await pilot.pause(0.05)

    assert snap_compare(app, terminal_size=(120, 24), run_before=run_before)
