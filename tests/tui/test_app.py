"""The control room, driven with Pilot: a snapshot of the dashboard on a fixed store, keys, the
drill-down, read-only mode. (`k` against a real supervisor: tests/tui/test_message.py, whose
supervisor test sends a message and a kill.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from textual.widgets import ProgressBar
from textual.widgets._progress_bar import Bar

from hatchctl.project import Project
from hatchctl.state.store import Store
from hatchctl.tui.app import HatchApp
from hatchctl.tui.data import DataSource
from hatchctl.tui.screens import ConfirmScreen, DetailScreen
from hatchctl.tui.views import sparkline
from tests.conftest import make_repo, write_spec

T0 = 1_795_000_000.0


def fixed_project(tmp_path: Path) -> tuple[Project, Store]:
    root = make_repo(tmp_path / "proj")
    (root / "hatch.toml").write_text('[project]\nname = "snap"\n')
    for tid in ("API-1", "API-2", "DB-1", "UI-1", "UI-2"):
        write_spec(root / "specs", tid)
    project = Project.find(root)
    store = project.open_store()
    with store.tx() as tx:
        for tid, prio in (("API-1", 90), ("API-2", 80), ("DB-1", 70), ("UI-1", 60), ("UI-2", 50)):
            tx.insert_task(tid, title=f"Task {tid}", priority=prio, spec_path=f"specs/{tid}.md")
        tx.transition_task(
            "API-1", "pending", "active", phase="factory", iteration=1, attempt=1, restarts=1
        )
        tx.transition_task("API-2", "pending", "active", phase="qa", iteration=2, strikes=1)
        tx.transition_task("DB-1", "pending", "active", phase="verify", iteration=1)
        tx.transition_task(
            "DB-1",
            "active",
            "failed",
            strikes=3,
            failure_class="agent",
            last_error="unverified_claim: claimed commit abc123 does not exist",
        )
        tx.transition_task("UI-1", "pending", "blocked", last_error="blocked by DB-1")
        run = tx.insert_run(
            task_id="API-1",
            role="factory",
            iteration=1,
            attempt=1,
            window_name="API-1.factory.i1.a1",
            log_path=".hatch/logs/factory/API-1.factory.i1.a1.log",
            stop_path="s",
            summary_path="m",
            prompt_path="p",
            started_at=T0 - 125,
        )
        tx.transition_run(
            run.id, "starting", "running", running_at=T0 - 125, last_activity_at=T0 - 4
        )
    log = root / ".hatch/logs/factory/API-1.factory.i1.a1.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(
        b"\x1b[36msim-agent\x1b[0m factory API-1 iteration 1 attempt 1: ok\r\n"
        + b"".join(b"step %d: \x1b[32mok\x1b[0m\r\n" % i for i in range(40))
    )
    return project, store


def app_for(project: Project, store: Store, **kw: Any) -> HatchApp:
    return HatchApp(
        project, store, source=DataSource(project, store, clock=lambda: T0), refresh_every=60, **kw
    )


async def settle(pilot: Any, app: HatchApp) -> None:
    """Until the first snapshot and the log tail are shown, laid out."""
    for _ in range(100):
        await pilot.pause(0.05)
        if app.snapshot is not None and app.query_one("#tail").lines:
            break
    # The progress bar rounds to whole cells only once it has a width: if the first snapshot
    # arrived before layout, show it again now (the app does the same on its next refresh).
    assert app.snapshot is not None
    app.show(app.snapshot)
    # the bar inside the progress bar keeps the half cell it drew before layout under load: set
    # its percentage again now that it has a width
    app.query_one(Bar).percentage = app.query_one("#progress", ProgressBar).percentage
    await pilot.wait_for_scheduled_animations()
    await pilot.pause(0.05)


def test_dashboard_snapshot(tmp_path: Path, snap_compare: Any) -> None:
    project, store = fixed_project(tmp_path)
    app = app_for(project, store)

    async def run_before(pilot: Any) -> None:
        await settle(pilot, app)

    assert snap_compare(app, terminal_size=(140, 32), run_before=run_before)


def test_dashboard_snapshot_80x24_sorted_filtered(tmp_path: Path, snap_compare: Any) -> None:
    """The attention strip, STATE sorted down, a text filter and its indicator, at 80x24."""
    project, store = fixed_project(tmp_path)
    app = app_for(project, store)

    async def run_before(pilot: Any) -> None:
        await settle(pilot, app)
        await pilot.press("s", "s", "s", "S")  # ID, TITLE, STATE; reversed
        await pilot.press("f", *"-1", "enter")
        await pilot.pause(0.05)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_dashboard_snapshot_160x45_state_filter_and_search(
    tmp_path: Path, snap_compare: Any
) -> None:
    """The attention strip, the active tasks sorted by STATE, a search's match highlighted."""
    project, store = fixed_project(tmp_path)
    app = app_for(project, store)

    async def run_before(pilot: Any) -> None:
        await settle(pilot, app)
        await pilot.press("2", "s", "s", "s", "s")  # ID, TITLE, ROLE, STATE
        await pilot.press("slash", *"api-2", "enter")
        await pilot.pause(0.05)

    assert snap_compare(app, terminal_size=(160, 45), run_before=run_before)


