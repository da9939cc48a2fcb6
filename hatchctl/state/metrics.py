"""Per-run metrics: tokens, cache tokens, turns, model, an estimated cost, wall time.

Sources, best first: the agent CLI's own session log, then the summary's own ``metrics`` block.
Claude Code's transcript (JSONL; every assistant message carries the API's ``usage``; the Stop
hook payload names the file); Codex's session (``$CODEX_HOME/sessions/.../rollout-*.jsonl``:
``token_count`` events with the session's running token totals). Costs are estimates from a
small price table (USD per million tokens); unknown models get none.

Every key means the same whatever the source: ``tokens_in`` is input read at the full price (not
from a cache), ``cache_read``/``cache_write`` the cached input, ``tokens_out`` all output
(``reasoning_tokens``, when known, is the part of it spent reasoning).

These files are written by (or next to) the agent, which could plant any numbers in them:
metrics are informational, shown and summed, never used for a decision.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

TOKEN_KEYS = ("tokens_in", "tokens_out", "cache_write", "cache_read")
SUM_KEYS = (*TOKEN_KEYS, "reasoning_tokens", "turns", "cost_usd", "wall_seconds")

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
        except (ValueError, RecursionError):  # RecursionError: nested too deep
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


def _codex_usage(doc: object) -> tuple[int, int, int, int, int] | None:
    """(input, cached input, cache write, output, reasoning) of a Codex token usage object."""
    if not isinstance(doc, dict):
        return None
    keys = (
        "input_tokens",
        "cached_input_tokens",
        "cache_write_input_tokens",
        "output_tokens",
        "reasoning_output_tokens",
    )
    tokens_in, cached, written, out, reasoning = (_int(doc.get(k)) for k in keys)
    return tokens_in, min(cached, tokens_in), written, out, min(reasoning, out)


def from_codex_session(lines: Iterable[bytes]) -> dict[str, Any]:
    """Codex CLI's session log (0.169.0): each model call is followed by an ``event_msg`` of
    type ``token_count`` whose ``info.total_token_usage`` is the session's running total (input
    counting its cached part, as the OpenAI API does; output counting its reasoning part). The
    last total is the session's; a total that goes down starts a new count (a session resumed
    by another process) and the one before it is added. ``turns`` is the number of totals that
    moved (a repeated event is not a model call); ``model`` is the last ``turn_context``'s."""
    done = [0, 0, 0, 0, 0]  # totals of earlier counts
    last: tuple[int, int, int, int, int] | None = None
    turns = 0
    model = ""
    for raw in lines:
        if b'"token_count"' not in raw and b'"turn_context"' not in raw:
            continue
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            continue
        payload = doc.get("payload") if isinstance(doc, dict) else None
        if not isinstance(payload, dict):
            continue
        if doc.get("type") == "turn_context":
            if isinstance(payload.get("model"), str):
                model = payload["model"][:100]
            continue
        if doc.get("type") != "event_msg" or payload.get("type") != "token_count":
            continue
        info = payload.get("info")
        total = _codex_usage(info.get("total_token_usage") if isinstance(info, dict) else None)
        if total is None or total == last or not (total[0] or total[3]):
            continue
        if last is not None and (total[0] + total[3]) < (last[0] + last[3]):
            done = [a + b for a, b in zip(done, last, strict=True)]
        last = total
        turns += 1
    if last is None:
        return {}
    tokens_in, cached, written, out, reasoning = (a + b for a, b in zip(done, last, strict=True))
    found: dict[str, Any] = {
        "tokens_in": tokens_in - cached,
        "tokens_out": out,
        "cache_write": written,
        "cache_read": cached,
        "reasoning_tokens": reasoning,
        "turns": turns,
        "model": model,
        "source": "codex-session",
    }
    cost = estimate_cost(found)
    if cost is not None:
        found["cost_usd"] = cost
    return found


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
