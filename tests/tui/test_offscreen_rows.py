"""A live agent's row off screen is not rebuilt every refresh (issue 11: the control room's CPU
while 50 agents stream): its log's last line is read, and its row redrawn, only with the CPU
sample (every CPU_INTERVAL); on screen, or while every row is wanted (a filter, a search, a sort
by a changing column), on every refresh. A real store and log; the data source's clock is the
test's."""

from __future__ import annotations

from pathlib import Path

from hatchctl.tui.data import CPU_INTERVAL, DataSource
from tests.tui.test_app import T0, fixed_project  # API-1's agent runs, its log on disk

LOG = ".hatch/logs/factory/API-1.factory.i1.a1.log"


def test_an_off_screen_live_row_waits_for_the_cpu_sample(tmp_path: Path) -> None:
    project, store = fixed_project(tmp_path)
    now = [T0 + 5.0]
    source = DataSource(project, store, clock=lambda: now[0])
    source.in_view = ["API-2", "DB-1"]  # API-1 (the live one) scrolled off
    first = source.load().by_id["API-1"]
    assert first.last_line == "step 39: ok"
    log = project.root / LOG

    def say(text: str) -> None:
        with log.open("ab") as fh:
            fh.write(text.encode() + b"\r\n")

    say("off screen")
    now[0] += 1.0
    assert source.load().by_id["API-1"] is first  # not read, not redrawn
    source.in_view = ["API-1"]  # scrolled back: read on the next refresh
    shown = source.load().by_id["API-1"]
    assert shown.last_line == "off screen" and shown.activity.strip()  # its log grew
    source.in_view = ["API-2"]
    say("later")
    now[0] += 1.0
    assert source.load().by_id["API-1"].last_line == "off screen"
    now[0] += CPU_INTERVAL  # the CPU sample: every live row is rebuilt
    assert source.load().by_id["API-1"].last_line == "later"
    say("wanted")
    source.want_lines = True  # a filter looks at every row: all are read on every refresh
    now[0] += 1.0
    assert source.load().by_id["API-1"].last_line == "wanted"
