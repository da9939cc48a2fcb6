"""Real agent CLIs driven through hatchctl against a fake model API on 127.0.0.1.

Claude Code runs with a private HOME (never the user's ~/.claude.json) seeded so that it starts
straight into its input box: onboarding done, the fake API key approved, the bypass-permissions
warning accepted, the project's repository trusted (a git worktree takes its trust from
its main repository). That HOME is the one path outside the worktree
its sandbox may write (``sandbox_writable``).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hatchctl.project import Project
from hatchctl.runtime.tmux import Tmux
from tests.agents.fake_anthropic import FakeAnthropic
from tests.integration.conftest import Projects

ROOT = Path(__file__).resolve().parents[2]
CLAUDE = Path(
    os.environ.get("HATCH_CLAUDE_BIN", ROOT / "tools/agent-clis/node_modules/.bin/claude")
)
API_KEY = "sk-ant-fake-0123456789abcdefghij"  # Claude Code remembers approvals by the last 20
HOOK_EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PermissionRequest",
    "Notification",
    "Stop",
    "SessionEnd",
)
SUMMARY_TIMEOUT = 15.0
# fast and bounded: a run that goes wrong fails within seconds, never waits for a default
CLAUDE_LIMITS: dict[str, Any] = {
    "max_active": 1,
    "max_strikes": 1,
    "run_timeout": "60s",
    "idle_timeout": "20s",
    "summary_timeout": f"{SUMMARY_TIMEOUT:g}s",
    "summary_requests": 1,
    "restart": {"max_restarts": 0},
}


@pytest.fixture
def claude_cli() -> Path:
    if not (CLAUDE.exists() and os.access(CLAUDE, os.X_OK)):
        pytest.skip(f"the Claude Code CLI is not installed at {CLAUDE} (run tools/bootstrap.sh)")
    return CLAUDE


class ClaudeHome:
    """A private HOME for Claude Code. Every hook event it fires is appended, one JSON payload a
    line, to ``hooks.jsonl`` (user-level hooks run besides hatchctl's project hooks)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.trusted: list[Path] = []
        (path / ".claude").mkdir(parents=True, exist_ok=True)
        self.log = path / "hooks.jsonl"
        log = shlex.quote(str(self.log))
        hooks = {
            event: [
                {
                    "matcher": "",
                    "hooks": [{"type": "command", "command": f"{{ cat; echo; }} >> {log}"}],
                }
            ]
            for event in HOOK_EVENTS
        }
        settings = {"skipDangerousModePermissionPrompt": True, "hooks": hooks}
        (path / ".claude" / "settings.json").write_text(json.dumps(settings, indent=2))
        self._write_state()

    def _write_state(self) -> None:
        state = {
            "hasCompletedOnboarding": True,
            "lastOnboardingVersion": "2.1.332",
            "customApiKeyResponses": {"approved": [API_KEY[-20:]], "rejected": []},
            "projects": {str(p): {"hasTrustDialogAccepted": True} for p in self.trusted},
        }
        (self.path / ".claude.json").write_text(json.dumps(state, indent=2))

    def trust(self, *paths: Path) -> None:
        self.trusted.extend(paths)
        self._write_state()

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        out = []
        for line in self.log.read_text().splitlines():
            if line.strip():
                doc = json.loads(line)
                if name is None or doc.get("hook_event_name") == name:
                    out.append(doc)
        return out


@pytest.fixture
def claude_home(tmp_path: Path) -> ClaudeHome:
    return ClaudeHome(tmp_path / "claude-home")


def claude_agent(
    claude: Path,
    api: FakeAnthropic,
    home: ClaudeHome,
    *,
    args: tuple[str, ...] = ("--dangerously-skip-permissions",),
    delivery: str = "argument",
) -> dict[str, Any]:
    """An [agents.<role>] table running the real Claude Code against ``api``."""
    return {
        "command": [str(claude), *args],
        "stop": "claude-hook",
        "prompt_delivery": delivery,
        "sandbox_writable": [str(home.path)],
        "env": {
            "HOME": str(home.path),
            "ANTHROPIC_BASE_URL": api.url,
            "ANTHROPIC_API_KEY": API_KEY,
            "IS_SANDBOX": "1",  # --dangerously-skip-permissions refuses root without it
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            # else each start clones Anthropic's plugin marketplace from GitHub (ssh, then https)
            "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL": "1",
        },
    }


class PaneRecorder:
    """Keeps every distinct screen of a project's agent panes (``tmux capture-pane``) while a
    supervisor runs, so a test can show what an agent displayed after its pane is gone (for
    failure messages: 4 looks a second are plenty, each is tmux client processes)."""

    def __init__(self, project: Project, interval: float = 0.25) -> None:
        self.tmux = Tmux(project.tmux_socket, timeout=5)
        self.interval = interval
        self.screens: dict[str, list[tuple[float, str]]] = {}
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                panes = self.tmux.list_panes()
            except Exception:
                panes = []
            for pane in panes:
                if pane.window_name == "home" or pane.dead:
                    continue
                try:
                    screen = self.tmux.capture(pane.pane_id, lines=0)
                except Exception:
                    continue
                with self._cond:
                    seen = self.screens.setdefault(pane.window_name, [])
                    if screen.strip() and (not seen or seen[-1][1] != screen):
                        seen.append((time.monotonic(), screen))
                        self._cond.notify_all()
            self._stop.wait(self.interval)

    def __enter__(self) -> PaneRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def all(self, window_prefix: str = "") -> list[str]:
        with self._cond:
            return [
                s
                for name, screens in self.screens.items()
                if name.startswith(window_prefix)
                for _, s in screens
            ]

    def find(self, text: str, window_prefix: str = "") -> str | None:
        for screen in self.all(window_prefix):
            if text in screen:
                return screen
        return None


def tidy(screen: str) -> str:
    """A capture without its blank lines and trailing spaces (for reports and messages)."""
    return "\n".join(line.rstrip() for line in screen.splitlines() if line.strip())


@pytest.fixture
def projects(tmp_path: Path) -> Iterator[Projects]:
    ps = Projects(tmp_path)
    yield ps
    ps.cleanup()


def git_out(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()


class Approver:
    """Answers "1. Yes" (Enter) in a project's agent pane once hatchctl has recorded that its
    run waits for input (an ``agent_waiting`` event), as a human who attached would."""

    def __init__(self, project: Project, timeout: float = 30.0) -> None:
        self.project = project
        self.timeout = timeout
        self.error: str | None = None
        self.waited_for: float | None = None  # seconds from the run's start to agent_waiting
        self.dialog: str | None = None  # the pane as it was when the approver answered
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        store = self.project.open_store()
        deadline = time.monotonic() + self.timeout
        while not self._stop.is_set():
            waiting = [e for e in store.events() if e.kind == "agent_waiting"]
            if waiting:
                run = store.run(waiting[0].run_id or 0)
                if run is None or not run.pane_id:
                    self.error = f"agent_waiting names no live run: {waiting[0]}"
                    return
                self.waited_for = waiting[0].at - (run.running_at or run.started_at)
                tmux = Tmux(self.project.tmux_socket)
                # as a person would: look at the dialog first (kept for the test), then answer
                while time.monotonic() < deadline and not self._stop.is_set():
                    screen = tmux.capture(run.pane_id, 60)
                    if "Do you want" in screen:
                        self.dialog = screen
                        break
                    self._stop.wait(0.05)
                tmux.run("send-keys", "-t", run.pane_id, "Enter")
                return
            if time.monotonic() > deadline:
                self.error = f"no agent_waiting event within {self.timeout:g}s"
                return
            self._stop.wait(0.05)

    def __enter__(self) -> Approver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
