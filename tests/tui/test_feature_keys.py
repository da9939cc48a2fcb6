"""`H` in the control room: the selected task's whole feature held (one `hold` per unfinished
task, through a real supervisor's command queue), unheld when all of it is held; a task without
a feature says so; refused read-only. The project is paused, so its tasks stay pending."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchctl.cmds.ui import sender_for
from hatchctl.tui.app import HatchApp
from hatchctl.tui.table import TaskTable
from tests.tui.test_message import notes, until


async def select(pilot: Any, app: HatchApp, task_id: str) -> None:
    """The cursor on the task, and the app following it (a refresh puts the cursor back on the
    task the app follows: move it again until both agree)."""
    table = app.query_one("#tasks", TaskTable)

    def selected() -> bool:
        if task_id not in table.rows:  # its row is not there yet (a first, partial screenful)
            return False
        if table.current != task_id:
            table.move_cursor(row=table.get_row_index(task_id))
        return table.current == app.selected == task_id

    await until(pilot, selected, f"{task_id} selected")


async def test_H_holds_and_unholds_the_whole_feature(tmp_path: Path) -> None:
    from tests.integration.conftest import Projects, SupervisorProcess, wait_for

    projects = Projects(tmp_path)
    try:
        p = projects.make(
            {
                "A": {"feature": "calc"},
                "B": {"feature": "calc", "depends_on": ["A"]},
                "C": {},  # in no feature
            }
        )
        store = p.open_store()
        with store.tx() as tx:  # nothing starts: the tasks stay pending
            tx.set_meta("paused", "1")
            tx.set_meta("pause_reason", "paused by user")
        sup = SupervisorProcess(p)
        try:
            sup.wait_running()
            wait_for(lambda: len(store.tasks()) == 3, what="the specs read")

            def held() -> dict[str, int]:
                return {t.id: t.held for t in store.tasks()}

            def shown_held(value: int) -> bool:
                views = app.snapshot.views if app.snapshot else []
                shown = {v.task.id: v.task.held for v in views}
                return shown == {"A": value, "B": value, "C": 0}

            # no periodic refresh: the app loads at start and after each `H` (a refresh left
            # running when the app closes would find its widgets gone)
            app = HatchApp(p, store, send=sender_for(p), refresh_every=60)
            async with app.run_test(size=(120, 30)) as pilot:
                await until(pilot, lambda: shown_held(0), "the tasks shown")
                await select(pilot, app, "B")
                await pilot.press("H")
                await until(pilot, lambda: shown_held(1), "the feature held")
                assert held() == {"A": 1, "B": 1, "C": 0}
                assert "feature calc: held 2 task(s) (A, B)" in notes(app)

                await pilot.press("H")  # all of it is held: H unholds it
                await until(pilot, lambda: shown_held(0), "the feature unheld")
                assert held() == {"A": 0, "B": 0, "C": 0}
                assert "feature calc: unheld 2 task(s) (A, B)" in notes(app)

                await select(pilot, app, "C")
                await pilot.press("H")
                await until(pilot, lambda: "C belongs to no feature" in " ".join(notes(app)), "C")
                await app.workers.wait_for_complete()
            kinds = [e.data.get("command") for e in store.events() if e.kind == "command_done"]
            assert kinds == ["hold", "hold", "unhold", "unhold"]  # one command per task

            app = HatchApp(p, store, read_only=True, refresh_every=60)
            async with app.run_test(size=(120, 30)) as pilot:
                await until(pilot, lambda: app.snapshot is not None, "the tasks shown")
                await pilot.press("H")
                await until(pilot, lambda: "read-only" in " ".join(notes(app)), "the refusal")
                await app.workers.wait_for_complete()
            assert held() == {"A": 0, "B": 0, "C": 0}
            store.close()
        finally:
            sup.kill()
    finally:
        projects.cleanup()
