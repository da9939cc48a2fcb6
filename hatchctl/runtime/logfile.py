"""Pane logs: raw terminal bytes on disk; stripped of ANSI codes for display, read from the end."""

from __future__ import annotations

import os
import re
from pathlib import Path

# CSI sequences, OSC sequences (terminated by BEL or ST), other two-byte escapes, and stray CRs.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|\x1b[@-Z\\-_]"
    r"|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
)


def strip_ansi(text: str) -> str:
    """Remove escape sequences and control characters; turn CR-overwritten lines into their end."""
    out = []
    for line in _ANSI.sub("", text.replace("\r\n", "\n")).split("\n"):
        out.append(line.rsplit("\r", 1)[-1] if "\r" in line else line)
    return "\n".join(out)


def tail_bytes(path: Path, max_bytes: int) -> bytes:
    """The last ``max_bytes`` of a file, without reading the rest (a 1 GB log costs one seek)."""
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - max_bytes))
            return fh.read(max_bytes)
    except FileNotFoundError:
        return b""


def tail_lines(
    path: Path, lines: int, *, chunk: int = 65536, max_bytes: int = 8 << 20
) -> list[str]:
    """The last ``lines`` display lines of a log, reading backwards in chunks."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return []
    with fh:
        size = fh.seek(0, os.SEEK_END)
        pos = size
        data = b""
        while pos > 0 and data.count(b"\n") <= lines and size - pos < max_bytes:
            step = min(chunk, pos)
            pos -= step
            fh.seek(pos)
            data = fh.read(step) + data
    text = strip_ansi(data.decode("utf-8", errors="replace"))
    result = text.split("\n")
    if pos > 0 and result:
        result = result[1:]  # the first line is probably cut
    if result and result[-1] == "":
        result = result[:-1]
    return result[-lines:] if lines > 0 else []


def last_line(path: Path) -> str:
    for line in reversed(tail_lines(path, 20)):
        if line.strip():
            return line.strip()
    return ""
