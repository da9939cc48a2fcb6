"""In the demo, the control room says what each task is about to do as it starts."""

from __future__ import annotations

from pathlib import Path

from hatchctl.demo import MARKER, NARRATION
from tests.tui.test_app import app_for, fixed_project, settle
from tests.tui.test_nav import until


async def test_the_demo_narrates_each_task_as_it_starts(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    (project.root / MARKER).write_text("demo\n")
    app = app_for(project, store)
    assert app.narration == NARRATION  # a demo project is recognised by its marker
    app.narration = {"UI-2": "will lie about its commits"}  # this project's ids
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        with store.tx() as tx:
            tx.transition_task("UI-2", "pending", "active", phase="factory")
        app.refresh_data()

        def said() -> list[str]:
            return [str(n.message) for n in app._notifications]

        await until(pilot, "the narration", lambda: any("UI-2 starts" in m for m in said()))
        assert "UI-2 starts: will lie about its commits" in said()


def test_a_project_that_is_not_the_demo_is_not_narrated(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    assert app_for(project, store).narration == {}
