"""The planner agent: one run that turns a feature description into task specs.

It runs like any agent (``run_agent.sh`` in a tmux window of the project's server, under the
reaper and, where the sandbox is on, bwrap), with role ``planner``: its working directory is the
plan's ``out/`` directory, the only place it may write besides its exchange directory; the
project is read-only to it and ``.hatch/`` is hidden except for those two. Its end is the
``.stop`` file ``run_agent.sh`` (or the agent's stop hook) writes, carrying the plan's token.
What it wrote is checked and held by ``hatchctl.state.plan``; this module only runs it.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from string import Template

from hatchctl import agents
from hatchctl.config import AgentSection
from hatchctl.engine import confinement
from hatchctl.engine.deps import Deps
from hatchctl.engine.jobs import SETTINGS, claude_settings, write_no_follow
from hatchctl.engine.prompt import BUILTIN
from hatchctl.errors import HatchError, SummaryError, TmuxError
from hatchctl.runtime import psinfo, sandbox
from hatchctl.state.ids import PLAN_WINDOW_PREFIX
from hatchctl.state.plan import Feature, PlanDir
from hatchctl.state.summary import read_agent_file


def window_name(name: str) -> str:
    return f"{PLAN_WINDOW_PREFIX}{name}"


@dataclass(frozen=True)
class Outcome:
    ended: str  # exit | hook | timeout | vanished
    exit_code: int | None = None
    detail: str = ""


def prompt_text(
    agent: AgentSection, root: Path, plan: PlanDir, feature: Feature, ids: list[str]
) -> str:
    path = (root / agent.prompt_template) if agent.prompt_template else BUILTIN / "planner.md"
    template = path.read_text(encoding="utf-8")
    return Template(template).safe_substitute(
        feature=feature.name,
        title=feature.title,
        feature_file=str(plan.feature),
        out_dir=str(plan.out),
        root=str(root),
        existing_ids=", ".join(ids) if ids else "(none)",
        description=feature.text,
    )


def _confine(deps: Deps, agent: AgentSection, plan: PlanDir) -> tuple[str, list[str]]:
    """(sandbox mode, the command prefix): bwrap where the sandbox is on, else the reaper
    (confinement.reaper_prefix)."""
    mode = sandbox.resolve_mode(agent.sandbox)
    if mode == "none":
        return mode, confinement.reaper_prefix(deps)
    problem = sandbox.probe()
    if problem:
        raise HatchError(f"sandbox = bwrap for the planner, but {problem}")
    root = deps.project.root
    extra, programs = confinement.agent_paths(agent, "planner", root)
    profile = sandbox.Profile(
        hatch_dir=deps.project.paths.hatch,
        workdir=plan.out,
        writable=(plan.io, *extra),
        readable=(plan.feature, plan.prompt),
        visible=(*sandbox.default_visible(root, deps.scripts.root), *programs),
    )
    return mode, sandbox.argv(profile, [])


def launch(deps: Deps, agent: AgentSection, plan: PlanDir, token: str) -> tuple[str, str]:
    """Start the planner; returns (its run key, its pane id). Raises HatchError when it cannot."""
    if agent.prompt_delivery != "argument":
        raise HatchError(
            "the planner needs an agent that takes its prompt as an argument "
            '(prompt_delivery = "argument")'
        )
    mode, prefix = _confine(deps, agent, plan)
    preset = agents.for_agent(agent)
    ctx = agents.LaunchContext(
        sandbox=mode,
        env=agents.agent_env(agent),
        command=tuple(agent.command),
        worktree=plan.out,
        role="planner",
    )
    refusal = preset.preflight(ctx)
    if refusal is None:
        preset.prepare_worktree(plan.out, ctx.env)  # e.g. Claude Code's folder trust
        if agent.stop == "claude-hook":  # its end is the Stop hook's .stop
            write_no_follow(plan.out, SETTINGS, claude_settings(deps.scripts, ("Stop",)))
    if refusal is not None:
        raise HatchError(f"cannot start the planner: {refusal}")
    run_key = f"{deps.project_key}-plan-{plan.name}-{secrets.token_hex(4)}"
    env = {
        "HATCH_RUN_ID": "1",
        "HATCH_RUN_KEY": run_key,
        "HATCH_RUN_TOKEN": token,
        "HATCH_SANDBOX": mode,
        "HATCH_TASK_ID": plan.name,
        "HATCH_ROLE": "planner",
        "HATCH_ITERATION": "1",
        "HATCH_ATTEMPT": "1",
        "HATCH_WORKTREE": str(plan.out),
        "HATCH_FEATURE_FILE": str(plan.feature),
        "HATCH_PLAN_DIR": str(plan.out),
        "HATCH_PROMPT_FILE": str(plan.prompt),
        "HATCH_SUMMARY_FILE": "",
        "HATCH_STOP_FILE": str(plan.stop),
        "HATCH_STATE_DIR": str(plan.root),  # its ticket: <plan>/runs/1.ticket
        "HATCH_PROMPT_ARG": "1",
        "HATCH_STOP_MODE": agent.stop,
        "HATCH_LAUNCH_TIMEOUT": str(int(max(1, deps.limits.launch_timeout))),
        "HATCH_BIN_DIR": str(Path(sys.executable).parent),
        **agents.launch_env(agent, ctx),
        **agent.env,
    }
    argv = ["bash", str(deps.scripts.path("agent/run_agent.sh")), *prefix, *agent.command]
    deps.tmux.ensure_server(deps.project.root)
    try:
        pane = deps.tmux.new_window(
            window_name(plan.name),
            argv,
            cwd=plan.out,
            env=env,
            pipe=f"exec cat >> {shlex.quote(str(plan.log))}",
        )
    except TmuxError as exc:
        raise HatchError(f"cannot start the planner's window: {exc}") from None
    ticket = plan.runs / "1.ticket"
    ticket.write_text(f"plan={plan.name}\n")
    deps.log.info("planner_launched", plan=plan.name, pane_id=pane.pane_id, sandbox=mode)
    return run_key, pane.pane_id


def read_stop(plan: PlanDir, token: str) -> Outcome | None:
    """The planner's end, when its ``.stop`` exists and carries the plan's token."""
    try:
        doc = json.loads(read_agent_file(plan.stop, ".stop", 64 * 1024))
    except SummaryError as exc:
        if "does not exist" in str(exc):
            return None
        return Outcome("vanished", None, f"unreadable .stop: {exc}")
    except ValueError:
        return Outcome("vanished", None, "the .stop file is not JSON")
    if not isinstance(doc, dict) or doc.get("token") != token:
        return Outcome(
            "vanished", None, "a .stop without the plan's token (not written by hatchctl)"
        )
    code = doc.get("exit_code")
    return Outcome(str(doc.get("reason", "exit")), code if isinstance(code, int) else None)


def wait(
    plan: PlanDir, token: str, timeout: float, *, alive: Callable[[], bool], poll: float = 0.05
) -> Outcome:
    """Until the planner stops, its pane is gone, or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    looks = 0
    while True:
        outcome = read_stop(plan, token)
        if outcome is not None:
            return outcome
        looks += 1
        if looks % 20 == 0 and not alive():  # a tmux call: about once a second
            return read_stop(plan, token) or Outcome(
                "vanished", None, "its window closed without a .stop"
            )
        if time.monotonic() >= deadline:
            return Outcome("timeout", None, f"no end after {timeout:g}s")
        time.sleep(poll)


def stop(deps: Deps, run_key: str, pane_id: str) -> None:
    """Kill what is left of the planner (its whole process tree) and close its window."""
    psinfo.kill_agent(run_key, grace=deps.limits.kill_grace)
    with contextlib.suppress(TmuxError):
        deps.tmux.kill_pane(pane_id)


def pane_alive(deps: Deps, pane_id: str) -> bool:
    try:
        return any(p.pane_id == pane_id and not p.dead for p in deps.tmux.list_panes())
    except TmuxError:
        return False
