"""The drill-down's usage line: the shown run's metrics (tokens in/out, cache, turns, model, cost
estimate, wall time) and the task's total over every run. Metrics come from agent-written files:
shown, never trusted for anything (see hatchctl/state/metrics.py). Nothing here imports Textual."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.text import Text

from hatchctl.state import metrics
from hatchctl.state.durations import format_duration
from hatchctl.state.rows import RunRow
from hatchctl.state.transitions import RUN_LIVE


def count(n: float) -> str:
    """1234 -> 1.2k, 1234567 -> 1.23M."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.2f}M"
    return f"{n / 1000:.1f}k" if n >= 1000 else f"{n:.0f}"


def _num(m: Mapping[str, Any], key: str) -> float:
    v = m.get(key)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 else 0.0


def parts(m: Mapping[str, Any], wall: float | None) -> list[str]:
    """Each known measure, in a fixed order; nothing for what is not known."""
    out = []
    if m.get("tokens_in") is not None or m.get("tokens_out") is not None:
        out.append(f"{count(_num(m, 'tokens_in'))} in / {count(_num(m, 'tokens_out'))} out")
    if _num(m, "cache_read") or _num(m, "cache_write"):
        out.append(
            f"cache {count(_num(m, 'cache_read'))} read / {count(_num(m, 'cache_write'))} written"
        )
    if _num(m, "turns"):
        out.append(f"{_num(m, 'turns'):.0f} turns")
    if isinstance(m.get("model"), str) and m["model"]:
        out.append(str(m["model"])[:60])
    if m.get("cost_usd") is not None:
        out.append(f"~${_num(m, 'cost_usd'):.2f}")
    if wall is not None:
        out.append(f"{format_duration(wall)} wall")
    return out


def run_wall(run: RunRow) -> float | None:
    """How long the run ran; None while it runs (the drill-down is not redrawn every second)."""
    if "wall_seconds" in run.metrics:
        return _num(run.metrics, "wall_seconds")
    if run.state in RUN_LIVE or run.ended_at is None:
        return None
    return max(0.0, run.ended_at - (run.running_at or run.started_at))


def usage_line(run: RunRow, runs: list[RunRow]) -> Text:
    """``run 2/3: 12.3k in / 4.1k out · ... · 2m05s wall   task (3 runs): ...``"""
    mine = parts(run.metrics, run_wall(run))
    if run.state in RUN_LIVE:
        mine.append("running")
    walls = [w for w in (run_wall(r) for r in runs) if w is not None]
    whole = dict(metrics.total(r.metrics for r in runs))
    whole.pop("wall_seconds", None)  # summed below from every finished run
    task = parts(whole, sum(walls) if walls else None)
    text = Text(no_wrap=False)
    text.append("run ", style="bold")
    text.append(" · ".join(mine) if mine else "no usage reported")
    text.append("   task ", style="bold")
    text.append(f"({len(runs)} run{'s' if len(runs) != 1 else ''}) ")
    text.append(" · ".join(task) if task else "no usage reported")
    return text
