"""The one place that runs tmux: a private server per project directory (``tmux -L
hatch-<project>-<key>``), every call with a timeout, arguments as lists. Panes are always
targeted by pane id (``%N``), never by name.

Agents are untrusted and project paths are data, so no argument may become tmux syntax:
every argument ending with ``;`` (a command separator for tmux) is passed as ``\\;``, and ``#``
is doubled in the arguments tmux 3.3 format-expands (``-c``, ``-n``, the pipe-pane command;
``-e`` values and a window's command are not expanded: tests/security checks each one).
Every agent window carries the user option ``@hatch_project`` (``tag``), so a reconcile only
touches its own project's panes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hatchctl import logsetup
from hatchctl.errors import CommandError, CommandTimeout, TmuxError, TmuxServerDead
from hatchctl.runtime import proc

AGENT_SESSION = "hatch"
SUPERVISOR_SESSION = "hatch-supervisor"
TAG_OPTION = "@hatch_project"
_FIELDS = (
    "pane_id",
    "pane_pid",
    "pane_dead",
    "session_name",
    "window_name",
    "window_id",
    TAG_OPTION,
)
_FORMAT = "\t".join(f"#{{{f}}}" for f in _FIELDS)
_NO_SERVER = ("no server running", "error connecting to", "server exited", "lost server")


def escape_separator(arg: str) -> str:
    """An argument tmux takes literally: a trailing ``;`` would end the tmux command (and
    start another one from the next argument); ``\\;`` is tmux's literal ``;``."""
    return arg[:-1] + "\\;" if arg.endswith(";") else arg


def escape_format(text: str) -> str:
    """Text tmux takes literally where it expands formats (``#{...}``, ``#(command)``)."""
    return text.replace("#", "##")


def default_tag(socket: str) -> str:
    """The project key a socket name ends with (``hatch-<name>-<key>``, see
    hatchctl.project.tmux_socket): what this project's windows carry in ``@hatch_project``."""
    return socket.rsplit("-", 1)[-1]


@dataclass(frozen=True)
class Pane:
    pane_id: str
    pid: int
    dead: bool
    session: str
    window_name: str
    window_id: str
    tag: str = ""  # @hatch_project of its window: "" for a pane hatchctl did not start


def _parse_pane(line: str) -> Pane | None:
    parts = line.split("\t")
    if len(parts) != len(_FIELDS) or not parts[1].isdigit():
        return None
    return Pane(parts[0], int(parts[1]), parts[2] == "1", parts[3], parts[4], parts[5], parts[6])


