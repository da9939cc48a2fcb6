"""The HOST column: absent while every run is on this machine, shown with the host's name once a
run is on an SSH host (issue 13), and sortable."""

from __future__ import annotations

from pathlib import Path

from hatchctl.tui.table import TaskTable
from tests.tui.test_app import app_for, fixed_project


def headers(table: TaskTable) -> list[str]:
    return [c.label.plain for c in table.columns.values()]


async def test_host_column_only_when_a_run_is_on_a_host(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    app = app_for(project, store)
    async with app.run_test(size=(200, 30)) as pilot:
        await pilot.pause()
        table = app.query_one("#tasks", TaskTable)
        assert "HOST" not in headers(table)
        run = next(r for r in store.runs("API-1"))
        with store.tx() as tx:
            tx.update_run(run.id, host="gpu1")
        app.refresh_data()
        for _ in range(100):
            await pilot.pause(0.02)
            if "HOST" in headers(table):
                break
        assert "HOST" in headers(table)
        assert str(table.get_cell("API-1", "HOST")) == "gpu1"
        assert str(table.get_cell("API-2", "HOST")) == ""  # no run, or a run here