async def test_rows_states_and_log_tail(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    app = app_for(project, store)
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        table = app.query_one("#tasks")
        assert [str(k.value) for k in table.rows] == ["API-1", "API-2", "DB-1", "UI-1", "UI-2"]
        row = {c: str(table.get_cell("API-1", c)) for c in ("STATE", "RESTARTS", "RUNTIME", "IDLE")}
        assert row == {
            "STATE": "factory:running",
            "RESTARTS": "1/5",
            "RUNTIME": "2m",
            "IDLE": "4s",
        }
        assert str(table.get_cell("DB-1", "STRIKES")) == "3/3"
        tail = app.query_one("#tail")
        assert tail.lines[-1] == "step 39: ok"  # ANSI codes and CRs stripped for display
        await pilot.press("f")  # filter (`/` searches: it hides nothing)
        await pilot.press(*"UI", "enter")
        assert [str(k.value) for k in table.rows] == ["UI-1", "UI-2"]


async def test_read_only_refuses_actions(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    app = app_for(project, store, read_only=True)
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        await pilot.press("r")
        await pilot.pause(0.1)
        assert any("read-only" in str(n.message) for n in app._notifications)
        await pilot.press("k")
        await pilot.pause(0.1)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await pilot.pause(0.1)
        assert sum("read-only" in str(n.message) for n in app._notifications) == 2


async def test_drill_down_tabs(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    summary = project.root / "m"
    summary.write_text(json.dumps({"task_id": "API-1", "status": "completed"}))
    app = app_for(project, store)
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, DetailScreen)
        table = app.screen.query_one("#events-table")
        assert table.row_count >= 3
        assert "factory iteration 1 attempt 1" in str(app.screen.query_one("#log-title").render())
        await pilot.press("3")
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, DetailScreen)


def test_sparkline() -> None:
    assert sparkline([0, 0, 0], width=3) == "   "
    assert sparkline([1, 2, 4, 8], width=4) == "▁▂▄█"


async def test_command_palette_offers_task_actions(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    app = app_for(project, store, read_only=True)
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        await pilot.press("colon")
        await pilot.pause(0.2)
        await pilot.press(*"open API-2")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.5)
        assert isinstance(app.screen, DetailScreen) and app.screen.task_id == "API-2"
        await pilot.press("escape")
        await pilot.pause(0.1)
        await pilot.press("colon")
        await pilot.pause(0.2)
        await pilot.press(*"retry DB-1")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert any("read-only" in str(n.message) for n in app._notifications)


async def test_a_refresh_while_the_app_closes_does_nothing(tmp_path: Path) -> None:
    """The refresh timer and the snapshot worker may call in after the dashboard's widgets are
    removed (Textual closes screens before it stops the app's timers): CI once failed on that
    with NoMatches '#tasks'."""
    project, store = fixed_project(tmp_path)
    app = app_for(project, store)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        snap = app.snapshot
        assert snap is not None
        await app.query_one("#tasks").remove()
        app._tick()
        app.show(snap)
