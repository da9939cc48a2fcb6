"""Features: tasks grouped by their spec's ``feature:``, rolled up for status and the UI."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hatchctl.state import metrics
from hatchctl.state.durations import format_duration


def rollup(tasks: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per feature (tasks as in ``status --json``): done/total, failed, blocked, active,
    pending, and the summed usage (wall time, tokens, cost) of its tasks' runs."""
    out: dict[str, dict[str, Any]] = {}
    usage: dict[str, list[Mapping[str, Any]]] = {}
    ids: dict[str, list[str]] = {}
    for t in tasks:
        name = t.get("feature")
        if not name:
            continue
        f = out.setdefault(
            name,
            {"total": 0, "completed": 0, "failed": 0, "blocked": 0, "active": 0, "pending": 0},
        )
        f["total"] += 1
        state = str(t.get("state"))
        if state in f:
            f[state] += 1
        usage.setdefault(name, []).append(t.get("metrics") or {})
        ids.setdefault(name, []).append(str(t["id"]))
    for name, f in out.items():
        f["metrics"] = metrics.total(usage[name])
        f["tasks"] = sorted(ids[name])
    return dict(sorted(out.items()))


def line(name: str, f: Mapping[str, Any]) -> str:
    """``api  3/5 done  1 failed  1 blocked  usage ...`` for the status table."""
    parts = [f"{name}", f"{f['completed']}/{f['total']} done"]
    for key in ("failed", "blocked", "active"):
        if f[key]:
            parts.append(f"{f[key]} {key}")
    wall = f["metrics"].get("wall_seconds")
    if wall:
        parts.append(f"{format_duration(float(wall))} of agent time")
    short = metrics.short(f["metrics"])
    if short:
        parts.append(f"usage {short}")
    return "  ".join(parts)
