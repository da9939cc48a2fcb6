"""The control room end to end, as a person sees it: `hatchctl` (no command) on the demo, inside
a pane of a private tmux server (its own socket, no config, 160x45, xterm-256color, colours on),
driven with `send-keys` and read with `capture-pane`. Only basic keys: enter, escape, q."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hatchctl.demo import EXPECTED, write_demo
from hatchctl.errors import TmuxServerDead
from hatchctl.project import tmux_socket
from hatchctl.runtime.scripts import Scripts, builtin_root, unmount_all_under
from hatchctl.runtime.tmux import AGENT_SESSION, Tmux
from hatchctl.state.lockfile import probe
from hatchctl.state.paths import ProjectPaths
from tests.conftest import hatchctl

WIDTH, HEIGHT = 160, 45
# a line the demo's simulated agents print (a step, a progress dot, CALC-001's build output),
# as drawn at the left of a log view; toasts are drawn at the right, so only the left is read
LOG_LINE = re.compile(r"sim-agent \S.*|\.|\[\d{4}\] compiling .*")
LEFT = 90
PACE = 3.0  # CALC-001's factory shows a line every 0.8 s for ~12 s, then its QA for ~12 s


class Screen:
    """A private tmux server with one 160x45 pane running ``argv``."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.socket = f"uie2e-{uuid.uuid4().hex[:10]}"
        # COLUMNS/LINES (pytest-xdist sets 80x24) would override the pane's size in Textual
        drop = ("TMUX", "NO_COLOR", "COLUMNS", "LINES")
        env = {k: v for k, v in os.environ.items() if k not in drop}
        size = ["-x", str(WIDTH), "-y", str(HEIGHT)]
        self.path = self.tmux(
            [
                *["start-server", ";", "set-option", "-g", "default-terminal", "xterm-256color"],
                *[";", "new-session", "-d", "-s", "ui", *size, "-c", str(cwd), "--", *argv],
                *[";", "set-option", "-g", "remain-on-exit", "on"],
                *[";", "display-message", "-p", "#{socket_path}"],
            ],
            env=env,
        ).strip()

    def tmux(self, args: list[str], env: dict[str, str] | None = None) -> str:
        out = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=10,
            env=env,
            check=False,
        )
        assert out.returncode == 0, f"tmux {args[0]}: {out.stderr}"
        return out.stdout

    def keys(self, *keys: str) -> None:
        self.tmux(["send-keys", "-t", "ui", *keys])

    def lines(self, history: bool = False) -> list[str]:
        start = ["-S", "-"] if history else []
        return self.tmux(["capture-pane", "-p", *start, "-t", "ui"]).splitlines()

    def text(self, history: bool = False) -> str:
        return "\n".join(self.lines(history))

    def dead(self) -> bool:
        return self.tmux(["display-message", "-p", "-t", "ui", "#{pane_dead}"]).strip() == "1"

    def kill(self) -> None:
        subprocess.run(
            ["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10, check=False
        )
        if self.path.endswith(self.socket):  # the socket file stays behind otherwise
            Path(self.path).unlink(missing_ok=True)


def wait(
    screen: Screen, predicate: Callable[[], object], what: str, timeout: float = 20.0
) -> object:
    """Poll the pane until ``predicate`` holds; on timeout fail with the screen as it was."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if predicate != screen.dead and screen.dead():  # it crashed: say so at once
            pytest.fail(f"the control room exited while waiting for {what}:\n{screen.text(True)}")
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out waiting for {what}; the screen:\n{screen.text()}")
        time.sleep(0.05)


def log_lines(lines: list[str]) -> Counter[str]:
    """The agents' log lines on screen, counted (the same progress dot may show many times)."""
    found = (line[:LEFT].strip() for line in lines)
    return Counter(line for line in found if LOG_LINE.fullmatch(line))


def new_log_line(screen: Screen, before: Counter[str]) -> Callable[[], list[str]]:
    """A log line that was not on screen before (or one more of a line that was)."""
    return lambda: list((log_lines(screen.lines()) - before).elements())


def agent_panes(root: Path) -> list[str]:
    """The live agents' panes in the demo's own tmux server (not its placeholder window)."""
    try:
        panes = Tmux(tmux_socket(root.name, root)).list_panes()
    except TmuxServerDead:
        return []
    return [
        p.window_name
        for p in panes
        if p.session == AGENT_SESSION and not p.dead and p.window_name != "home"
    ]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Path]:
    root = (tmp_path / f"uidemo-{uuid.uuid4().hex[:8]}").resolve()  # its own project socket
    write_demo(root, pace=PACE)
    try:
        yield root
    finally:
        socket = tmux_socket(root.name, root)
        Tmux(socket).kill_server()
        tmpdir = Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
        (tmpdir / socket).unlink(missing_ok=True)  # tmux leaves the file of a killed server
        with contextlib.suppress(Exception):
            unmount_all_under(Scripts(builtin_root(), timeout=30), root)


def test_control_room_in_tmux_shows_live_logs_and_quits_leaving_the_agents(demo: Path) -> None:
    screen = Screen([sys.executable, "-m", "hatchctl", "-C", str(demo)], demo)
    try:
        # the dashboard: every task of the demo, the supervisor it started
        wait(screen, lambda: all(t in screen.text() for t in EXPECTED), "the demo's task ids")
        assert "supervisor pid" in screen.text()

        # the log tail under the table follows the task under the cursor: the first row, CALC-001
        # (the queue's order: highest priority), which runs first. Lines appear while we watch,
        # drawn, not as blank rows
        wait(screen, lambda: log_lines(screen.lines()), "a log line in the dashboard tail")
        before = log_lines(screen.lines())
        wait(screen, new_log_line(screen, before), "a new line in the dashboard tail", 10)

        # enter: the drill-down opens on its Log tab, which keeps following the agent
        screen.keys("Enter")
        wait(screen, lambda: "Log" in screen.text() and "Events" in screen.text(), "drill-down")
        wait(screen, lambda: log_lines(screen.lines()), "the Log tab's lines")
        before = log_lines(screen.lines())
        wait(screen, new_log_line(screen, before), "a new line in the Log tab", 10)

        # escape: back on the dashboard
        screen.keys("Escape")
        wait(screen, lambda: all(t in screen.text() for t in EXPECTED), "the dashboard again")
        assert "Events" not in screen.text()

        # q: the control room closes and says what keeps running and how to stop it
        screen.keys("q")
        wait(screen, screen.dead, "the control room to exit")
        note = " ".join(screen.text(history=True).split())  # tmux's "Pane is dead" may scroll it
        lock = ProjectPaths(demo).supervisor_lock
        supervisor = probe(lock)
        assert supervisor.held and supervisor.pid  # quitting stopped nothing...
        assert str(supervisor.pid) in note and "running" in note, note  # ...and says so
        assert "hatchctl down" in note and "Traceback" not in note, note

        # hatchctl down: the supervisor and its agents stop
        assert agent_panes(demo)
        out = hatchctl("-C", str(demo), "down", timeout=30)
        assert out.returncode == 0, out.stderr
        wait(screen, lambda: not probe(lock).held, "the supervisor to stop", 15)
        wait(screen, lambda: not agent_panes(demo), "the agents' panes to close", 15)
    finally:
        screen.kill()
