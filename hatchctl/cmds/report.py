"""``hatchctl report``: the timeline and a per-task table as one self-contained HTML file.

The model is :func:`hatchctl.state.timeline.build`; this module only draws it (inline SVG and
CSS, no script, nothing fetched). Every text from the project (task ids, titles from the spec
files, run reasons, event data) is untrusted and HTML-escaped. The file is written 0600 through a
temporary file and a rename, and never through a symbolic link.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import itertools
import os
import secrets
import stat
import time
from collections.abc import Iterable
from pathlib import Path

from hatchctl import logsetup
from hatchctl.cmds.common import load_project
from hatchctl.errors import HatchError
from hatchctl.state import metrics
from hatchctl.state.durations import format_duration
from hatchctl.state.rows import EventRow, iso
from hatchctl.state.store import Store
from hatchctl.state.timeline import LIVE, Lane, Timeline, build

LABEL_W = 190  # the lane labels' column, px
CHART_W = 1000  # the time axis, px
LANE_H = 26
TOP = 28  # the axis labels
BAR_H = 14
MARK_KINDS = ("strike", "restart", "merged", "completed", "failed", "blocked")
TIMELINE_EVENTS = ("strike", "restart_scheduled", "merged")

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2329; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 24px 0 8px; }
.meta { color: #555; margin: 0; }
svg { max-width: 100%; height: auto; font: 11px ui-monospace, monospace; }
.lane-bg { fill: #f6f7f9; } .lane.critical .lane-bg { fill: #fff1c2; }
.lane-label { fill: #1d2329; } .lane.critical .lane-label { font-weight: bold; }
.axis line { stroke: #d0d4da; } .axis text { fill: #666; }
.bar { stroke: #fff; stroke-width: 1; }
.role-factory { fill: #4e79a7; } .role-qa { fill: #9c6fb6; }
.out-failed { stroke: #d62728; stroke-width: 2.5; }
.out-timed_out { stroke: #ff7f0e; stroke-width: 2.5; stroke-dasharray: 4 2; }
.out-killed { stroke: #444; stroke-width: 2; stroke-dasharray: 2 2; }
.out-crashed { stroke: #8c1c13; stroke-width: 2.5; stroke-dasharray: 6 2; }
.out-live { fill-opacity: 0.55; stroke: #2ca02c; stroke-width: 2; }
.mark-strike { fill: #d62728; } .mark-restart { fill: #ff7f0e; }
.mark-merged { fill: #2ca02c; } .mark-completed { stroke: #2ca02c; stroke-width: 3; }
.mark-failed { stroke: #d62728; stroke-width: 3; } .mark-blocked { stroke: #888; stroke-width: 3; }
.dep { stroke: #b8bec6; stroke-width: 1; fill: none; }
.dep.critical { stroke: #e8a200; stroke-width: 2.5; }
.now { stroke: #2ca02c; stroke-dasharray: 3 3; }
.legend span { display: inline-block; margin-right: 14px; }
.swatch { display: inline-block; width: 14px; height: 10px; margin-right: 4px; vertical-align: middle; }
table { border-collapse: collapse; } th, td { padding: 3px 10px; text-align: left; }
th { border-bottom: 2px solid #ccc; } td { border-bottom: 1px solid #eee; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.critical td:first-child { font-weight: bold; }
.state-failed { color: #d62728; } .state-blocked { color: #888; } .state-completed { color: #2a7d2a; }
"""
LEGEND = (
    '<p class="legend">'
    '<span><i class="swatch" style="background:#4e79a7"></i>factory</span>'
    '<span><i class="swatch" style="background:#9c6fb6"></i>QA</span>'
    '<span><i class="swatch" style="border:2px solid #d62728"></i>failed</span>'
    '<span><i class="swatch" style="border:2px dashed #ff7f0e"></i>timed out</span>'
    '<span><i class="swatch" style="border:2px dotted #444"></i>killed</span>'
    '<span><i class="swatch" style="border:2px dashed #8c1c13"></i>crashed</span>'
    '<span><i class="swatch" style="border:2px solid #2ca02c"></i>running</span>'
    '<span style="color:#d62728">&#9660; strike</span>'
    '<span style="color:#ff7f0e">&#9679; restart</span>'
    '<span style="color:#2ca02c">&#9670; merged</span>'
    '<span><i class="swatch" style="background:#fff1c2"></i>critical path</span>'
    "</p>"
)


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _ticks(span: float) -> list[float]:
    """About eight round steps across ``span`` seconds."""
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800):
        if span / step <= 8:
            break
    else:
        step = 86400
    return [i * step for i in range(int(span // step) + 1)]


class _Svg:
    def __init__(self, timeline: Timeline) -> None:
        self.tl = timeline
        self.scale = CHART_W / max(timeline.span, 1.0)
        self.row = {lane.task_id: i for i, lane in enumerate(timeline.lanes)}

    def x(self, t: float) -> float:
        return round(LABEL_W + max(0.0, t) * self.scale, 1)

    def y(self, task_id: str) -> float:
        return TOP + self.row[task_id] * LANE_H

    def render(self) -> str:
        height = TOP + len(self.tl.lanes) * LANE_H + 4
        width = LABEL_W + CHART_W + 10
        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-label="timeline">',
            *self._axis(height),
            *(line for lane in self.tl.lanes for line in self._lane(lane, width)),
            *self._deps(),
        ]
        if any(b.outcome == LIVE for lane in self.tl.lanes for b in lane.bars):
            x = self.x(self.tl.now)
            out.append(f'<line class="now" x1="{x}" y1="{TOP}" x2="{x}" y2="{height}"/>')
        out.append("</svg>")
        return "\n".join(out)

    def _axis(self, height: int) -> list[str]:
        out = ['<g class="axis">']
        for t in _ticks(self.tl.span):
            x = self.x(t)
            out.append(f'<line x1="{x}" y1="{TOP - 6}" x2="{x}" y2="{height}"/>')
            out.append(f'<text x="{x + 2}" y="{TOP - 10}">{esc(format_duration(t))}</text>')
        out.append("</g>")
        return out

    def _lane(self, lane: Lane, width: int) -> list[str]:
        y = self.y(lane.task_id)
        crit = "true" if lane.critical else "false"
        cls = "lane critical" if lane.critical else "lane"
        title = f"{lane.task_id}: {lane.title} ({lane.state})"
        out = [
            f'<g class="{cls}" data-lane="{esc(lane.task_id)}" data-critical="{crit}">',
            f'<rect class="lane-bg" x="0" y="{y + 1}" width="{width}" height="{LANE_H - 2}">'
            f"<title>{esc(title)}</title></rect>",
            f'<text class="lane-label" x="4" y="{y + 17}">{esc(lane.task_id)}'
            f"<title>{esc(title)}</title></text>",
        ]
        top = y + (LANE_H - BAR_H) / 2
        for bar in lane.bars:
            x1, x2 = self.x(bar.start), self.x(bar.end)
            out.append(
                f'<rect class="bar role-{esc(bar.role)} out-{esc(bar.outcome)}" '
                f'data-run="{bar.run_id}" x="{x1}" y="{top}" width="{max(x2 - x1, 1.5):.1f}" '
                f'height="{BAR_H}"><title>{esc(bar.label)} · '
                f"{esc(format_duration(bar.end - bar.start))}</title></rect>"
            )
        for mark in lane.marks:
            out.append(self._mark(mark.kind, self.x(mark.at), y, mark.label))
        out.append("</g>")
        return out

    def _mark(self, kind: str, x: float, y: float, label: str) -> str:
        tip = f"<title>{esc(label)}</title>"
        attrs = f'class="mark mark-{esc(kind)}" data-mark="{esc(kind)}"'
        if kind == "strike":  # a triangle above the bars
            return f'<path {attrs} d="M{x} {y + 8} l-5 -8 h10 z">{tip}</path>'
        if kind == "restart":
            return f'<circle {attrs} cx="{x}" cy="{y + 4}" r="4">{tip}</circle>'
        if kind == "merged":
            return f'<path {attrs} d="M{x} {y + 18} l4 4 l-4 4 l-4 -4 z">{tip}</path>'
        return f'<line {attrs} x1="{x}" y1="{y + 3}" x2="{x}" y2="{y + LANE_H - 3}">{tip}</line>'

    def _deps(self) -> list[str]:
        """What waited on what: from each dependency's end to the dependent's start."""
        lanes = {lane.task_id: lane for lane in self.tl.lanes}
        path = self.tl.critical_path
        on_path = set(itertools.pairwise(path))
        out = []
        for lane in self.tl.lanes:
            for dep in lane.depends_on:
                before = lanes.get(dep)
                if before is None or before.end is None:
                    continue
                x1, y1 = self.x(before.end), self.y(dep) + LANE_H / 2
                x2 = self.x(lane.start if lane.start is not None else before.end)
                y2 = self.y(lane.task_id) + LANE_H / 2
                cls = "dep critical" if (dep, lane.task_id) in on_path else "dep"
                out.append(
                    f'<path class="{cls}" d="M{x1} {y1} C{x1 + 12} {y1} {x2 - 12} {y2} {x2} {y2}">'
                    f"<title>{esc(lane.task_id)} waited on {esc(dep)}</title></path>"
                )
        return out


def _table(timeline: Timeline) -> str:
    head = (
        "<tr><th>task</th><th>title</th><th>state</th><th>started</th><th>wall time</th>"
        "<th>attempts</th><th>strikes</th><th>restarts</th><th>tokens / cost</th></tr>"
    )
    rows = [head]
    for lane in sorted(timeline.lanes, key=lambda lane: lane.task_id):
        started = f"+{format_duration(lane.start)}" if lane.start is not None else "-"
        wall = format_duration(lane.wall) if lane.start is not None else "-"
        cls = ' class="critical"' if lane.critical else ""
        rows.append(
            f'<tr data-task="{esc(lane.task_id)}"{cls}><td>{esc(lane.task_id)}</td>'
            f"<td>{esc(lane.title)}</td>"
            f'<td class="state-{esc(lane.state)}">{esc(lane.state)}</td>'
            f'<td class="num">{esc(started)}</td><td class="num">{esc(wall)}</td>'
            f'<td class="num">{lane.attempts}</td><td class="num">{lane.strikes}</td>'
            f'<td class="num">{lane.restarts}</td><td>{esc(metrics.short(lane.metrics))}</td></tr>'
        )
    total = metrics.total(lane.metrics for lane in timeline.lanes)
    rows.append(
        f'<tr data-total="true"><td>all</td><td></td><td></td><td></td>'
        f'<td class="num">{esc(format_duration(timeline.span))}</td>'
        f'<td class="num">{sum(lane.attempts for lane in timeline.lanes)}</td>'
        f'<td class="num">{sum(lane.strikes for lane in timeline.lanes)}</td>'
        f'<td class="num">{sum(lane.restarts for lane in timeline.lanes)}</td>'
        f"<td>{esc(metrics.short(total))}</td></tr>"
    )
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def render(timeline: Timeline, project_name: str, *, generated_at: float) -> str:
    """The whole HTML document."""
    lanes = {lane.task_id: lane for lane in timeline.lanes}
    counts: dict[str, int] = {}
    for lane in timeline.lanes:
        counts[lane.state] = counts.get(lane.state, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    path = timeline.critical_path
    if path:
        length = sum(lanes[t].wall for t in path)
        crit = f"{' → '.join(path)} ({format_duration(length)} of task time)"
    else:
        crit = "none yet"
    start = iso(timeline.origin) if timeline.lanes else "-"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>hatchctl report · {esc(project_name)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>hatchctl report · {esc(project_name)}</h1>",
        f'<p class="meta">from {esc(start)} for {esc(format_duration(timeline.span))} · '
        f"{len(timeline.lanes)} tasks: {esc(summary or 'none')} · "
        f"generated {esc(iso(generated_at))}</p>",
        f'<p class="meta">critical path: {esc(crit)}</p>',
        "<h2>Timeline</h2>",
        LEGEND,
        _Svg(timeline).render(),
        "<h2>Tasks</h2>",
        _table(timeline),
        "</body></html>",
        "",
    ]
    return "\n".join(parts)


def _events(store: Store) -> list[EventRow]:
    """Only the events the timeline draws (a long night has many more)."""
    kinds = ", ".join("?" for _ in TIMELINE_EVENTS)
    sql = (
        "SELECT * FROM events WHERE task_id IS NOT NULL AND "  # noqa: S608 (placeholders only)
        f"(kind IN ({kinds}) OR kind LIKE 'task!_%' ESCAPE '!') ORDER BY id"
    )
    with store.read() as conn:
        return [EventRow.from_row(r) for r in conn.execute(sql, TIMELINE_EVENTS)]


def write_private(path: Path, text: str) -> None:
    """Write ``path`` 0600 via a temporary file and a rename in its directory; refuse when the
    path is a symbolic link (or anything but a regular file)."""
    parent = path.parent
    try:
        dfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise HatchError(f"cannot write {path}: {exc.strerror or exc}") from None
    tmp = f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        try:
            st = os.lstat(path.name, dir_fd=dfd)
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISLNK(st.st_mode):
            raise HatchError(f"{path} is a symlink: refusing to write through it")
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise HatchError(f"{path} exists and is not a regular file")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, 0o600, dir_fd=dfd)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path.name, src_dir_fd=dfd, dst_dir_fd=dfd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dfd)
        raise HatchError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        os.close(dfd)


def _default_out(hatch: Path) -> Path:
    exports = hatch / "exports"
    with contextlib.suppress(FileExistsError):
        exports.mkdir(mode=0o700)
    if exports.is_symlink() or not exports.is_dir():
        raise HatchError(f"{exports} is not a directory (or is a symlink)")
    return exports / "report.html"


def report(args: argparse.Namespace) -> int:
    project = load_project(args)
    store = project.open_store()
    try:
        now = time.time()
        timeline = build(store.tasks(), store.runs(), _events(store), now=now)
    finally:
        store.close()
    out: Path = args.out if args.out is not None else _default_out(project.paths.hatch)
    write_private(out, render(timeline, project.name, generated_at=now))
    logsetup.get().info("report_written", path=str(out), tasks=len(timeline.lanes))
    print(f"wrote {out} ({len(timeline.lanes)} tasks, {_runs(timeline.lanes)} runs)")
    return 0


def _runs(lanes: Iterable[Lane]) -> int:
    return sum(len(lane.bars) for lane in lanes)
