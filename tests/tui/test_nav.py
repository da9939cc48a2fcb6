"""Issues 9 and 8: k9s-grade navigation in the control room (sort, quick filters and their
indicator, a search that jumps without hiding, columns dropped rather than cut at 80x24), the
attention strip, and the run's metrics in the drill-down. Pilot on a real store throughout."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from textual.widgets import Input, Static

from hatchctl.tui.app import HatchApp
from hatchctl.tui.help import HELP
from hatchctl.tui.screens import DetailScreen
from hatchctl.tui.table import MATCH_STYLE, TaskTable
from tests.conftest import write_spec
from tests.tui.test_app import T0, app_for, fixed_project, settle
from tests.tui.test_fixes import WithSupervisor, add_run

ALL = ["API-1", "API-2", "DB-1", "UI-1", "UI-2"]


async def until(pilot: Any, what: str, check: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait for a condition, with a bound (never a sleep that hopes)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.02)


def table_of(app: HatchApp) -> TaskTable:
    return app.query_one("#tasks", TaskTable)


def labels(app: HatchApp) -> list[str]:
    return [c.label.plain for c in table_of(app).columns.values()]


def shown(app: HatchApp, widget: str) -> str:
    static = app.query_one(widget, Static)
    return str(static.render()) if static.display else ""


async def test_sort_keeps_its_order_and_the_cursor_through_live_updates(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    app = app_for(project, store)
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        table = table_of(app)
        await pilot.press("s")
        assert "ID▲" in labels(app)
        await pilot.press("s", "s", "s")  # ID, TITLE, ROLE, STATE
        assert "STATE▲" in labels(app) and "ID" in labels(app)
        # the tasks that need a person first; ties keep the queue's order
        assert table.order == ["DB-1", "UI-1", "API-1", "API-2", "UI-2"]
        assert table.current == "API-1"  # the cursor kept its task
        await pilot.press("down")
        assert table.current == "API-2"
        untouched = table.get_cell("UI-2", "TITLE")
        columns = dict(table.columns)
        with store.tx() as tx:  # API-2 fails: it moves up, the cursor goes with it
            tx.transition_task("API-2", "active", "failed", last_error="no_summary: none")
        app.refresh_data()
        await until(pilot, "the new order", lambda: table.order[0] == "API-2")
        assert table.order == ["API-2", "DB-1", "UI-1", "API-1", "UI-2"]  # ties: queue order
        assert table.current == "API-2" and table.cursor_row == 0
        # a diff, not a rebuild: the same columns, an unchanged row's cells left alone
        assert dict(table.columns) == columns
        assert all(a is b for a, b in zip(table.columns.values(), columns.values(), strict=True))
        assert table.get_cell("UI-2", "TITLE") is untouched
        await pilot.press("S")
        assert "STATE▼" in labels(app)
        assert table.order == ["UI-2", "API-1", "UI-1", "API-2", "DB-1"]
        assert table.current == "API-2"
        for _ in range(20):  # back to the queue's order after the last column
            if table.order == ALL and not any(x in "".join(labels(app)) for x in "▲▼"):
                break
            await pilot.press("s")
        assert table.order == ALL and not any(x in "".join(labels(app)) for x in "▲▼")


async def test_quick_filters_the_indicator_and_esc(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    app = app_for(project, store)
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        table = table_of(app)
        assert shown(app, "#nav-status") == ""
        await pilot.press("1")
        assert table.order == ["DB-1"]
        assert shown(app, "#nav-status").startswith("state failed · 1/5 shown")
        await pilot.press("4")
        assert table.order == ["UI-1"]
        await pilot.press("4")  # the same key again: every state
        assert table.order == ALL and shown(app, "#nav-status") == ""
        await pilot.press("2")
        assert table.order == ["API-1", "API-2"]
        await pilot.press("f", *"api-2", "enter")
        assert table.order == ["API-2"]
        line = shown(app, "#nav-status")
        assert "state active" in line and "filter 'api-2'" in line and "1/5 shown" in line
        await pilot.press("f", *"xyz")  # esc in the box undoes its edit
        assert table.order == []
        await pilot.press("escape")
        assert table.order == ["API-2"] and not app.query_one("#task-filter", Input).display
        await pilot.press("escape")  # esc on the table clears every filter
        assert table.order == ALL and shown(app, "#nav-status") == ""
        await pilot.press("3")  # waiting for input: nothing yet
        assert table.order == []
        await pilot.press("0")
        assert table.order == ALL


async def test_search_jumps_and_highlights_without_hiding(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    app = app_for(project, store)
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        table = table_of(app)
        await pilot.press("slash", *"ui")
        assert table.current == "UI-1"  # jumps as you type
        await pilot.press("enter")
        assert table.order == ALL  # nothing hidden
        assert "search 'ui' 1/2" in shown(app, "#nav-status")
        cell = table.get_cell("UI-1", "ID")
        assert [(s.start, s.end, str(s.style)) for s in cell.spans] == [(0, 2, MATCH_STYLE)]
        assert table.get_cell("API-1", "ID").spans == []
        await pilot.press("n")
        assert table.current == "UI-2" and "2/2" in shown(app, "#nav-status")
        await pilot.press("n")
        assert table.current == "UI-1"  # wraps around
        await pilot.press("N")
        assert table.current == "UI-2"
        await pilot.press("g")
        assert table.cursor_row == 0
        await pilot.press("G")
        assert table.cursor_row == 4
        await pilot.press("escape")
        assert shown(app, "#nav-status") == "" and table.get_cell("UI-1", "ID").spans == []


@pytest.mark.parametrize("size", [(80, 24), (160, 45)])
async def test_id_state_and_pid_are_whole_at_any_size(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    project, store = fixed_project(tmp_path)
    long_id = "INVENTORY-SERVICES-0042"
    write_spec(project.root / "specs", long_id)
    with store.tx() as tx:
        tx.insert_task(
            long_id, title="A long one " * 5, priority=10, spec_path=f"specs/{long_id}.md"
        )
        tx.transition_task(long_id, "pending", "active", phase="backoff", next_retry_at=T0 + 754)
    app = HatchApp(
        project, store, source=WithSupervisor(project, store, clock=lambda: T0), refresh_every=60
    )
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app)
        table = table_of(app)
        overview = app.query_one("#overview", Static)
        assert str(overview.render()).startswith("supervisor pid 4194301")
        assert overview.content_region.width >= len("supervisor pid 4194301")
        cols = {c.key.value: c for c in table.columns.values()}
        assert sum(c.get_render_width(table) for c in cols.values()) <= table.size.width
        for task_id in [*ALL, long_id]:
            for name in ("ID", "STATE"):
                text = table.get_cell(task_id, name).plain
                assert "…" not in text and cell_len(text) <= cols[name].width, (task_id, name)
        assert table.get_cell(long_id, "STATE").plain == "retry in 12m34s"
        assert table.get_cell("DB-1", "STATE").plain == "failed"
        if size[0] == 80:
            assert "ACTIVITY" not in cols and "USAGE" not in cols
            app.sort_by("USAGE")  # the palette's `sort by USAGE`: the sort column is kept
            assert "USAGE▲" in labels(app) and "ID" in labels(app) and "STATE" in labels(app)
            assert sum(c.get_render_width(table) for c in table.columns.values()) <= 80
            return
        assert {"ACTIVITY", "LAST LINE"} <= set(cols)
        for _ in range(12):  # sort by ACTIVITY, dropped at 80 columns: then it stays
            await pilot.press("s")
            if app.nav.sort == "ACTIVITY":
                break
        await pilot.resize_terminal(80, 24)
        await until(pilot, "80 columns", lambda: table.size.width <= 80)
        app.show(app.snapshot)  # type: ignore[arg-type]
        assert "ACTIVITY▲" in labels(app) and "ID" in labels(app) and "STATE" in labels(app)
        assert sum(c.get_render_width(table) for c in table.columns.values()) <= 80


async def test_attention_strip_notifies_persists_and_clears(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    app = app_for(project, store)
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        table = table_of(app)
        # what is wrong on opening is listed, not announced
        assert shown(app, "#attention").split() == ["⚑", "2", "DB-1", "failed", "UI-1", "blocked"]
        assert not list(app._notifications)
        run = store.runs("API-1")[0]
        with store.tx() as tx:
            tx.update_run(run.id, waiting_since=T0, waiting_reason="Allow edit? [y/n]")
            tx.set_meta("paused", "1")
        app.refresh_data()
        await until(pilot, "the waiting item", lambda: "API-1" in shown(app, "#attention"))
        assert "API-1 waiting for input" in shown(app, "#attention")
        assert "supervisor paused" in shown(app, "#attention")
        # announced too (a notification is added when the app handles its message: waited for)
        await until(
            pilot,
            "the notification",
            lambda: (
                "API-1 waiting for input: Allow edit? [y/n]"
                in [str(n.message) for n in app._notifications]
            ),
        )
        assert table.get_cell("API-1", "STATE").plain == "factory:waiting"
        # looked at: opening DB-1 clears its item
        await pilot.press("down", "down")
        assert table.current == "DB-1"
        await pilot.press("enter")
        await until(pilot, "the drill-down", lambda: isinstance(app.screen, DetailScreen))
        await pilot.press("escape")
        await until(pilot, "the dashboard", lambda: not isinstance(app.screen, DetailScreen))
        assert "DB-1" not in shown(app, "#attention")
        # the condition passes: the item stays until it is dismissed
        with store.tx() as tx:
            tx.update_run(run.id, waiting_since=None, waiting_reason=None)
        app.refresh_data()
        await until(pilot, "API-1 running", lambda: "running" in table.get_cell("API-1", "STATE"))
        assert "API-1 waiting for input" in shown(app, "#attention")
        await pilot.press("d")  # on DB-1, which has none: the oldest goes (UI-1 blocked)
        assert "UI-1" not in shown(app, "#attention")
        await pilot.press("g", "d")  # API-1's own item
        assert "API-1" not in shown(app, "#attention")
        await pilot.press("d")
        assert shown(app, "#attention") == "" and not app.query_one("#attention").display


async def test_drill_down_shows_the_run_and_the_task_metrics(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    first = add_run(store, project, "DB-1", 1, "failed", b"one\r\n")
    second = add_run(store, project, "DB-1", 2, "failed", b"two\r\n")
    with store.tx() as tx:
        tx.update_run(
            first,
            metrics={"tokens_in": 1000, "tokens_out": 500, "turns": 2, "cost_usd": 0.5},
            ended_at=T0 - 200,
        )
        tx.update_run(
            second,
            metrics={
                "tokens_in": 12_345,
                "tokens_out": 4_100,
                "cache_read": 30_000,
                "cache_write": 1_000,
                "turns": 7,
                "model": "claude-sonnet-4-5",
                "cost_usd": 0.0412,
                "wall_seconds": 125,
            },
        )
    app = app_for(project, store)
    async with app.run_test(size=(160, 32)) as pilot:
        await settle(pilot, app)
        await pilot.press("down", "down", "enter")
        await until(
            pilot, "the runs", lambda: isinstance(app.screen, DetailScreen) and app.screen.runs
        )
        usage = app.screen.query_one("#run-usage", Static)
        text = " ".join(str(usage.render()).split())
        assert text == (
            "run 12.3k in / 4.1k out · cache 30.0k read / 1.0k written · 7 turns"
            " · claude-sonnet-4-5 · ~$0.04 · 2m05s wall"
            " task (2 runs) 13.3k in / 4.6k out · cache 30.0k read / 1.0k written · 9 turns"
            " · ~$0.54 · 3m44s wall"
        )
        await pilot.press("p")  # the earlier attempt: its own numbers
        text = " ".join(str(usage.render()).split())
        assert text.startswith("run 1.0k in / 500 out · 2 turns · ~$0.50 · 1m39s wall task")


async def test_every_dashboard_footer_key_is_in_the_help(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    app = app_for(project, store)
    helped: set[str] = set()
    for key, _ in HELP["dashboard"]:
        for k in key.split(" / "):
            lo, _, hi = k.partition("-")
            helped |= {str(n) for n in range(int(lo), int(hi) + 1)} if hi.isdigit() else {k}
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        for row in range(5):  # each task: the actions shown are the ones that apply
            table_of(app).move_cursor(row=row)
            await pilot.pause(0.05)
            footer = {
                app.get_key_display(b.binding)
                for b in app.screen.active_bindings.values()
                if b.binding.show and b.enabled and b.binding.key != "ctrl+p"
            }
            assert footer - helped == set()
            assert {"/", "f", "s", "1", "0", "?"} <= footer
        assert {"n", "N", "S", "g", "G", "esc", "d"} <= helped
