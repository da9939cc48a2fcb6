"""What a preset knows about its CLI's screen, used at run time: a known failure text ends the
run with its reason at once (no restarts burnt repeating it), and a prompt on a quiet agent's
screen marks it waiting. The stand-in programs print the real CLI's texts (the claude preset's
own tests check those texts against the real binary)."""

from __future__ import annotations

import sys
from pathlib import Path

from hatchctl.project import Project
from tests.integration.conftest import Projects, drain

ROOT_REFUSAL = (
    "import sys\n"
    "print('--dangerously-skip-permissions cannot be used with root/sudo privileges "
    "for security reasons')\n"
    "sys.exit(1)\n"
)
TRUST_DIALOG = (
    "import signal\n"
    "print('Do you trust the files in this folder?')\n"
    "print(' > 1. Yes, I trust this folder')\n"
    "print('   2. No, exit')\n"
    "signal.pause()\n"
)


def _claude_like(projects: Projects, tmp_path: Path, program: str, **limits: object) -> Project:
    agent = tmp_path / "claude_like.py"
    agent.write_text(program)
    return projects.make(
        {"C": {"sim": {"files": {"c.txt": "c\n"}}}},
        {
            "agents": {
                "factory": {
                    "preset": "claude",
                    "command": [sys.executable, str(agent)],
                    "stop": "exit",
                }
            },
            "limits": {"max_strikes": 1, "restart": {"max_restarts": 3}, **limits},
        },
    )


def test_a_known_failure_text_fails_the_run_with_its_reason_without_restarts(
    projects: Projects, tmp_path: Path
) -> None:
    p = _claude_like(projects, tmp_path, ROOT_REFUSAL)
    _, tasks, deps = drain(p)
    runs = deps.store.runs("C")
    assert len(runs) == 1 and runs[0].reason == "claude_root_refused"
    assert tasks["C"].state == "failed" and tasks["C"].restarts == 0
    assert "IS_SANDBOX" in (tasks["C"].last_error or "")


def test_a_dialog_on_a_quiet_agents_screen_marks_it_waiting(
    projects: Projects, tmp_path: Path
) -> None:
    p = _claude_like(projects, tmp_path, TRUST_DIALOG, idle_timeout="1.5s", stall_after="0.3s")
    _, _tasks, deps = drain(p)
    waiting = [e for e in deps.store.events("C") if e.kind == "agent_waiting"]
    assert waiting and waiting[0].data["source"] == "screen"
    assert "trust this folder" in waiting[0].data["message"]
    assert deps.store.runs("C")[0].reason == "waiting_for_input"


RECONNECTING = (  # codex 0.169.0 with an unreachable endpoint: it never stops printing
    "import time\n"
    "while True:\n"
    "    print('ERROR: Reconnecting... 1/5 (stream disconnected before completion)', flush=True)\n"
    "    time.sleep(0.1)\n"
)


def test_a_failure_an_agent_keeps_printing_ends_the_run_though_it_is_never_idle(
    projects: Projects, tmp_path: Path
) -> None:
    agent = tmp_path / "codex_like.py"
    agent.write_text(RECONNECTING)
    p = projects.make(
        {"C": {"sim": {"files": {"c.txt": "c\n"}}}},
        {
            "agents": {
                "factory": {
                    "preset": "codex",
                    "command": [sys.executable, str(agent)],
                    "env": {"CODEX_API_KEY": "fake"},
                }
            },
            "limits": {"max_strikes": 1, "idle_timeout": "1s", "run_timeout": "60s"},
        },
    )
    _, tasks, deps = drain(p)
    runs = deps.store.runs("C")
    assert [(r.state, r.reason) for r in runs] == [("failed", "codex_unreachable")]
    assert tasks["C"].state == "failed" and tasks["C"].failure_class == "infra"
    assert "keeps reconnecting" in (tasks["C"].last_error or "")
