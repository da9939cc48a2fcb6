"""The clocks of the task table (issue 11: the control room's CPU at 50 agents): a live run's
RUNTIME and IDLE change once a minute past the first minute, a view that shows the same is not
rebuilt (the control room then has nothing to redraw), and a changed cell redraws its row only.
A real store and Pilot; the data source's clock is the test's."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hatchctl.tui.app import HatchApp
from hatchctl.tui.data import DataSource
from hatchctl.tui.table import TaskTable
from hatchctl.tui.views import clock
from tests.tui.test_app import T0, fixed_project  # API-1 runs since T0-125, active at T0-4


async def until(pilot: Any, what: str, check: Callable[[], object], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


def test_clock_units() -> None:
    assert [clock(s) for s in (None, -1, 0, 59.9, 60, 185, 3599, 3600, 7440)] == [
        "-",
        "0s",
        "0s",
        "59s",
        "1m",
        "3m",
        "59m",
        "1h00m",
        "2h04m",
    ]


def test_a_live_view_is_rebuilt_only_when_what_it_shows_changes(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    now = [T0 + 56.0]  # RUNTIME 3m (181 s), IDLE 1m (60 s)
    source = DataSource(project, store, clock=lambda: now[0])
    snap = source.load()
    first = snap.by_id["API-1"]
    now[0] += 1.0
    assert source.load() is snap  # 3m and 1m again, nothing committed: nothing to redraw
    with store.tx() as tx:
        tx.update_task("UI-2", title="renamed")
    again = source.load()
    assert again is not snap and again.by_id["API-1"] is first  # only UI-2's view is new
    now[0] = T0 + 116.0  # 241 s: 4m
    later = source.load().by_id["API-1"]
    assert later is not first and clock(later.runtime) == "4m" and clock(later.idle) == "2m"


async def test_a_clock_redraws_its_row_only(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    now = [T0 + 56.0]
    source = DataSource(project, store, clock=lambda: now[0])
    app = HatchApp(project, store, source=source, refresh_every=60)
    async with app.run_test(size=(140, 32)) as pilot:
        table = app.query_one("#tasks", TaskTable)
        await until(pilot, "the rows", lambda: table.row_count == 5)
        await pilot.pause(0.1)  # drawn: every row's render is cached
        line = 1 + table.keys.index("API-1")  # under the header
        assert "3m" in table.render_line(line).text

        def cached(row: str) -> int:
            keys = table._row_render_cache.keys()
            return sum(1 for key in keys if key[0].value == row)

        assert cached("API-2") and cached("API-1")
        renders = table._update_count  # in every render's cache key: bumped, all are dropped
        now[0] = T0 + 116.0
        app.refresh_data()
        await until(pilot, "4m", lambda: str(table.get_cell("API-1", "RUNTIME")) == "4m")
        assert "4m" in table.render_line(line).text  # not a stale render of the line
        assert table._update_count == renders and cached("API-2")  # the other rows' are kept