class Tmux:
    def __init__(self, socket: str, *, timeout: float = 5.0, tag: str | None = None) -> None:
        self.socket = socket
        self.timeout = timeout
        self.tag = default_tag(socket) if tag is None else tag
        self.log = logsetup.get(component="tmux", socket=socket)

    def _argv(self, *commands: tuple[str, ...] | list[str]) -> list[str]:
        """tmux commands, separated by a bare ``;``; every argument literal (see
        escape_separator)."""
        # -u: without a UTF-8 locale (LANG unset) tmux prints the tabs of -F formats as "_"
        argv = ["tmux", "-u", "-L", self.socket, "-f", "/dev/null"]
        for i, command in enumerate(commands):
            if i:
                argv.append(";")
            argv.extend(map(escape_separator, command))
        return argv

    def run_sequence(self, *commands: list[str]) -> proc.Result:
        """Several tmux commands in one call (one process, one round trip), separated by a
        bare ``;``; every argument of each command stays literal."""
        return self._exec(self._argv(*commands), commands[0][0], None, True)

    def run(self, *args: str, input_text: str | None = None, check: bool = True) -> proc.Result:
        return self._exec(self._argv(args), args[0], input_text, check)

    def _exec(self, argv: list[str], what: str, input_text: str | None, check: bool) -> proc.Result:
        # the server (and so every pane) must not inherit a job marker or another tmux's socket
        env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "HATCH_JOB_KEY")}
        try:
            return proc.run(argv, timeout=self.timeout, env=env, input_text=input_text, check=check)
        except CommandTimeout:
            self.log.warning("tmux_timeout", args=argv[6:], timeout=self.timeout)
            raise TmuxError(f"tmux {what} timed out after {self.timeout:g}s") from None
        except CommandError as exc:
            text = exc.output.lower()
            if exc.returncode == 127:
                raise TmuxError("tmux is not installed (sudo apt-get install -y tmux)") from None
            if any(s in text for s in _NO_SERVER):
                raise TmuxServerDead(f"tmux server {self.socket} is not running") from None
            raise TmuxError(f"tmux {what} failed: {exc.output.strip()[:200]}") from None

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
        # A placeholder window keeps the session alive while no agent runs. One tmux call
        # (was six): the commands after new-session act on its session's window, and the new
        # session's line says the server's pid.
        out = self.run_sequence(
            [
                "new-session",
                "-d",
                "-P",
                "-F",
                "#{pane_id} #{pid}",
                "-s",
                AGENT_SESSION,
                "-n",
                "home",
                "-c",
                escape_format(str(cwd)),
                "--",
                "sleep",
                "infinity",
            ],
            ["set-option", "-w", TAG_OPTION, self.tag],
            ["set-option", "-g", "remain-on-exit", "off"],
            ["set-option", "-g", "history-limit", "20000"],
            ["set-option", "-g", "exit-empty", "off"],
        ).stdout.split()
        pid = int(out[1]) if len(out) == 2 and out[1].isdigit() else None
        if pid is None or not out[0].startswith("%"):
            raise TmuxServerDead(f"tmux server {self.socket} did not start: {out[:2]}")
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
        return [p for p in map(_parse_pane, out.splitlines()) if p is not None]

    def new_window(
        self,
        name: str,
        argv: list[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        session: str = AGENT_SESSION,
        index: int | None = None,
        pipe: str | None = None,
    ) -> Pane:
        """A detached window running ``argv`` directly (tmux execs a multi-argument command
        without a shell), tagged with this project's ``@hatch_project``. Returns its pane.

        The window is tagged before this returns, so before the launch ticket exists: an
        untagged pane (the supervisor died in between) never runs an agent.

        With a free window ``index`` (the run id), creating, tagging and piping the pane's
        output to ``pipe`` (see ``pipe_pane``) are one tmux call: nothing the pane prints
        can be missed by the pipe. Without one (or when it is taken) it takes three."""
        if index is not None:
            try:
                return self._new_window_at(name, argv, cwd, env, session, index, pipe)
            except TmuxError as exc:
                if "in use" not in str(exc):
                    raise
        pane = self._new_window(name, argv, cwd=cwd, env=env, session=session)
        if pipe is not None:
            try:
                self.pipe_pane(pane.pane_id, pipe)
            except TmuxError:
                self.kill_pane(pane.pane_id)
                raise
        return pane

    def _window_args(self, name: str, target: str, cwd: Path, env: Mapping[str, str]) -> list[str]:
        args = ["new-window", "-d", "-P", "-F", _FORMAT, "-t", target, "-n", escape_format(name)]
        args += ["-c", escape_format(str(cwd))]
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]  # not format-expanded by tmux
        return args

    def _new_window_at(
        self,
        name: str,
        argv: list[str],
        cwd: Path,
        env: Mapping[str, str],
        session: str,
        index: int,
        pipe: str | None,
    ) -> Pane:
        target = f"={session}:{int(index)}"
        commands = [
            [*self._window_args(name, target, cwd, env), "--", *argv],
            ["set-option", "-w", "-t", target, TAG_OPTION, self.tag],
        ]
        if pipe is not None:
            commands.append(["pipe-pane", "-o", "-t", target, escape_format(pipe)])
        line = self.run_sequence(*commands).stdout.rstrip("\n")  # the tag field is empty
        pane = _parse_pane(line)
        if pane is None:
            raise TmuxError(f"tmux new-window printed an unexpected line: {line!r}")
        return dataclasses.replace(pane, tag=self.tag)

    def _new_window(
        self,
        name: str,
        argv: list[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        session: str = AGENT_SESSION,
    ) -> Pane:
        args = [
            "new-window",
            "-d",
            "-P",
            "-F",
            _FORMAT,
            "-t",
            f"={session}:",
            "-n",
            escape_format(name),
            "-c",
            escape_format(str(cwd)),
        ]
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]  # not format-expanded by tmux
        line = self.run(*args, "--", *argv).stdout.rstrip("\n")  # the tag field is empty
        pane = _parse_pane(line)
        if pane is None:
            raise TmuxError(f"tmux new-window printed an unexpected line: {line!r}")
        try:
            self.run("set-option", "-w", "-t", pane.pane_id, TAG_OPTION, self.tag)
        except TmuxError as exc:
            if "no such window" in str(exc):  # it already exited: nothing left to tag or run
                return pane
            self.kill_pane(pane.pane_id)
            raise
        return dataclasses.replace(pane, tag=self.tag)

    def start_window(self, session: str, name: str, argv: list[str], *, cwd: Path) -> None:
        """A detached window running ``argv`` in ``session``, created if missing (the
        supervisor's hidden window)."""
        where = ["-n", escape_format(name), "-c", escape_format(str(cwd)), "--", *argv]
        if self.has_session(session):
            self.run("new-window", "-d", "-t", f"={session}:", *where)
        else:
            self.run("new-session", "-d", "-s", session, *where)

    def pipe_pane(self, pane_id: str, shell_command: str) -> None:
        """Send the pane's output to ``shell_command``, which tmux runs through /bin/sh; callers
        quote every path in it (shlex.quote). tmux format-expands the command first: every
        ``#`` is doubled here, so a path holding ``#(...)`` reaches the shell literally."""
        self.run("pipe-pane", "-o", "-t", pane_id, escape_format(shell_command))

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

    def press_enter(self, pane_id: str) -> None:
        self.run("send-keys", "-t", pane_id, "Enter")

    def capture(self, pane_id: str, lines: int = 200) -> str:
        return self.run("capture-pane", "-p", "-J", "-t", pane_id, "-S", f"-{lines}").stdout

    def attach_argv(
        self, pane_id: str, window_id: str | None = None, *, read_only: bool = False
    ) -> list[str]:
        """The command a terminal runs to attach to a pane (used by the UI's `a` key);
        ``read_only`` attaches with ``-r``: the client can watch, and send no keys."""
        ro = ("-r",) if read_only else ()
        if window_id is None:
            return self._argv(("attach-session", *ro, "-t", pane_id))
        return self._argv(("attach-session", *ro, "-t", window_id), ("select-pane", "-t", pane_id))
