"""The Log tab and the dashboard tail show what the agent's screen showed, and keep following
it: bytes appended to the log while it is shown appear on screen, without blocking the UI."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hatchctl.tui.app import HatchApp
from hatchctl.tui.logview import LogLines, LogView
from hatchctl.tui.screens import DetailScreen
from tests.tui.test_app import app_for, fixed_project, settle

LOG = ".hatch/logs/factory/API-1.factory.i1.a1.log"


def frame(n: int) -> bytes:
    """One redraw of a full-screen TUI (alternate screen, absolute moves, erased rows)."""
    return (
        b"\x1b[H\x1b[2K\x1b[1m Claude Code\x1b[22m\x1b[3;1H\x1b[2K\x1b[48;5;237m  reading files"
        + b" " * 60
        + b"\x1b[49m\x1b[10;1H\x1b[2K\x1b[38;5;174m* Thinking... (%ds)\x1b[39m" % n
        + b"\x1b[24;1H\x1b[2K ? for shortcuts"
    )


def on_screen(app: HatchApp, selector: str) -> list[str]:
    """The text the log body paints, row by row."""
    body = app.screen.query_one(selector).query_one(LogLines)
    return [
        "".join(seg.text for seg in body.render_line(y)).rstrip()
        for y in range(body.scrollable_content_region.height)
    ]


async def wait_for(pilot: Any, condition: Any, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.05)
        if condition():
            return
    raise AssertionError(f"timed out waiting for {what}")


async def test_log_tab_shows_a_tui_screen_and_follows_it(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    log = project.root / LOG
    log.write_bytes(b"$ claude\r\n\x1b[?1049h\x1b[2J" + b"".join(frame(n) for n in range(300)))
    app = app_for(project, store)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot, app)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), "the drill-down")
        view = app.screen.query_one("#logview", LogView)
        await wait_for(pilot, lambda: "* Thinking... (299s)" in view.lines, "the rendered log")
        shown = on_screen(app, "#logview")
        assert "* Thinking... (299s)" in shown and "  reading files" in shown
        assert " ? for shortcuts" in shown and "(298s)" not in "".join(shown)
        assert len(view.lines) == 25  # the line before the TUI, then its 24 rows: no flood

        with log.open("ab") as fh:  # the agent redraws, leaves the TUI, prints lines
            fh.write(frame(300) + b"\x1b[?1049l" + b"".join(b"after %d\r\n" % i for i in range(3)))
        await wait_for(pilot, lambda: "after 2" in on_screen(app, "#logview"), "the new lines")
        shown = on_screen(app, "#logview")
        assert "* Thinking... (300s)" in shown and "* Thinking... (299s)" not in shown
        assert shown.index("after 0") < shown.index("after 2")
        body = app.screen.query_one("#logview").query_one(LogLines)
        assert body.lines == view.shown_lines()
        follower = next(w for w in app.workers if w.node is view and w.is_running)
        await pilot.press("escape")  # leaving the drill-down stops its follower thread
        await wait_for(pilot, lambda: follower.is_finished, "the follower thread to stop")


async def test_dashboard_tail_follows_appended_lines(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    app = app_for(project, store)
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        assert on_screen(app, "#tail")[-1] == "step 39: ok"  # plain lines read as before
        with (project.root / LOG).open("ab") as fh:
            fh.write(b"".join(b"step %d: \x1b[32mok\x1b[0m\r\n" % i for i in range(40, 45)))
        await wait_for(pilot, lambda: on_screen(app, "#tail")[-1] == "step 44: ok", "step 44")
        assert on_screen(app, "#tail")[-5:] == [f"step {i}: ok" for i in range(40, 45)]


async def test_a_filter_applies_to_followed_redraws(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    log = project.root / LOG
    app = app_for(project, store)
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), "the drill-down")
        view = app.screen.query_one("#logview", LogView)
        await wait_for(pilot, lambda: bool(view.lines), "the log")
        view.pattern = "Thinking|step 3"
        view.redraw()
        with log.open("ab") as fh:
            fh.write(b"\x1b[?1049h")
            for n in range(40):
                fh.write(frame(n))
                fh.flush()
                if n % 8 == 0:
                    await pilot.pause(0.3)
        body = app.screen.query_one("#logview").query_one(LogLines)
        await wait_for(pilot, lambda: "* Thinking... (39s)" in body.lines, "the last frame")
        assert body.lines == view.shown_lines()
        assert body.lines == [f"step {i}: ok" for i in (3, *range(30, 40))] + [
            "* Thinking... (39s)"
        ]


async def test_opening_a_big_log_does_not_block_the_ui(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    log = project.root / "big.log"  # a log this view has never followed (none is kept)
    with log.open("wb") as fh:  # 2 MiB+ of a TUI redrawing: rendered in the worker thread
        while fh.tell() < (2 << 20) + 4096:
            fh.write(frame(fh.tell()))
    app = app_for(project, store)
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        view = app.query_one("#tail", LogView)
        view.open(log)
        # open() returned without rendering: the render is made in a worker and applied on the
        # UI thread only after this coroutine yields, so nothing of it is there yet
        assert view.lines == [] and view.path == log
        await wait_for(pilot, lambda: len(view.lines) == 25, "the render")
        assert view.lines[0].startswith("[... ") and view.lines[-1] == " ? for shortcuts"


async def test_wrap_breaks_long_lines_and_follows(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    log = project.root / LOG
    long_line = "x" * 250 + "END"
    log.write_bytes(b"short\r\n" + long_line.encode() + b"\r\n")
    app = app_for(project, store)
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        body = app.query_one("#tail", LogView).query_one(LogLines)
        width = body.scrollable_content_region.width

        def shown() -> list[str]:
            return [row for row in on_screen(app, "#tail") if row]

        def wrapped(line: str) -> list[str]:
            return [line[i : i + width] for i in range(0, len(line), width)]

        assert shown() == ["short", long_line[:width]]  # cut at the edge (scroll right)
        await pilot.click("#tail")
        await pilot.press("w")
        await wait_for(pilot, lambda: shown() == ["short", *wrapped(long_line)], "wrapped")
        with log.open("ab") as fh:
            fh.write(b"y" * 200 + b"\r\n")
        want = ["short", *wrapped(long_line), *wrapped("y" * 200)]
        await wait_for(pilot, lambda: shown() == want, "the new line, wrapped")
