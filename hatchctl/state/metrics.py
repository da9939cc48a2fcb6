"""Per-run metrics: tokens, cache tokens, turns, model, an estimated cost, wall time.

Sources, best first: Claude Code's transcript (JSONL; every assistant message carries the API's
``usage``; the Stop hook payload names the file), then the summary's own ``metrics`` block.
Costs are estimates from a small price table (USD per million tokens); unknown models get none.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

TOKEN_KEYS = ("tokens_in", "tokens_out", "cache_write", "cache_read")
SUM_KEYS = (*TOKEN_KEYS, "turns", "cost_usd", "wall_seconds")

# USD per million tokens: input, output (cache writes cost 1.25x input, cache reads 0.1x input)
PRICES: tuple[tuple[str, float, float], ...] = (
    ("opus", 15.0, 75.0),
    ("sonnet", 3.0, 15.0),
    ("haiku", 0.8, 4.0),
)


def price(model: str) -> tuple[float, float] | None:
    name = model.lower()
    for family, p_in, p_out in PRICES:
        if family in name:
            return p_in, p_out
    return None


def estimate_cost(m: Mapping[str, Any]) -> float | None:
    prices = price(str(m.get("model") or ""))
    if prices is None:
        return None
    p_in, p_out = prices
    cost = (
        int(m.get("tokens_in") or 0) * p_in
        + int(m.get("tokens_out") or 0) * p_out
        + int(m.get("cache_write") or 0) * p_in * 1.25
        + int(m.get("cache_read") or 0) * p_in * 0.1
    ) / 1_000_000
    return round(cost, 6)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def from_claude_transcript(lines: Iterable[bytes]) -> dict[str, Any]:
    """Sum the usage of every assistant message (each API call counted once: Claude Code may
    write one message over several lines)."""
    seen: dict[str, dict[str, int]] = {}
    model = ""
    for n, raw in enumerate(lines):
        if b'"usage"' not in raw:
            continue
        try:
            doc = json.loads(raw)
        except ValueError:
            continue
        msg = doc.get("message") if isinstance(doc, dict) else None
        if not isinstance(msg, dict) or not isinstance(msg.get("usage"), dict):
            continue
        if doc.get("type") not in (None, "assistant") and msg.get("role") != "assistant":
            continue
        usage = msg["usage"]
        key = str(msg.get("id") or f"line-{n}")
        seen[key] = {
            "tokens_in": _int(usage.get("input_tokens")),
            "tokens_out": _int(usage.get("output_tokens")),
            "cache_write": _int(usage.get("cache_creation_input_tokens")),
            "cache_read": _int(usage.get("cache_read_input_tokens")),
        }
        if isinstance(msg.get("model"), str):
            model = msg["model"][:100]
    if not seen:
        return {}
    out: dict[str, Any] = {k: sum(u[k] for u in seen.values()) for k in TOKEN_KEYS}
    out["turns"] = len(seen)
    out["model"] = model
    out["source"] = "claude-transcript"
    cost = estimate_cost(out)
    if cost is not None:
        out["cost_usd"] = cost
    return out


def from_summary(metrics: Mapping[str, Any] | None) -> dict[str, Any]:
    """The summary's own ``metrics`` (what the agent reports about itself)."""
    if not metrics:
        return {}
    out: dict[str, Any] = {}
    for src, dst in (("tokens_in", "tokens_in"), ("tokens_out", "tokens_out"), ("turns", "turns")):
        if _int(metrics.get(src)):
            out[dst] = _int(metrics.get(src))
    cost = metrics.get("cost_usd")
    if isinstance(cost, int | float) and not isinstance(cost, bool) and cost >= 0:
        out["cost_usd"] = float(cost)
    if out:
        out["source"] = "summary"
    return out


def total(runs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Sum the numeric metrics of several runs (a task, a project)."""
    out: dict[str, Any] = {}
    for m in runs:
        for k in SUM_KEYS:
            v = m.get(k)
            if isinstance(v, int | float) and not isinstance(v, bool):
                out[k] = round(out.get(k, 0) + v, 6)
    return out


def short(m: Mapping[str, Any]) -> str:
    """'12.3k tok $0.04' for a table cell; '' when nothing is known."""
    tokens = sum(int(m.get(k) or 0) for k in ("tokens_in", "tokens_out", "cache_write"))
    parts = []
    if tokens:
        parts.append(f"{tokens / 1000:.1f}k tok" if tokens >= 1000 else f"{tokens} tok")
    if m.get("cost_usd") is not None:
        parts.append(f"${float(m['cost_usd']):.2f}")
    return " ".join(parts)
