"""`t`: the timeline view. One lane per task, a bar per agent run coloured by role (factory, QA)
with its outcome at its end, restarts, strikes, merges and end states marked, the dependency
graph's critical path highlighted (★); zoomable (`+`/`-`, `f` fits the whole night), scrollable
(`←`/`→` in time, `↑`/`↓` between lanes) and live: the model (hatchctl/state/timeline.py, the
same one `hatchctl report` draws) comes with each snapshot, built off the UI thread.

``draw`` is a pure function of the model and the view's position; the widget only keeps that
position (scale, offset, the selected lane, the first lane shown)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Header, Static

from hatchctl.state.durations import format_duration
from hatchctl.state.timeline import LIVE, Lane, Timeline
from hatchctl.tui.footer import FitFooter
from hatchctl.tui.help import HelpScreen

if TYPE_CHECKING:
    from hatchctl.tui.app import HatchApp

# seconds per column, the zoom levels
SCALES = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400)
ROLE_STYLE = {"factory": "#4e79a7", "qa": "#b07cd0"}
# a finished run's last cell: its outcome (a success ends like the rest of its bar)
OUTCOME = {
    "failed": ("✗", "bold white on red"),
    "crashed": ("!", "bold white on red"),
    "timed_out": ("T", "bold black on #ff7f0e"),
    "killed": ("k", "bold white on #555555"),
    LIVE: ("▶", "bold #2ca02c"),
}
MARK = {  # drawn over the bars, the first kind winning a shared cell
    "strike": ("▼", "bold red"),
    "restart": ("↻", "bold #ff7f0e"),
    "merged": ("◆", "bold #2ca02c"),
    "completed": ("┃", "#2ca02c"),
    "failed": ("┃", "red"),
    "blocked": ("┃", "yellow"),
}
SPAN = ("─", "dim")  # the task's time between its runs (waiting on QA, a retry, a merge)
CRITICAL = "on #3a3000"
LABEL_MAX = 16
TICK_GAP = 10  # columns between two labels of the time axis at least


def fit_scale(span: float, columns: int) -> int:
    """The smallest zoom level that shows ``span`` seconds in ``columns`` columns."""
    return next((s for s in SCALES if span / s <= max(columns - 1, 1)), SCALES[-1])


def scale_label(scale: int) -> str:
    return f"1 col = {format_duration(scale)}"


def label_width(timeline: Timeline) -> int:
    ids = [cell_len(lane.task_id) for lane in timeline.lanes]
    return min(max([4, *ids]), LABEL_MAX) + 3  # "★ " before, a space after


def _col(t: float, offset: float, scale: int) -> int:
    return math.floor((t - offset) / scale)


def _lane_cells(lane: Lane, offset: float, scale: int, cols: int) -> list[tuple[str, str]]:
    cells = [(" ", "")] * cols

    def put(col: int, cell: tuple[str, str]) -> None:
        if 0 <= col < cols:
            cells[col] = cell

    if lane.start is not None and lane.end is not None:
        first = _col(lane.start, offset, scale)
        for col in range(first, max(first, math.ceil((lane.end - offset) / scale) - 1) + 1):
            put(col, SPAN)
    for bar in lane.bars:
        style = ROLE_STYLE.get(bar.role, "white")
        first = _col(bar.start, offset, scale)
        last = max(first, math.ceil((bar.end - offset) / scale) - 1)
        for col in range(first, last + 1):
            put(col, ("█", style))
        if bar.outcome in OUTCOME:
            glyph, look = OUTCOME[bar.outcome]
            put(last, (glyph, look if bar.outcome != LIVE else f"{look} on {style}"))
    for kind in reversed(tuple(MARK)):  # the first kind is drawn last: it wins
        for mark in lane.marks:
            if mark.kind == kind:
                put(_col(mark.at, offset, scale), MARK[kind])
    return cells


def axis(offset: float, scale: int, cols: int, left: int) -> Text:
    """The time axis: a tick and a label at round times, at least TICK_GAP columns apart."""
    wide = scale * TICK_GAP
    step = next((s for s in (*SCALES, 86400) if s >= wide and s % scale == 0), wide)
    line = [" "] * cols
    t = math.ceil(max(offset, 0.0) / step) * step
    while (col := _col(t, offset, scale)) < cols:
        label = "┆" + format_duration(t)
        if col >= 0 and col + len(label) <= cols:
            line[col : col + len(label)] = list(label)
        t += step
    return Text(" " * left + "".join(line), style="dim", no_wrap=True, end="")


def draw(
    timeline: Timeline, *, scale: int, offset: float, width: int, top: int, rows: int, cursor: int
) -> Text:
    """The lanes ``top`` to ``top + rows`` (the selected one, ``cursor``, reversed), under the
    time axis, ``width`` columns wide."""
    left = label_width(timeline)
    cols = max(width - left, 1)
    out = Text(no_wrap=True, end="")
    out.append_text(axis(offset, scale, cols, left))
    for n, lane in enumerate(timeline.lanes[top : top + rows], start=top):
        out.append("\n")
        name = lane.task_id if cell_len(lane.task_id) <= left - 3 else lane.task_id[: left - 4]
        name = name + ("…" if name != lane.task_id else "")
        look = "bold yellow" if lane.critical else ""
        if n == cursor:
            look = f"{look} reverse".strip()
        out.append("★ " if lane.critical else "  ", style="bold yellow")
        out.append(f"{name:<{left - 3}}", style=look)
        out.append(" ")
        background = CRITICAL if lane.critical else ""
        for glyph, style in _lane_cells(lane, offset, scale, cols):
            out.append(glyph, style=f"{style} {background}".strip())
    return out


def summary(timeline: Timeline, scale: int, fitted: bool) -> Text:
    """The line over the chart: the scale, the span and the critical path."""
    lanes = {lane.task_id: lane for lane in timeline.lanes}
    path = timeline.critical_path
    length = sum(lanes[t].wall for t in path if t in lanes)
    crit = f"{' → '.join(path)} ({format_duration(length)})" if path else "none yet"
    return Text.assemble(
        (scale_label(scale), "bold"),
        " (fit)" if fitted else "",
        f" · span {format_duration(timeline.span)} · {len(timeline.lanes)} tasks · ",
        ("★ critical path: ", "bold yellow"),
        crit,
        no_wrap=True,
        overflow="ellipsis",
        end="",
    )


LEGEND = Text.assemble(
    ("█", ROLE_STYLE["factory"]),
    " factory ",
    ("█", ROLE_STYLE["qa"]),
    " QA ",
    OUTCOME[LIVE],
    " live ",
    OUTCOME["failed"],
    OUTCOME["timed_out"],
    OUTCOME["crashed"],
    OUTCOME["killed"],
    " failed/timed out/crashed/killed ",
    MARK["strike"],
    " strike ",
    MARK["restart"],
    " restart ",
    MARK["merged"],
    " merged ",
    MARK["completed"],
    " end ",
    SPAN,
    " between runs",
    no_wrap=True,
    overflow="ellipsis",
    end="",
)


class TimelineChart(Widget, can_focus=True):
    """The lanes and the axis; keeps the view's position."""

    DEFAULT_CSS = "TimelineChart { height: 1fr; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.timeline: Timeline | None = None
        self.scale = SCALES[0]
        self.fitted = True  # follows the whole span as it grows, until a zoom
        self.start = 0.0  # the time at the left edge (seconds since the origin)
        self.cursor = 0
        self.top = 0

    @property
    def columns(self) -> int:
        left = label_width(self.timeline) if self.timeline else 0
        return max((self.size.width or 80) - left, 1)

    def show(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.cursor = min(self.cursor, max(len(timeline.lanes) - 1, 0))
        if self.fitted:
            self.scale, self.start = fit_scale(timeline.span, self.columns), 0.0
        self.refresh()

    class Rescaled(Message):
        """The chart refitted itself to a new size: the scale over it changes."""

    def on_resize(self) -> None:
        if self.timeline is not None:
            self.show(self.timeline)
            self.post_message(self.Rescaled())

    def zoom(self, step: int) -> None:
        """One level in (-1) or out (+1), the left edge staying where it is."""
        at = SCALES.index(self.scale) if self.scale in SCALES else 0
        self.scale = SCALES[min(max(at + step, 0), len(SCALES) - 1)]
        self.fitted = False
        self.refresh()

    def fit(self) -> None:
        self.fitted = True
        if self.timeline is not None:
            self.show(self.timeline)

    def pan(self, pages: float) -> None:
        """Scroll in time by a part of the chart's width; never before t = 0."""
        self.start = max(0.0, self.start + pages * self.columns * self.scale)
        self.fitted = False
        self.refresh()

    def move(self, lanes: int) -> None:
        count = len(self.timeline.lanes) if self.timeline else 0
        self.cursor = min(max(self.cursor + lanes, 0), max(count - 1, 0))
        rows = max(self.size.height - 1, 1)
        if self.cursor < self.top:
            self.top = self.cursor
        elif self.cursor >= self.top + rows:
            self.top = self.cursor - rows + 1
        self.refresh()

    @property
    def selected(self) -> str | None:
        if self.timeline is None or not self.timeline.lanes:
            return None
        return self.timeline.lanes[self.cursor].task_id

    def render(self) -> Text:
        if self.timeline is None:
            return Text("loading the timeline…", style="dim")
        if not self.timeline.lanes:
            return Text("no tasks", style="dim")
        return draw(
            self.timeline,
            scale=self.scale,
            offset=self.start,
            width=self.size.width or 80,
            top=self.top,
            rows=max(self.size.height - 1, 1),
            cursor=self.cursor,
        )


class TimelineScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,q", "back", "Back"),
        Binding("enter", "drill", "Details"),
        Binding("plus,equals_sign", "zoom(-1)", "Zoom in"),
        Binding("minus", "zoom(1)", "Zoom out"),
        Binding("f", "fit", "Fit"),
        Binding("left", "pan(-0.25)", "Earlier", show=False),
        Binding("right", "pan(0.25)", "Later", show=False),
        Binding("up", "move(-1)", "Previous lane", show=False),
        Binding("down", "move(1)", "Next lane", show=False),
        Binding("pageup", "move(-10)", show=False),
        Binding("pagedown", "move(10)", show=False),
        Binding("home", "pan_home", "Start", show=False),
        Binding("question_mark", "help", "Help"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="timeline-summary")
        yield TimelineChart(id="timeline-chart")
        yield Static(LEGEND, id="timeline-legend")
        yield FitFooter(drop=("fit", "zoom"))

    def on_mount(self) -> None:
        self.title = "hatchctl · timeline"
        self.query_one(TimelineChart).focus()

    @property
    def chart(self) -> TimelineChart:
        return self.query_one(TimelineChart)

    def set_timeline(self, timeline: Timeline) -> None:
        self.chart.show(timeline)
        self._summary()

    def _summary(self) -> None:
        chart = self.chart
        if chart.timeline is not None:
            text = summary(chart.timeline, chart.scale, chart.fitted)
            self.query_one("#timeline-summary", Static).update(text)

    def on_timeline_chart_rescaled(self, _message: TimelineChart.Rescaled) -> None:
        self._summary()

    def action_zoom(self, step: int) -> None:
        self.chart.zoom(step)
        self._summary()

    def action_fit(self) -> None:
        self.chart.fit()
        self._summary()

    def action_pan(self, pages: float) -> None:
        self.chart.pan(pages)
        self._summary()

    def action_pan_home(self) -> None:
        self.chart.pan(-math.inf)  # back to t = 0
        self._summary()

    def action_move(self, lanes: int) -> None:
        self.chart.move(lanes)

    def action_drill(self) -> None:
        task_id = self.chart.selected
        if task_id is not None:
            app: HatchApp = self.app  # type: ignore[assignment]
            app.open_detail(task_id)

    def action_back(self) -> None:
        self.app.pop_screen()

    def on_unmount(self) -> None:
        app: HatchApp = self.app  # type: ignore[assignment]
        app.source.want_timeline = False  # closed: the snapshots stop building it

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen("timeline"))
