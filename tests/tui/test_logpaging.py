"""The Log tab of a log far bigger than its first render: the tail first, then, scrolling up
past the first line, the page before it, in place (the line on screen does not move), until
the whole log is there; the tail keeps following."""

from __future__ import annotations

from pathlib import Path

from hatchctl.tui.logview import START_BYTES, LogLines, LogView
from hatchctl.tui.screens import DetailScreen
from tests.tui.test_app import app_for, fixed_project, settle
from tests.tui.test_logview import LOG, on_screen, wait_for


async def test_scrolling_up_pages_back_to_the_start_and_keeps_following(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    log = project.root / LOG
    want = [f"line {i:06d}: reading, thinking, editing src/module.py ... ok" for i in range(14_000)]
    log.write_bytes("".join(f"\x1b[2m{ln[:11]}\x1b[0m{ln[11:]}\r\n" for ln in want).encode())
    assert log.stat().st_size > START_BYTES + (512 << 10)  # the tail, then two pages
    app = app_for(project, store)
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), "the drill-down")
        view = app.screen.query_one("#logview", LogView)
        body = view.query_one(LogLines)
        await wait_for(pilot, lambda: view.lines[-1:] == want[-1:], "the tail")
        assert view.lines[0].endswith("of earlier output: scroll up to read it]")
        tail = len(view.lines) - 1
        assert 0 < tail < len(want) // 2 and view.lines[1:] == want[-tail:]
        body.focus()
        for pages in (1, 2):
            first = view.lines[1]  # home shows it below the marker, and pages back
            await pilot.press("home")

            def paged(before: int = tail) -> bool:
                return len(view.lines) > before

            await wait_for(pilot, paged, f"page {pages}")  # the page before it, above it
            row = want.index(first)
            assert view.lines[-(len(want) - row) :] == want[row:]
            assert on_screen(app, "#logview")[:2] == [want[row - 1], first]  # still in row 1
            tail = len(view.lines)
        assert view.lines == want  # all of it, in order: nothing lost or repeated at the seams
        assert body.lines == view.lines
        await pilot.press("home")  # nothing older: no marker, nothing changes
        await pilot.pause(0.2)
        assert view.lines == want and on_screen(app, "#logview")[0] == want[0]
        with log.open("ab") as fh:
            fh.write(b"after paging\r\n")
        await wait_for(pilot, lambda: view.lines[-1] == "after paging", "the new line")
        assert view.lines[:-1] == want
