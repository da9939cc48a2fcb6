"""Command line: parses arguments, builds objects, calls them. No logic of its own."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from hatchctl import __version__
from hatchctl.errors import HatchError


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"hatchctl: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(2)


def _cmd(name: str) -> Callable[[argparse.Namespace], int]:
    """Import a command module lazily: `hatchctl sim-agent` must start in milliseconds."""

    def call(args: argparse.Namespace) -> int:
        module_name, func_name = name.split(":")
        module = __import__(f"hatchctl.cmds.{module_name}", fromlist=[func_name])
        # what start-up allocated (modules, pydantic's schemas: ~40k objects) lives as long as
        # the process: moved out of the collector's sight, then collections again (main)
        gc.freeze()
        gc.enable()
        result: int = getattr(module, func_name)(args)
        return result

    return call


def _duration_arg(text: str) -> float:
    from hatchctl.state.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port_arg(text: str) -> int:
    from hatchctl.cmds.serve import port_arg

    return port_arg(text)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="hatchctl", description="A control room for a team of coding agents.")
    p.add_argument(
        "-C",
        dest="directory",
        metavar="DIR",
        type=Path,
        default=None,
        help="run as if started in DIR (hatch.toml is looked up from there)",
    )
    p.add_argument("--read-only", action="store_true", help="UI: refuse every action")
    p.add_argument("--version", action="version", version=f"hatchctl {__version__}")
    p.set_defaults(func=_cmd("ui:main"))
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    s = sub.add_parser("init", help="create hatch.toml, specs/ and prompt templates here")
    s.add_argument("--name", help="project name (default: the directory name)")
    s.add_argument(
        "--agent",
        choices=["claude", "codex", "aider", "gemini"],
        default=None,
        help="run this agent CLI (its preset, see docs/agents.md); default: the simulated agent",
    )
    s.set_defaults(func=_cmd("setup:init"))

    s = sub.add_parser("validate", help="check hatch.toml and every spec; report all problems")
    s.set_defaults(func=_cmd("inspect:validate"))

    s = sub.add_parser("status", help="tasks, states, strikes and the supervisor")
    s.add_argument("--json", action="store_true", help="one JSON object")
    s.set_defaults(func=_cmd("inspect:status"))

    s = sub.add_parser("events", help="the audit trail")
    s.add_argument("--task", metavar="ID")
    s.add_argument("--json", action="store_true", help="one JSON object per line")
    s.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    s.add_argument("--limit", type=int, default=None, metavar="N", help="only the last N")
    s.set_defaults(func=_cmd("inspect:events"))

    s = sub.add_parser("logs", help="print an agent's pane log (ANSI stripped)")
    s.add_argument("task_id", metavar="ID")
    s.add_argument("--role", choices=["factory", "qa"], default=None)
    s.add_argument("--follow", "-f", action="store_true")
    s.add_argument("--raw", action="store_true", help="raw terminal bytes")
    s.set_defaults(func=_cmd("inspect:logs"))

    s = sub.add_parser("doctor", help="check tmux, git, agents, inotify and mounts")
    s.set_defaults(func=_cmd("inspect:doctor"))

    s = sub.add_parser("hosts", help="every host (local and [hosts.NAME]) with its health")
    s.add_argument("--json", action="store_true", help="one JSON object")
    s.add_argument(
        "--timeout", type=_duration_arg, default=10.0, metavar="DURATION", help="per host (10s)"
    )
    s.set_defaults(func=_cmd("hosts:hosts"))

    s = sub.add_parser(
        "undrain", help="place agents on a host the supervisor drained again (it is fixed)"
    )
    s.add_argument("host", help="the [hosts.NAME] it drained")
    s.set_defaults(func=_cmd("hosts:undrain"))

    s = sub.add_parser("demo", help="write the demo project and run it")
    s.add_argument("--dir", type=Path, default=None, help="where (default: ./demo-project)")
    s.add_argument("--headless", action="store_true", help="no UI, progress on stdout")
    s.add_argument("--keep", action="store_true", help="reuse an existing demo project")
    s.add_argument(
        "--pace",
        type=float,
        default=None,
        help="the simulated agents' speed: 0 full speed (headless default), 2 watchable "
        "(the control room's default), up to 20",
    )
    s.set_defaults(func=_cmd("run:demo"))

    s = sub.add_parser("run", help="run the supervisor in the foreground")
    s.add_argument(
        "--until-drained",
        action="store_true",
        help="exit when no task can make progress (0 = all completed)",
    )
    s.add_argument(
        "--max-time",
        metavar="DURATION",
        type=_duration_arg,
        default=None,
        help="stop the supervisor after this long (agents keep running), e.g. 8h",
    )
    s.add_argument(
        "--resume",
        action="store_true",
        help="resume a paused project first (without it, --until-drained refuses to start)",
    )
    s.set_defaults(func=_cmd("run:run"))

    def task_or_feature(s: argparse.ArgumentParser, feature_help: str) -> None:
        """``ID`` or ``--feature NAME``: exactly one (a usage error otherwise)."""
        g = s.add_mutually_exclusive_group(required=True)
        g.add_argument("task_id", nargs="?", metavar="ID")
        g.add_argument("--feature", metavar="NAME", help=feature_help)

    for name, help_text in (
        ("kill", "kill a task's agent and fail the task (retry brings it back)"),
        ("restart", "kill a task's agent and start it again (no strike)"),
        ("retry", "put a failed or blocked task back in the queue"),
        ("hold", "do not start a task; an active one finishes its agent's run, then waits"),
        ("unhold", "let a held task go on"),
        ("cancel", "stop a task's agents and take it out of the queue (retry brings it back)"),
    ):
        s = sub.add_parser(name, help=help_text)
        if name in ("hold", "unhold"):
            task_or_feature(s, f"{name} every unfinished task of feature NAME")
        else:
            s.add_argument("task_id", metavar="ID")
        s.add_argument("--no-wait", action="store_true", help="do not wait for the result")
        s.set_defaults(func=_cmd(f"control:{name}"))
    for name, help_text in (
        ("pause", "stop starting new agents"),
        ("resume", "start new agents again"),
        ("down", "stop every agent and the supervisor"),
    ):
        s = sub.add_parser(name, help=help_text)
        s.add_argument("--no-wait", action="store_true", help="do not wait for the result")
        s.set_defaults(func=_cmd(f"control:{name}"))

    s = sub.add_parser("forget", help="remove a task whose spec is gone (its branch is kept)")
    s.add_argument("task_id", metavar="ID")
    s.set_defaults(func=_cmd("control:forget"))
    s = sub.add_parser("clean", help="remove the worktrees kept for failed tasks (unmounted first)")
    s.add_argument("--failed", action="store_true", help="failed tasks' worktrees (the default)")
    s.add_argument(
        "--all",
        action="store_true",
        help="every worktree of a task that is not active, and any that belong to no task",
    )
    s.set_defaults(func=_cmd("control:clean"))
    s = sub.add_parser(
        "land", help="bring the integration branch into base_ref (after a preview), or push it"
    )
    s.add_argument("--dry-run", action="store_true", help="show what would land; change nothing")
    s.add_argument("--branch", metavar="NAME", help="push it to this branch of --remote instead")
    s.add_argument("--remote", default="origin", help="the remote for --branch (default origin)")
    s.set_defaults(func=_cmd("land:land"))
    s = sub.add_parser(
        "review", help="the tasks waiting for a person's review, with their diffstat"
    )
    s.add_argument(
        "--feature",
        metavar="NAME",
        help="feature NAME's tasks and states, and the combined diffstat of those in review",
    )
    s.set_defaults(func=_cmd("control:review"))
    s = sub.add_parser("approve", help="approve a task waiting for review: it merges")
    task_or_feature(
        s, "approve every task of feature NAME, only once each waits for review or is completed"
    )
    s.add_argument("--no-wait", action="store_true", help="do not wait for the result")
    s.set_defaults(func=_cmd("control:approve"))
    s = sub.add_parser("reject", help="reject a task waiting for review; the factory gets the note")
    task_or_feature(s, "reject every task of feature NAME that waits for review")
    s.add_argument("--note", required=True, help="what to change (the factory's findings)")
    s.set_defaults(func=_cmd("control:reject"))
    s = sub.add_parser(
        "plan", help="the planner agent turns a feature description into held task specs"
    )
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("feature_file", nargs="?", metavar="FEATURE.md", help="plan this feature")
    g.add_argument("--list", action="store_true", help="the plans waiting for approval")
    g.add_argument("--approve", metavar="NAME", help="put plan NAME's specs into the queue")
    g.add_argument("--reject", metavar="NAME", help="discard plan NAME's specs")
    s.add_argument(
        "--timeout", type=_duration_arg, help="how long the planner may run (default run_timeout)"
    )
    s.set_defaults(func=_cmd("plan:plan"))
    s = sub.add_parser("send", help="paste a message into a task's running agent, confirmed")
    s.add_argument("task_id", metavar="ID")
    s.add_argument("text", nargs="+", metavar="TEXT")
    s.set_defaults(func=_cmd("control:send_message"))

    s = sub.add_parser("ui", help="the control room (what `hatchctl` opens; serve runs it)")
    s.add_argument(  # also after `ui`; SUPPRESS keeps a `--read-only` given before it
        "--read-only", action="store_true", default=argparse.SUPPRESS, help="refuse every action"
    )
    s.set_defaults(func=_cmd("serve:ui"))

    s = sub.add_parser("serve", help="the control room in a browser, on 127.0.0.1")
    s.add_argument("--port", type=_port_arg, default=8000, metavar="N", help="default 8000")
    s.add_argument(
        "--allow-actions",
        action="store_true",
        help="let browser sessions kill, restart, retry and pause (default: read-only)",
    )
    s.set_defaults(func=_cmd("serve:serve"))

    s = sub.add_parser("report", help="write the timeline and a per-task table as one HTML file")
    s.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="where (default: .hatch/exports/report.html)",
    )
    s.set_defaults(func=_cmd("report:report"))

    s = sub.add_parser("scripts", help="list the bash scripts hatchctl runs")
    s.add_argument("--eject", type=Path, metavar="DIR", help="copy them to DIR for customizing")
    s.set_defaults(func=_cmd("setup:scripts"))

    s = sub.add_parser("sim-agent", help="the simulated agent (used by the demo and tests)")
    s.add_argument("prompt", nargs="?", default=None, help="prompt text (ignored)")
    s.add_argument("--interactive", action="store_true", help="pause with a Stop hook, like Claude")
    s.set_defaults(func=_cmd("simagent:main"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    # no collection while the command's modules import (~100 collections of objects that all
    # live on: ~11 ms of a supervisor's start); enabled again once they are (_cmd)
    gc.disable()
    try:
        return _main(argv)
    finally:
        gc.enable()


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # everything hatchctl creates (.hatch/, the db, prompts, summaries, logs, and the tmux
    # server and agents it starts) is private to the user: directories 0700, files 0600
    os.umask(0o077)
    if args.command != "sim-agent":  # the simulated agent logs nothing: no structlog import
        from hatchctl import logsetup

        logsetup.configure(None)  # until a project is known, log nowhere (never the terminal)
    try:
        return int(args.func(args))
    except HatchError as exc:
        sys.stderr.write(f"hatchctl: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("hatchctl: interrupted\n")
        return 130
    except BrokenPipeError:
        return 141
    except Exception as exc:  # a bug: one line for the user, the traceback in the log
        import traceback

        from hatchctl import logsetup

        logsetup.get().error("internal_error", error=repr(exc), tb=traceback.format_exc())
        sys.stderr.write(f"hatchctl: internal error: {type(exc).__name__}: {exc}\n")
        return 70


if __name__ == "__main__":
    raise SystemExit(main())
