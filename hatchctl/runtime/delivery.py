"""Text delivered to an agent's pane the way a real TUI accepts it, and confirmed.

A paste followed by Enter a moment later is often left unsubmitted by a busy TUI (Claude Code:
Enter ~0.1 s after a paste is dropped; 0.3 s+ works), and a paste right after a Stop hook can
arrive before the input box is back. So: wait ``settle``, paste (bracketed, literal), wait
``submit_delay``, press Enter, then wait for a confirmation; unconfirmed, press Enter again
(and paste again when the screen no longer shows the text), with a growing delay, ``tries``
times in all. The result says how it went; the caller records ``delivered`` or
``delivery_failed``.

Confirmations: ``submitted`` (the agent's UserPromptSubmit hook wrote its signal file after the
paste: Claude Code), else the pane's log grew after Enter by more than an echo (the agent
answered).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hatchctl.errors import TmuxError
from hatchctl.runtime.tmux import Tmux

ECHO_BYTES = 64  # the terminal echoing a short line back is not an answer
BRACKETED_PASTE_ON = b"\x1b[?2004h"  # a TUI that reads pastes is ready when it turns this on


@dataclass(frozen=True)
class Timing:
    settle: float = 0.3  # before the paste: the agent's input box comes back after a hook
    submit_delay: float = 0.5  # paste -> Enter
    confirm: float = 3.0  # how long one try waits for its confirmation
    tries: int = 4
    # a first paste waits (at most this long) for the agent to turn bracketed paste on: pasted
    # earlier, the terminal echoes it and the agent reads it as typed input when it starts
    ready: float = 0.0


@dataclass(frozen=True)
class Delivered:
    ok: bool
    enters: int
    pastes: int
    seconds: float
    how: str  # hook | output | "" when it failed
    error: str = ""


def _mtime(path: Path | None) -> float:
    if path is None:
        return 0.0
    try:
        return path.lstat().st_mtime
    except FileNotFoundError:
        return 0.0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def pending_on_screen(screen: str, text: str) -> bool:
    """Any of the text (or Claude Code's placeholder for a long paste) is still on the screen:
    pasting again would deliver it twice."""
    shown = [ln for ln in screen.splitlines() if ln.strip()]
    pieces = [ln.strip()[:40] for ln in text.splitlines() if len(ln.strip()) >= 4][:5]
    return any("[Pasted text" in ln or any(p in ln for p in pieces) for ln in shown)


def _wait_ready(
    log: Path, timeout: float, sleep: Callable[[float], None], clock: Callable[[], float]
) -> bool:
    """Until the pane's log shows bracketed paste turned on (or ``timeout``); each poll reads
    only what was appended since the last (plus a few bytes, for a sequence split across)."""
    deadline = clock() + timeout
    seen, carry = 0, b""
    while True:
        try:
            with log.open("rb") as f:
                f.seek(seen)
                chunk = carry + f.read(4 * 1024 * 1024)
            if BRACKETED_PASTE_ON in chunk:
                return True
            seen += len(chunk) - len(carry)
            carry = chunk[-(len(BRACKETED_PASTE_ON) - 1) :]
        except FileNotFoundError:
            pass
        if clock() >= deadline:
            return False
        sleep(0.05)


def deliver(
    tmux: Tmux,
    pane_id: str,
    text: str,
    *,
    log: Path,
    submitted: Path | None,
    timing: Timing = Timing(),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Delivered:
    start = clock()
    enters = pastes = 0
    since = time.time()  # hook files carry wall-clock mtimes
    try:
        if timing.ready > 0:
            _wait_ready(log, timing.ready, sleep, clock)
        sleep(timing.settle)
        for attempt in range(timing.tries):
            if attempt == 0 or not pending_on_screen(tmux.capture(pane_id, 40), text):
                tmux.send_text(pane_id, text, enter=False)
                pastes += 1
            sleep(timing.submit_delay * (attempt + 1))
            before = _size(log)
            tmux.press_enter(pane_id)
            enters += 1
            deadline = clock() + timing.confirm * (attempt + 1)
            while clock() < deadline:
                if submitted is not None and _mtime(submitted) >= since:
                    return Delivered(True, enters, pastes, clock() - start, "hook")
                if submitted is None and _size(log) > before + ECHO_BYTES:
                    return Delivered(True, enters, pastes, clock() - start, "output")
                sleep(0.05)
    except TmuxError as exc:
        return Delivered(False, enters, pastes, clock() - start, "", str(exc))
    return Delivered(False, enters, pastes, clock() - start, "", "no confirmation")
