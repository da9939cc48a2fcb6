"""Delivery that a real TUI accepts: a raw-mode input box that drops an Enter arriving too soon
after a paste (as Claude Code does), and the hook that confirms a submission."""

from __future__ import annotations

import sys
from pathlib import Path

from hatchctl.project import Project
from tests.integration.conftest import Projects, drain, kinds

# A raw-mode "input box": bracketed pastes are collected; an Enter within 0.3 s of the paste's
# end is dropped (left unsubmitted); a later Enter submits (prints SUBMITTED and the first line).
PICKY_TUI = r"""
import os, sys, termios, time, tty
fd = sys.stdin.fileno()
tty.setraw(fd)
sys.stdout.write("\x1b[?2004h> ")  # bracketed paste on, like a real TUI
sys.stdout.flush()
buf, box, pasting, pasted_at = b"", b"", False, 0.0
while True:
    ch = os.read(fd, 4096)
    if not ch:
        break
    buf += ch
    while buf:
        if buf.startswith(b"\x1b[200~"):
            pasting, buf = True, buf[6:]
        elif buf.startswith(b"\x1b[201~"):
            pasting, buf, pasted_at = False, buf[6:], time.monotonic()
            sys.stdout.write("[Pasted text]\r\n> ")
            sys.stdout.flush()
        elif pasting:
            box, buf = box + buf[:1], buf[1:]
        elif buf[:1] == b"\r":
            buf = buf[1:]
            early = time.monotonic() - pasted_at < 0.3
            sys.stdout.write("(enter dropped)\r\n> " if early else "")
            if not early and box:
                first = box.decode(errors="replace").splitlines()[0]
                sys.stdout.write("SUBMITTED " + first + "\r\n" + "ok " * 40 + "\r\n")
                sys.stdout.flush()
                time.sleep(0.2)
                termios.tcsetattr(fd, termios.TCSANOW, termios.tcgetattr(fd))
                sys.exit(0)
            sys.stdout.flush()
        else:
            buf = buf[1:]
"""


def _project(projects: Projects, tmp_path: Path, tries: int) -> Project:
    agent = tmp_path / "picky_tui.py"
    agent.write_text(PICKY_TUI)
    return projects.make(
        {"P": {"body": "Build the thing.\nSecond line."}},
        {
            "agents": {
                "factory": {"command": [sys.executable, str(agent)], "prompt_delivery": "paste"}
            },
            "limits": {
                "submit_delay": "0.05s",
                "delivery_confirm": "0.3s",
                "delivery_tries": tries,
                "max_strikes": 1,
                "restart": {"max_restarts": 0},
            },
        },
    )


def test_an_enter_dropped_by_the_tui_is_pressed_again_and_the_prompt_lands_once(
    projects: Projects, tmp_path: Path
) -> None:
    p = _project(projects, tmp_path, tries=4)
    _, _, deps = drain(p)
    ev = [e for e in deps.store.events("P") if e.kind in ("delivered", "delivery_failed")]
    assert [e.kind for e in ev] == ["delivered"], ev
    assert ev[0].data["kind"] == "prompt" and ev[0].data["how"] == "output"
    assert ev[0].data["pastes"] == 1 and ev[0].data["enters"] >= 2  # the first Enter was lost
    log = (p.root / deps.store.runs("P")[0].log_path).read_text(errors="replace")
    assert "(enter dropped)" in log and log.count("SUBMITTED") == 1


def test_a_prompt_that_never_lands_is_delivery_failed_not_a_silent_stall(
    projects: Projects, tmp_path: Path
) -> None:
    p = _project(projects, tmp_path, tries=1)
    _, tasks, deps = drain(p)
    assert "delivery_failed" in kinds(deps, "P")
    run = deps.store.runs("P")[0]
    assert run.reason == "delivery_failed"
    assert tasks["P"].state == "failed"
