"""``hatchctl`` with no command: make sure a supervisor runs (in a hidden window of the
project's private tmux server, so closing the terminal stops nothing), then open the control
room as a client of it."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from hatchctl.cmds.common import load_project
from hatchctl.cmds.control import send
from hatchctl.errors import HatchError, SupervisorError
from hatchctl.project import Project
from hatchctl.runtime.tmux import SUPERVISOR_SESSION, Tmux
from hatchctl.state.lockfile import probe

if TYPE_CHECKING:
    from hatchctl.tui.app import Sender


def ensure_supervisor(project: Project, *, timeout: float = 20.0) -> int:
    """Start `hatchctl run` in a hidden tmux window unless a supervisor already runs; its pid."""
    info = probe(project.paths.supervisor_lock)
    if info.held and info.pid:
        return info.pid
    specs = project.load_specs()
    if specs.problems:
        raise HatchError(
            f"{len(specs.problems)} problem(s) in the specs, first: {specs.problems[0]} "
            "(run `hatchctl validate`)"
        )
    tmux = Tmux(project.tmux_socket, timeout=project.config.limits.tmux_timeout, tag=project.key)
    tmux.ensure_server(project.root)
    argv = [sys.executable, "-m", "hatchctl", "-C", str(project.root), "run"]
    tmux.start_window(SUPERVISOR_SESSION, "supervisor", argv, cwd=project.root)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = probe(project.paths.supervisor_lock)
        if info.held and info.pid:
            return info.pid
        time.sleep(0.05)
    raise SupervisorError(
        f"the supervisor did not start within {timeout:g}s; see `tmux -L {project.tmux_socket} "
        f"attach -t {SUPERVISOR_SESSION}` and .hatch/logs/orchestrator/hatchctl.jsonl"
    )


def sender_for(project: Project) -> Sender:
    """How the control room's keys reach the supervisor: a queued command and its result; `m`
    passes its text as ``args`` (``{"text": ...}``)."""

    def sender(
        kind: str, task_id: str | None, args: dict[str, str] | None = None, /
    ) -> tuple[bool, str]:
        return send(project, kind, task_id, args=args)

    return sender


def run_ui(project: Project, *, read_only: bool) -> int:
    from hatchctl.tui.app import HatchApp

    if not read_only:
        ensure_supervisor(project)
    store = project.open_store()
    app = HatchApp(
        project, store, send=None if read_only else sender_for(project), read_only=read_only
    )
    app.run()
    if app.exit_note:  # what keeps running, and how to stop it
        print(app.exit_note)
    return 0


def main(args: argparse.Namespace) -> int:
    project = load_project(args)
    if not sys.stdout.isatty() or not sys.stdin.isatty():
        pid = ensure_supervisor(project) if not args.read_only else None
        where = f"supervisor pid {pid} in `tmux -L {project.tmux_socket}`" if pid else "read-only"
        print(f"{project.name}: {where}; no terminal for the control room (use `hatchctl status`)")
        return 0
    return run_ui(project, read_only=args.read_only)
