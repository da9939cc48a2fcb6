"""The one place that runs tmux: a private server (``tmux -L hatch-<project>``), every call with
a timeout, arguments as lists. Panes are always targeted by pane id (``%N``), never by name.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hatchctl import logsetup
from hatchctl.errors import CommandError, CommandTimeout, TmuxError, TmuxServerDead
from hatchctl.runtime import proc

AGENT_SESSION = "hatch"
SUPERVISOR_SESSION = "hatch-supervisor"
_FIELDS = ("pane_id", "pane_pid", "pane_dead", "session_name", "window_name", "window_id")
_FORMAT = "\t".join(f"#{{{f}}}" for f in _FIELDS)
_NO_SERVER = ("no server running", "error connecting to", "server exited", "lost server")


@dataclass(frozen=True)
class Pane:
    pane_id: str
    pid: int
    dead: bool
    session: str
    window_name: str
    window_id: str


class Tmux:
    def __init__(self, socket: str, *, timeout: float = 5.0) -> None:
        self.socket = socket
        self.timeout = timeout
        self.log = logsetup.get(component="tmux", socket=socket)

    def _argv(self, *args: str) -> list[str]:
        return ["tmux", "-L", self.socket, "-f", "/dev/null", *args]

    def run(self, *args: str, input_text: str | None = None, check: bool = True) -> proc.Result:
        # the server (and so every pane) must not inherit a job marker or another tmux's socket
        env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "HATCH_JOB_KEY")}
        try:
            return proc.run(
                self._argv(*args), timeout=self.timeout, env=env, input_text=input_text, check=check
            )
        except CommandTimeout:
            self.log.warning("tmux_timeout", args=list(args), timeout=self.timeout)
            raise TmuxError(f"tmux {args[0]} timed out after {self.timeout:g}s") from None
        except CommandError as exc:
            text = exc.output.lower()
            if exc.returncode == 127:
                raise TmuxError("tmux is not installed (sudo apt-get install -y tmux)") from None
            if any(s in text for s in _NO_SERVER):
                raise TmuxServerDead(f"tmux server {self.socket} is not running") from None
            raise TmuxError(f"tmux {args[0]} failed: {exc.output.strip()[:200]}") from None

    # -- server ----------------------------------------------------------------------------
    def server_pid(self) -> int | None:
        try:
            out = self.run("display-message", "-p", "#{pid}").stdout.strip()
        except TmuxServerDead:
            return None
        return int(out) if out.isdigit() else None

    def ensure_server(self, cwd: Path) -> int:
        """Start the private server with the agents' session if needed; returns the server pid."""
        pid = self.server_pid()
        if pid is not None and self.has_session(AGENT_SESSION):
            return pid
        # A placeholder window keeps the session alive while no agent runs.
        self.run(
            "new-session",
            "-d",
            "-s",
            AGENT_SESSION,
            "-n",
            "home",
            "-c",
            str(cwd),
            "--",
            "sleep",
            "infinity",
        )
        self.run("set-option", "-g", "remain-on-exit", "off")
        self.run("set-option", "-g", "history-limit", "20000")
        self.run("set-option", "-g", "exit-empty", "off")
        pid = self.server_pid()
        if pid is None:
            raise TmuxServerDead(f"tmux server {self.socket} did not start")
        self.log.info("tmux_server_started", pid=pid)
        return pid

    def has_session(self, name: str) -> bool:
        try:
            return self.run("has-session", "-t", f"={name}", check=False).returncode == 0
        except TmuxServerDead:
            return False

    def kill_server(self) -> None:
        with contextlib.suppress(TmuxServerDead):
            self.run("kill-server", check=False)

    # -- panes -----------------------------------------------------------------------------
    def list_panes(self) -> list[Pane]:
        """Every pane of the server in one call."""
        out = self.run("list-panes", "-a", "-F", _FORMAT).stdout
        panes = []
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) != len(_FIELDS) or not parts[1].isdigit():
                continue
            panes.append(
                Pane(parts[0], int(parts[1]), parts[2] == "1", parts[3], parts[4], parts[5])
            )
        return panes

    def new_window(
        self,
        name: str,
        argv: list[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        session: str = AGENT_SESSION,
    ) -> Pane:
        """A detached window running ``argv`` directly (tmux execs a multi-argument command
        without a shell). Returns its pane."""
        args = [
            "new-window",
            "-d",
            "-P",
            "-F",
            _FORMAT,
            "-t",
            f"={session}:",
            "-n",
            name,
            "-c",
            str(cwd),
        ]
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        out = self.run(*args, "--", *argv).stdout.strip().split("\t")
        if len(out) != len(_FIELDS) or not out[1].isdigit():
            raise TmuxError(f"tmux new-window printed an unexpected line: {out!r}")
        return Pane(out[0], int(out[1]), out[2] == "1", out[3], out[4], out[5])

    def pipe_pane(self, pane_id: str, shell_command: str) -> None:
        """tmux runs the pipe command through /bin/sh; callers pass only quoted, validated paths."""
        self.run("pipe-pane", "-o", "-t", pane_id, shell_command)

    def kill_pane(self, pane_id: str) -> None:
        with contextlib.suppress(TmuxError):
            self.run("kill-pane", "-t", pane_id, check=False)

    def send_text(self, pane_id: str, text: str, *, enter: bool = True) -> None:
        """Deliver text literally: through a paste buffer (bracketed paste), never as key names."""
        buffer = f"hatch-{pane_id.lstrip('%')}"
        self.run("load-buffer", "-b", buffer, "-", input_text=text)
        self.run("paste-buffer", "-p", "-d", "-b", buffer, "-t", pane_id)
        if enter:
            self.run("send-keys", "-t", pane_id, "Enter")

    def capture(self, pane_id: str, lines: int = 200) -> str:
        return self.run("capture-pane", "-p", "-J", "-t", pane_id, "-S", f"-{lines}").stdout

    def attach_argv(self, pane_id: str, window_id: str) -> list[str]:
        """The command a terminal runs to attach to a pane (used by the UI's `a` key)."""
        return self._argv("attach-session", "-t", window_id, ";", "select-pane", "-t", pane_id)
