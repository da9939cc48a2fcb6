"""A big store in the control room (issue 11): the first screenful comes from a partial snapshot,
the table is then filled a frame at a time, in the queue's order, and a later change reaches its
row through the diff. Pilot on a real store; conditions polled with a bound."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hatchctl.project import Project
from hatchctl.tui.app import HatchApp
from hatchctl.tui.data import FIRST, DataSource
from hatchctl.tui.table import TaskTable
from tests.conftest import make_repo

TASKS = 2_500  # more than two frames of the table's fill


async def until(pilot: Any, what: str, check: Callable[[], object], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


async def test_a_big_store_fills_the_table_in_queue_order(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "proj")
    (root / "hatch.toml").write_text('[project]\nname = "big"\n')
    project = Project.find(root)
    store = project.open_store()
    with store.tx() as tx:
        for i in range(TASKS):
            tx.insert_task(f"T{i:05d}", title=f"task {i}", priority=i % 7)
        tx.transition_task("T00003", "pending", "blocked", last_error="blocked by T00002")
    queue = [t.id for t in store.tasks()]  # priority, then id
    source = DataSource(project, store, clock=lambda: 1_795_000_000.0)
    first = source.first()
    assert first is not None and first.partial
    assert [v.task.id for v in first.views] == queue[:FIRST]
    assert first.counts["pending"] == TASKS - 1 and first.counts["blocked"] == 1

    app = HatchApp(project, store, source=DataSource(project, store), refresh_every=60)
    async with app.run_test(size=(140, 40)) as pilot:
        table = app.query_one("#tasks", TaskTable)
        await until(pilot, "every row", lambda: table.row_count == TASKS)
        assert [str(row.key.value) for row in table.ordered_rows] == queue
        assert "T00003 blocked" in str(app.query_one("#attention").render())

        with store.tx() as tx:
            tx.update_task(queue[-1], title="renamed")
        app.refresh_data()
        await until(
            pilot,
            "the new title",
            lambda: (
                app.snapshot is not None and app.snapshot.by_id[queue[-1]].task.title == "renamed"
            ),
        )
        await until(pilot, "the cell", lambda: str(table.get_cell(queue[-1], "TITLE")) == "renamed")
        assert table.row_count == TASKS
