"""`t` in the control room: the timeline view, drawn from the same model as `hatchctl report`
(hatchctl/state/timeline.py), loaded with each snapshot off the UI thread. A lane per task, a
live run's bar that grows with the clock, zoom, enter to a task's drill-down, escape back; and a
snapshot of it on fixed rows and a fixed clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchctl.project import Project
from hatchctl.state.store import Store
from hatchctl.tui.app import HatchApp
from hatchctl.tui.data import DataSource
from hatchctl.tui.screens import DetailScreen
from hatchctl.tui.timeline import TimelineChart, TimelineScreen
from tests.tui.test_app import T0, fixed_project, settle
from tests.tui.test_message import until

# when each task-level event happened (the rest: before everything)
EVENT_AT = {
    ("DB-1", "active"): T0 - 800,
    ("DB-1", "failed"): T0 - 500,
    ("API-2", "active"): T0 - 600,
    ("API-1", "active"): T0 - 130,
    ("UI-1", "blocked"): T0 - 500,
}


def timeline_project(tmp_path: Path) -> tuple[Project, Store]:
    """test_app's project with a history: DB-1 failed after three factory runs (failed, timed
    out, crashed) and two strikes; API-2 (which waited on DB-1) had its factory succeed and its
    QA running; API-1's factory running since a restart. Every time is fixed."""
    project, store = fixed_project(tmp_path)
    with store.tx() as tx:
        tx.conn.execute("UPDATE tasks SET depends_on = ? WHERE id = ?", ('["DB-1"]', "API-2"))
        ended = (("failed", -800, -700), ("timed_out", -690, -600), ("crashed", -590, -520))
        for attempt, (end, start, stop) in enumerate(ended, start=1):
            run = _run(tx, "DB-1", "factory", 1, attempt, T0 + start)
            tx.transition_run(run.id, "starting", "running", running_at=T0 + start)
            tx.transition_run(run.id, "running", end, ended_at=T0 + stop, reason=end)
            if attempt < 3:
                tx.event("strike", task_id="DB-1", run_id=run.id, data={"strike": attempt})
        run = _run(tx, "API-2", "factory", 1, 1, T0 - 600)
        tx.transition_run(run.id, "starting", "running", running_at=T0 - 600)
        tx.transition_run(run.id, "running", "stopped")
        tx.transition_run(run.id, "stopped", "succeeded", ended_at=T0 - 420)
        run = _run(tx, "API-2", "qa", 2, 1, T0 - 400)
        tx.transition_run(run.id, "starting", "running", running_at=T0 - 400)
        tx.event("restart_scheduled", task_id="API-1", data={"restart": 1, "of": 5})
        tx.conn.execute("UPDATE tasks SET updated_at = ?", (T0,))
        rows = tx.conn.execute("SELECT id, task_id, kind, to_state FROM events").fetchall()
        for event_id, task_id, kind, to_state in rows:
            at = EVENT_AT.get((task_id, to_state)) if kind.startswith("task_") else None
            if kind == "strike":
                at = T0 - 700 + 90 * (event_id % 2)
            if kind == "restart_scheduled":
                at = T0 - 127
            tx.conn.execute("UPDATE events SET at = ? WHERE id = ?", (at or T0 - 900, event_id))
    return project, store


def _run(tx: Any, task_id: str, role: str, iteration: int, attempt: int, at: float) -> Any:
    window = f"{task_id}.{role}.i{iteration}.a{attempt}"
    return tx.insert_run(
        task_id=task_id,
        role=role,
        iteration=iteration,
        attempt=attempt,
        window_name=window,
        log_path=f".hatch/logs/{role}/{window}.log",
        stop_path=f"s-{window}",
        summary_path=f"m-{window}",
        prompt_path=f"p-{window}",
        started_at=at,
    )


def app_at(project: Project, store: Store, clock: list[float]) -> HatchApp:
    source = DataSource(project, store, clock=lambda: clock[0])
    return HatchApp(project, store, source=source, refresh_every=60)


async def open_timeline(pilot: Any, app: HatchApp) -> TimelineScreen:
    await settle(pilot, app)
    await pilot.press("t")
    await until(
        pilot,
        lambda: (
            isinstance(app.screen, TimelineScreen)
            and app.screen.query_one(TimelineChart).timeline is not None
        ),
        "the timeline",
    )
    assert isinstance(app.screen, TimelineScreen)
    await pilot.pause(0.05)
    return app.screen


def lane_line(chart: TimelineChart, task_id: str) -> str:
    lines = chart.render().plain.splitlines()
    return next(line for line in lines if line[2:].split(" ", 1)[0] == task_id)


def bar_cells(chart: TimelineChart, task_id: str) -> int:
    return sum(lane_line(chart, task_id).count(c) for c in "█▶")


def scale_text(screen: TimelineScreen) -> str:
    return str(screen.query_one("#timeline-summary").render())


async def test_t_opens_a_live_zoomable_timeline(tmp_path: Path) -> None:
    project, store = timeline_project(tmp_path)
    clock = [T0]
    app = app_at(project, store, clock)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await open_timeline(pilot, app)
        chart = screen.query_one(TimelineChart)
        timeline = chart.timeline
        assert timeline is not None
        assert [lane.task_id for lane in timeline.lanes] == [
            "DB-1",
            "API-2",
            "API-1",
            "UI-1",
            "UI-2",
        ]
        assert timeline.critical_path == ("DB-1", "API-2")
        for lane in timeline.lanes:
            lane_line(chart, lane.task_id)  # every lane is drawn
        assert lane_line(chart, "DB-1").startswith("★ DB-1")
        assert "✗" in lane_line(chart, "DB-1") and "▼" in lane_line(chart, "DB-1")
        assert scale_text(screen).startswith("1 col = 10s (fit)")

        await pilot.press("plus")  # zoom in: a smaller scale, no longer fitted
        assert scale_text(screen).startswith("1 col = 5s ·")
        await pilot.press("minus", "minus")
        assert scale_text(screen).startswith("1 col = 15s ·")
        before = bar_cells(chart, "API-1")
        assert before == 9  # 125 s of API-1's live factory at 15 s a column

        clock[0] += 60  # a minute later, the next periodic load
        app.refresh_data()
        await until(pilot, lambda: bar_cells(chart, "API-1") > before, "the live bar to grow")
        assert bar_cells(chart, "API-1") == 13
        assert "span 14m20s" in scale_text(screen)  # from 800 s before T0 to 60 s after

        await pilot.press("f")  # fit again
        assert scale_text(screen).startswith("1 col = 10s (fit)")

        await pilot.press("down", "down", "enter")  # API-1's lane: its drill-down
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), "the drill-down")
        assert isinstance(app.screen, DetailScreen) and app.screen.task_id == "API-1"
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, TimelineScreen), "back to the timeline")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.screen_stack[0], "back to the dashboard")
        assert not app.source.want_timeline  # closed: the snapshots stop building it


def test_timeline_snapshot(tmp_path: Path, snap_compare: Any) -> None:
    project, store = timeline_project(tmp_path)
    app = app_at(project, store, [T0])

    async def run_before(pilot: Any) -> None:
        await open_timeline(pilot, app)

    assert snap_compare(app, terminal_size=(110, 16), run_before=run_before)
