"""Issue 9, one test per bug: the drill-down's tabs, keys and focus, the dashboard's numbers,
the layout at 80 columns, quitting, saving and the help (Pilot throughout)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from textual.widgets import DataTable, Input, ProgressBar, Static

from hatchctl.project import Project
from hatchctl.state.store import Store
from hatchctl.tui.app import HatchApp
from hatchctl.tui.data import DataSource
from hatchctl.tui.help import HELP, HelpScreen
from hatchctl.tui.logview import LogLines, LogView
from hatchctl.tui.screens import DetailScreen
from hatchctl.tui.views import Snapshot
from tests.tui.test_app import T0, app_for, fixed_project, settle


def add_run(
    store: Store, project: Project, task_id: str, attempt: int, end: str, text: bytes
) -> int:
    log = f".hatch/logs/factory/{task_id}.factory.i1.a{attempt}.log"
    with store.tx() as tx:
        run = tx.insert_run(
            task_id=task_id,
            role="factory",
            iteration=1,
            attempt=attempt,
            window_name=f"{task_id}.factory.i1.a{attempt}",
            log_path=log,
            stop_path="s",
            summary_path="m",
            prompt_path="p",
            started_at=T0 - 300 + attempt,
        )
        tx.transition_run(run.id, "starting", "running", running_at=T0 - 300 + attempt)
        tx.transition_run(run.id, "running", end)
    (project.root / log).parent.mkdir(parents=True, exist_ok=True)
    (project.root / log).write_bytes(text)
    return run.id


async def drill(pilot: Any, app: HatchApp) -> DetailScreen:
    await settle(pilot, app)
    await pilot.press("enter")
    for _ in range(60):
        await pilot.pause(0.05)
        if isinstance(app.screen, DetailScreen) and app.screen.runs:
            break
    assert isinstance(app.screen, DetailScreen)
    return app.screen


def body_of(screen: DetailScreen) -> LogLines:
    return screen.query_one("#logview", LogView).query_one(LogLines)


# -- 1. the Summary tab --------------------------------------------------------------------------
async def test_summary_tab_is_as_tall_as_the_screen(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    (project.root / "m").write_text(json.dumps({"task_id": "API-1", "notes": ["a"] * 20}))
    app = app_for(project, store)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await drill(pilot, app)
        await pilot.press("3")
        await pilot.pause(0.1)
        assert screen.query_one("TabPane#summary").size.height > 20


# -- 2. enter inside a drill-down ----------------------------------------------------------------
async def test_enter_in_a_drill_down_opens_no_second_one(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    app = app_for(project, store)
    async with app.run_test(size=(140, 32)) as pilot:
        await drill(pilot, app)
        await pilot.press("2")  # the events table: enter selects a row there
        await pilot.pause(0.1)
        app.screen.query_one("#events-table").focus()
        await pilot.press("enter")
        await pilot.pause(0.2)
        app.screen.query_one("TabbedContent Tabs").focus()
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert sum(isinstance(s, DetailScreen) for s in app.screen_stack) == 1
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert not any(isinstance(s, DetailScreen) for s in app.screen_stack)


# -- 3. / n N inside a drill-down ----------------------------------------------------------------
async def test_slash_in_a_drill_down_searches_the_log_and_n_jumps(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    app = app_for(project, store)
    async with app.run_test(size=(140, 32)) as pilot:
        screen = await drill(pilot, app)
        view = screen.query_one("#logview", LogView)
        for _ in range(60):
            await pilot.pause(0.05)
            if len(view.lines) == 41:
                break
        screen.query_one("TabbedContent Tabs").focus()  # not in the log
        await pilot.press("slash")
        await pilot.pause(0.05)
        assert not app.screen_stack[0].query_one("#task-filter", Input).display
        box = view.query_one("#log-filter", Input)
        assert box.display and box.has_focus
        await pilot.press(*"step 1", "enter")
        await pilot.pause(0.1)
        body = body_of(screen)
        assert len(body.lines) == 41  # nothing hidden
        assert body.lines[view.match_at] == "step 1: ok" and view.found == "match 1/11"
        first = body.scroll_y
        screen.query_one("TabbedContent Tabs").focus()  # n / N work from anywhere in the screen
        for _ in range(4):
            await pilot.press("n")
        await pilot.pause(0.1)
        assert body.lines[view.match_at] == "step 13: ok" and view.found == "match 5/11"
        assert body.scroll_y > first
        await pilot.press("N")
        await pilot.pause(0.1)
        assert body.lines[view.match_at] == "step 12: ok"
        row = body.row_of(view.match_at)
        assert body.scroll_y <= row < body.scroll_y + body.scrollable_content_region.height
        assert "match 4/11" in str(view.query_one("#log-badge", Static).render())


# -- 5. the dashboard's numbers --------------------------------------------------------------------
async def test_progress_counts_completed_tasks_only(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)  # 1 failed, 1 blocked, none completed
    app = app_for(project, store)
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        bar = app.query_one("#progress", ProgressBar)
        assert bar.progress == 0 and bar.total == 5
        label = str(app.query_one("#progress-label", Static).render())
        assert label == "0/5 completed · 1 failed · 1 blocked"


async def test_tail_title_follows_the_state(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    app = app_for(project, store)
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        title = app.query_one("#log-title", Static)
        assert "running" in str(title.render())
        run = store.runs("API-1")[0]
        with store.tx() as tx:
            tx.transition_run(run.id, "running", "killed")
            tx.transition_task("API-1", "active", "failed", last_error="killed: by the user")
        app.refresh_data()
        for _ in range(40):
            await pilot.pause(0.05)
            if "killed" in str(title.render()):
                break
        assert "run killed · failed" in str(title.render())
        assert "running" not in str(title.render())


async def test_failed_row_shows_why_not_the_last_line(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    with store.tx() as tx:
        tx.transition_task("API-2", "active", "failed", last_error="no_summary: none written")
    add_run(store, project, "API-2", 1, "failed", b"acceptance passed, all good\r\n")
    app = app_for(project, store)
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        table = app.query_one("#tasks", DataTable)
        assert str(table.get_cell("API-2", "LAST LINE")).startswith("no_summary: none written")
        assert str(table.get_cell("API-1", "TITLE")) == "Task API-1"


async def test_event_data_is_shown_whole(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    long = "x" * 300 + " THE END"
    with store.tx() as tx:
        tx.event("note", task_id="API-1", data={"detail": long})
    app = app_for(project, store)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await drill(pilot, app)
        await pilot.press("2")
        await pilot.pause(0.2)
        body = screen.query_one("#event-data-body", Static)
        assert long in str(body.render())
        assert body.size.height >= 300 // 100  # wrapped, not cut


async def test_a_task_waiting_to_retry_counts_down(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    with store.tx() as tx:
        tx.update_task("API-2", phase="backoff", next_retry_at=T0 + 12)
    app = app_for(project, store)
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        assert str(app.query_one("#tasks", DataTable).get_cell("API-2", "STATE")) == "retry in 12s"


class WithSupervisor(DataSource):
    def load(self) -> Snapshot:
        snap = super().load()
        snap.supervisor_pid = 4194301
        return snap


async def test_80_columns_drop_columns_never_the_pid_or_the_state(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    source = WithSupervisor(project, store, clock=lambda: T0)
    app = HatchApp(project, store, source=source, refresh_every=60)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        overview = app.query_one("#overview", Static)
        text = str(overview.render())
        assert text.startswith("supervisor pid 4194301")
        table = app.query_one("#tasks", DataTable)
        names = [str(c.label) for c in table.columns.values()]
        assert {"ID", "STATE", "LAST LINE"} <= set(names) and "ACTIVITY" not in names
        assert sum(c.get_render_width(table) for c in table.columns.values()) <= table.size.width
        assert str(table.get_cell("DB-1", "STATE")) == "failed"


# -- 6. keys ----------------------------------------------------------------------------------------
async def test_q_says_what_keeps_running(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    app = HatchApp(
        project, store, source=WithSupervisor(project, store, clock=lambda: T0), refresh_every=60
    )
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        await pilot.press("q")
        await pilot.pause(0.1)
    assert "pid 4194301" in app.exit_note and "1 agent(s)" in app.exit_note
    assert "hatchctl down" in app.exit_note


async def test_q_in_a_drill_down_closes_it(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    app = app_for(project, store)
    async with app.run_test(size=(140, 32)) as pilot:
        await drill(pilot, app)
        await pilot.press("q")
        await pilot.pause(0.1)
        assert app.is_running and not isinstance(app.screen, DetailScreen)


async def test_ctrl_s_saves_into_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, store = fixed_project(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    app = app_for(project, store)
    async with app.run_test(size=(140, 32)) as pilot:
        screen = await drill(pilot, app)
        screen.query_one("#logview", LogView).query_one(LogLines).focus()
        await pilot.press("ctrl+s")
        saved: list[Path] = []
        for _ in range(40):
            await pilot.pause(0.05)
            saved = list((project.root / ".hatch/exports").glob("*.txt"))
            if saved:
                break
        assert len(saved) == 1 and "step 39: ok" in saved[0].read_text()
        assert os.listdir(elsewhere) == []
        assert any(str(saved[0]) in str(n.message) for n in app._notifications)


@pytest.mark.parametrize("view", ["dashboard", "detail"])
async def test_help_keeps_each_phrase_on_one_line(tmp_path: Path, view: str) -> None:
    project, store = fixed_project(tmp_path)
    app = app_for(project, store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        app.push_screen(HelpScreen(view))
        await pilot.pause(0.1)
        keys = app.screen.query_one("#help-keys", Static)
        assert keys.size.height == len(HELP[view])
        widest = (
            max(cell_len(k) for k, _ in HELP[view]) + 2 + max(cell_len(w) for _, w in HELP[view])
        )
        assert keys.size.width >= widest


async def test_drill_down_help_lists_every_footer_key(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    app = app_for(project, store)
    async with app.run_test(size=(140, 32)) as pilot:
        screen = await drill(pilot, app)
        helped = {k.strip().lower() for key, _ in HELP["detail"] for k in key.split(" / ")}
        helped |= {"escape" if k == "esc" else k for k in helped}
        helped |= {"1", "2", "3", "4", "5"}
        for focus in ("TabbedContent Tabs", "#events-table", "LogLines"):
            screen.query_one(focus).focus()
            await pilot.pause(0.05)
            shown = {
                app.get_key_display(b.binding)
                for b in screen.active_bindings.values()
                if b.binding.show and b.enabled and b.binding.key != "ctrl+p"
            }
            missing = {k for k in shown if k.lower().replace("^", "ctrl+") not in helped}
            assert not missing, (focus, missing)


async def test_home_and_end_move_through_the_table(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    app = app_for(project, store)
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        table = app.query_one("#tasks", DataTable)
        await pilot.press("end")
        assert table.cursor_row == 4
        await pilot.press("home")
        assert table.cursor_row == 0


async def test_p_and_shift_p_cycle_attempts_both_ways(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    for attempt in (2, 3):
        add_run(store, project, "API-1", attempt, "crashed", b"attempt %d\r\n" % attempt)
    app = app_for(project, store)
    async with app.run_test(size=(140, 32)) as pilot:
        screen = await drill(pilot, app)
        assert len(screen.runs) == 3 and screen.run_index == 2
        await pilot.press("p")
        assert screen.run_index == 1
        await pilot.press("P")
        await pilot.press("P")
        assert screen.run_index == 0  # wraps around
        assert "run 1/3" in str(screen.query_one("#log-title", Static).render())
