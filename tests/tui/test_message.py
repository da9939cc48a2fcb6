"""`m` in the control room: a line of text for a task's running agent, queued as a ``send``
command through the app's sender, from the dashboard and from the drill-down; refused in
read-only mode; the delivery's outcome (an event) shown as a notification. The last test sends
through a real supervisor to a real (simulated) agent, and kills another agent there with `k`."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from hatchctl.cmds.ui import sender_for
from hatchctl.engine.deps import run_key
from hatchctl.runtime import psinfo
from hatchctl.tui.app import HatchApp
from hatchctl.tui.screens import ConfirmScreen, DetailScreen, MessageScreen
from hatchctl.tui.table import TaskTable
from tests.tui.test_app import app_for, fixed_project, settle

Sent = list[tuple[str, str | None, dict[str, str] | None]]


def recorder(sent: Sent) -> Any:
    def send(
        kind: str, task_id: str | None, args: dict[str, str] | None = None
    ) -> tuple[bool, str]:
        sent.append((kind, task_id, args))
        return True, f"sending to {task_id}"

    return send


async def until(pilot: Any, condition: Any, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.05)
        if condition():
            return
    raise AssertionError(f"timed out waiting for {what}")


def notes(app: HatchApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_m_sends_the_text_from_the_dashboard_and_the_drill_down(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    sent: Sent = []
    app = app_for(project, store, send=recorder(sent))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        assert app.query_one("#tasks").current == "API-1"  # its agent runs
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MessageScreen), "the message box")
        await pilot.press(*"run the tests", "enter")
        await until(pilot, lambda: bool(sent), "the command")
        assert sent == [("send", "API-1", {"text": "run the tests"})]
        await until(pilot, lambda: "sending to API-1" in notes(app), "the result")
        assert not isinstance(app.screen, MessageScreen)

        await pilot.press("m", *"no", "escape")  # esc cancels: nothing is sent
        await until(pilot, lambda: not isinstance(app.screen, MessageScreen), "the box closed")
        await pilot.press("m", "enter")  # an empty message is not sent either
        await until(pilot, lambda: "the message is empty" in notes(app), "the refusal")
        await pilot.press("escape")

        await pilot.press("down")  # API-2: active, no agent has run: `m` does not apply
        await pilot.press("m")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, MessageScreen) and len(sent) == 1

        await pilot.press("up", "enter")  # the drill-down of API-1: `m` there too
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), "the drill-down")
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MessageScreen), "the message box")
        await pilot.press(*"go on", "enter")
        await until(pilot, lambda: len(sent) == 2, "the second command")
        assert sent[1] == ("send", "API-1", {"text": "go on"})
        assert isinstance(app.screen, DetailScreen)

        with store.tx() as tx:  # the supervisor records the outcomes
            tx.event("delivered", task_id="API-1", data={"kind": "message", "how": "echoed"})
            tx.event("delivered", task_id="API-1", data={"kind": "prompt", "how": "echoed"})
            tx.event("delivery_failed", task_id="API-1", data={"kind": "message", "error": "busy"})
        app.refresh_data()
        await until(
            pilot, lambda: "API-1: message not delivered: busy" in notes(app), "the outcome"
        )
        assert "API-1: message delivered (echoed)" in notes(app)
        assert sum("delivered" in n for n in notes(app)) == 2  # not the prompt's


async def test_m_is_refused_in_read_only_mode(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    sent: Sent = []
    app = app_for(project, store, send=recorder(sent), read_only=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        await pilot.press("m")
        await until(pilot, lambda: any("read-only" in n for n in notes(app)), "the refusal")
        assert "read-only: messages to agents are refused" in notes(app)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), "the drill-down")
        await pilot.press("m")
        await until(pilot, lambda: len(notes(app)) == 2, "the second refusal")
        assert not isinstance(app.screen, MessageScreen) and sent == []


async def test_m_and_k_reach_a_real_agent_through_a_real_supervisor(tmp_path: Path) -> None:
    """One real supervisor (started once, not twice) for two claims: `m` reaches a real
    (simulated) agent, which receives the text; `k`, confirmed, kills another task's agent
    through the supervisor: the task fails, no process of its run is left and the table shows
    it failed."""
    from tests.integration.conftest import Projects, SupervisorProcess, wait_for
    from tests.tui.test_feature_keys import select

    projects = Projects(tmp_path)
    try:
        p = projects.make(
            {
                "A": {"sim": {"factory": ["chat"], "files": {"a.txt": "a\n"}}},
                "HANG": {"sim": {"factory": ["hang"]}},
            },
            {"limits": {"idle_timeout": "60s"}},
        )
        sup = SupervisorProcess(p)
        try:
            sup.wait_running()
            store = p.open_store()

            def waiting() -> bool:
                runs = [r for r in store.runs("A") if r.state == "running"]
                log = (p.root / runs[0].log_path) if runs else None
                return bool(log and log.exists() and "waiting for instructions" in log.read_text())

            wait_for(waiting, what="the agent waiting for a message")
            hang = wait_for(
                lambda: next((r for r in store.runs("HANG") if r.state == "running"), None),
                what="the hanging agent",
            )
            app = HatchApp(p, store, send=sender_for(p), refresh_every=0.2)
            async with app.run_test(size=(140, 32)) as pilot:
                await until(pilot, lambda: app.can_message("A"), "the running agent shown")
                await select(pilot, app, "A")
                await pilot.press("m", *"please add a.txt; then finish", "enter")
                await until(pilot, lambda: "message delivered" in " ".join(notes(app)), "delivery")
                assert any(n.startswith("sending 29 characters to A.factory") for n in notes(app))

                await select(pilot, app, "HANG")  # `k`: the kill reaches the supervisor
                await pilot.press("k")
                await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirm")
                await pilot.press("y")
                await until(
                    pilot,
                    lambda: getattr(store.task("HANG"), "state", None) == "failed",
                    "HANG killed",
                )
                assert psinfo.marked(run_key(p.root, hang.id)) == []
                await until(
                    pilot,
                    lambda: (
                        str(app.query_one("#tasks", TaskTable).get_cell("HANG", "STATE"))
                        == "failed"
                    ),
                    "HANG shown failed",
                )
            factory = next(r for r in store.runs("A") if r.role == "factory")
            assert (
                "received: please add a.txt; then finish" in (p.root / factory.log_path).read_text()
            )
            store.close()
        finally:
            sup.kill()
    finally:
        projects.cleanup()
        os.environ.pop("HATCH_JOB_KEY", None)
