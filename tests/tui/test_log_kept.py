"""The log pane keeps the followers of the logs it showed last (issue 11: every move of the
cursor rendered the selected log's tail again through the terminal emulator): going back to a
log shows its lines at once and then what it gained meanwhile, every line once and in order.
Real log files, a real app (Pilot); the follower thread is the app's own."""

from __future__ import annotations

from pathlib import Path

from hatchctl.tui.logview import KEPT, LogView
from tests.tui.test_app import app_for, fixed_project, settle
from tests.tui.test_logview import wait_for


def numbered(start: int, stop: int) -> bytes:
    return b"".join(b"line %05d\r\n" % n for n in range(start, stop))


def expected(stop: int) -> list[str]:
    return [f"line {n:05d}" for n in range(stop)]


async def test_going_back_to_a_log_reads_only_what_it_gained(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    a, b = project.root / ".hatch/logs/a.log", project.root / ".hatch/logs/b.log"
    a.write_bytes(numbered(0, 300))
    b.write_bytes(b"other\r\n")
    app = app_for(project, store)
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        view = app.query_one("#tail", LogView)
        view.open(a)
        await wait_for(pilot, lambda: view.lines == expected(300), "a's lines")
        kept = view.followers.get(a)
        assert kept is not None
        view.open(b)
        await wait_for(pilot, lambda: view.lines == ["other"], "b's lines")
        with a.open("ab") as fh:  # a grows while b is shown
            fh.write(numbered(300, 420))
        view.open(a)
        assert view.lines == expected(300)  # at once, as last read: no empty pane, no render
        await wait_for(pilot, lambda: view.lines == expected(420), "what a gained")
        assert view.followers.get(a) is kept and kept.follower.pos == a.stat().st_size
        with a.open("ab") as fh:  # and it keeps following
            fh.write(numbered(420, 450))
        await wait_for(pilot, lambda: view.lines == expected(450), "a's new lines")


async def test_only_the_last_logs_are_kept(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    logs = [project.root / f".hatch/logs/{n}.log" for n in range(KEPT + 2)]
    for n, log in enumerate(logs):
        log.write_bytes(b"log %d\r\n" % n)
    app = app_for(project, store)
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        view = app.query_one("#tail", LogView)
        for n, log in enumerate(logs):
            view.open(log)
            await wait_for(pilot, lambda n=n: view.lines == [f"log {n}"], f"log {n}")
        assert len(view.followers) == KEPT
        assert view.followers.get(logs[0]) is None and view.followers.get(logs[-1]) is not None
        view.open(logs[0])  # evicted: rendered afresh
        await wait_for(pilot, lambda: view.lines == ["log 0"], "log 0 again")
