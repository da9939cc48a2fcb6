"""`a` where the control room cannot lend its terminal (a browser session under `hatchctl
serve`, or Pilot's headless driver): one notification with the command to run, no crash."""

from __future__ import annotations

from pathlib import Path

from tests.tui.test_app import app_for, fixed_project, settle
from tests.tui.test_nav import until


async def test_attach_without_a_terminal_says_what_to_run(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    app = app_for(project, store, send=lambda kind, task_id: (True, "ok"))
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        await pilot.press("a")  # API-1, running

        def said() -> list[str]:
            return [str(n.message) for n in app._notifications]

        await until(pilot, "the notification", lambda: any("attach" in m for m in said()))
        message = next(m for m in said() if "attach" in m)
        assert message.startswith("attach needs a terminal: tmux ") and "attach-session" in message
        assert app.is_running  # the app is still there
