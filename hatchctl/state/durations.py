"""Durations written as ``30s``, ``10m``, ``1h``, ``1h30m``, ``250ms`` or a bare number of seconds."""

from __future__ import annotations

import math
import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
MAX_SECONDS = 366 * 86400.0  # a year: anything longer is a mistake (or an overflow)


def parse_duration(value: object) -> float:
    """Seconds as a float, finite and at most a year. Raises ValueError with a one-line reason
    for anything else (nan, infinity, negative, too long, not a duration)."""
    seconds = _parse(value)
    if not math.isfinite(seconds):
        raise ValueError(f"invalid duration {_short(value)}: not a finite number")
    if seconds > MAX_SECONDS:
        raise ValueError(f"invalid duration {_short(value)}: longer than a year")
    return seconds


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _parse(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"invalid duration {_short(value)}: negative")
        try:
            return float(value)
        except OverflowError:
            raise ValueError(f"invalid duration {_short(value)}: too large") from None
    if not isinstance(value, str):
        raise ValueError(f"invalid duration {_short(value)}: expected e.g. '30s', '10m', '1h'")
    text = value.strip().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    pos = 0
    total = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {_short(value)}: expected e.g. '30s', '10m', '1h'")
    return total


def format_duration(seconds: float | None, *, whole_minutes: bool = False) -> str:
    """Compact human form: ``45s``, ``3m05s`` (``3m`` with ``whole_minutes``), ``2h04m``."""
    if seconds is None:
        return "-"
    s = int(max(0.0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m" if whole_minutes else f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"
