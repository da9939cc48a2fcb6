"""Launch agent runs (ending them: engine/runend.py).

Launch protocol (crash-safe, never starts an agent twice):
1. the run row is committed in state ``starting``;
2. a tmux window runs ``run_agent.sh``, which waits for the run's ticket file;
3. pipe-pane sends the pane's output to the run's log (before the agent can print anything);
4. the ticket is written (atomic rename); the wrapper claims it with an atomic rename and starts
   the agent. A supervisor that restarts mid-launch cancels an unclaimed ticket the same way, so
   exactly one of "agent started" and "launch cancelled" happens.
"""

from __future__ import annotations

import contextlib
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hatchctl import agents
from hatchctl.engine import confinement, runend
from hatchctl.engine.deps import Deps
from hatchctl.engine.prompt import load_template, render
from hatchctl.errors import HatchError, TmuxError
from hatchctl.hosts.base import Host
from hatchctl.hosts.ssh import SshHost
from hatchctl.state.atomicfile import write_atomic
from hatchctl.state.ids import run_name
from hatchctl.state.rows import RunRow, TaskRow
from hatchctl.state.spec import TaskSpec


class LaunchFailed(HatchError):
    """tmux could not start the run's pane (an infrastructure failure)."""


def _rel(deps: Deps, path: Path) -> str:
    return str(path.relative_to(deps.project.root))


def write_launch_file(path: Path, data: bytes) -> None:
    """A launch's prompt or ticket: ``write_atomic`` (a private temp file made afresh, never
    through a link, renamed over ``path``: readers see all of it or nothing) without its fsync.
    Every reader of these files dies with the machine (the wrapper that claims the ticket, the
    agent and the paste that read the prompt, a host's copy made right after, from the page
    cache); a supervisor that crashes loses nothing (the kernel has them), and after an OS
    crash no run is resumed from them (every run is crashed, a relaunch writes its own). The
    fsync was two disk waits per launch in the supervisor's loop, serial."""
    write_atomic(path, data, durable=False)


PROMPT_INLINE_MAX = 64 * 1024  # bytes; one argv string is capped at 128 KiB (MAX_ARG_STRLEN)


def _delivered_prompt(prompt: Path, text: str, shown: Path | None = None) -> Path:
    """What the agent is given as its prompt (argument or paste): the prompt itself, or, when it
    is too long for one argument or a sane paste, a pointer to the prompt file (named as the
    agent sees it: ``shown``, on its host)."""
    size = len(text.encode())
    if size <= PROMPT_INLINE_MAX:
        return prompt
    pointer = prompt.with_name(prompt.stem + ".pointer.md")
    write_launch_file(
        pointer,
        (
            f"hatchctl: your instructions are too long for a command line ({size} bytes). "
            f"Read them in full from {shown or prompt} (also $HATCH_PROMPT_FILE) before "
            "anything else, and follow them exactly.\n"
        ).encode(),
    )
    return pointer


@dataclass(frozen=True)
class Pending:
    """A run committed in state ``starting`` whose pane is still to open (``open_pane``)."""

    run: RunRow
    task: TaskRow
    spec: TaskSpec
    worktree: Path
    prompt: Path
    delivered: Path
    handover: Path | None
    host: SshHost | None


@dataclass(frozen=True)
class Opened:
    """The run's pane, open, its wrapper waiting for the ticket."""

    pane_id: str
    pane_pid: int | None
    mode: str  # the sandbox: bwrap | none


def begin(
    deps: Deps,
    task: TaskRow,
    spec: TaskSpec,
    role: str,
    iteration: int,
    attempt: int,
    *,
    resume_note: str = "",
    host: Host | None = None,
) -> Pending:
    """The run's prompt written and its row committed in state ``starting`` (on ``host``:
    placement's choice; None or ``local``: this machine; on an SSH host the prompt names the
    host's paths). Then ``open_pane`` and ``finish`` (engine/remotelaunch.py's on an SSH host),
    the first in a job of engine/launching.py."""
    project, paths = deps.project, deps.project.paths
    agent = getattr(project.config.agents, role)
    worktree = Path(task.worktree or paths.worktree(task.id))
    ssh = host if isinstance(host, SshHost) else None

    def where(path: Path) -> Path:  # the path as the agent sees it, on its host
        return path if ssh is None else Path(deps.remote.on_host(ssh, path))

    name = run_name(task.id, role, iteration, attempt)
    log = paths.run_log(task.id, role, iteration, attempt)
    stop = paths.stop_file(task.id, role, iteration, attempt)
    summary = paths.summary_file(task.id, role, iteration)
    prompt = paths.prompt_file(task.id, role, iteration, attempt)
    if role == "qa":
        handover: Path | None = paths.summary_file(task.id, "factory", iteration)
    else:
        handover = paths.handover_file(task.id, "factory", iteration) if iteration > 1 else None
    template = load_template(role, agent.prompt_template, project.root)
    text = render(
        template,
        spec=spec,
        task=task,
        role=role,
        iteration=iteration,
        attempt=attempt,
        worktree=where(worktree),
        summary_file=where(summary),
        stop_file=where(stop),
        handover_file=where(handover) if handover else None,
        resume_note=resume_note,
    )
    prompt.parent.mkdir(parents=True, exist_ok=True)
    write_launch_file(prompt, text.encode())
    delivered = _delivered_prompt(prompt, text, where(prompt))
    stop.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    stop.unlink(missing_ok=True)
    with deps.store.tx() as tx:
        run = tx.insert_run(
            task_id=task.id,
            role=role,
            iteration=iteration,
            attempt=attempt,
            window_name=name,
            log_path=_rel(deps, log),
            stop_path=_rel(deps, stop),
            summary_path=_rel(deps, summary),
            prompt_path=_rel(deps, delivered),
            host=ssh.name if ssh is not None else None,
        )
        tx.update_task(task.id, phase=role, attempt=attempt, resume_phase=None, next_retry_at=None)
        if delivered != prompt:
            tx.event(
                "prompt_by_file",
                task_id=task.id,
                run_id=run.id,
                data={"bytes": len(text.encode()), "limit": PROMPT_INLINE_MAX},
            )
    return Pending(run, task, spec, worktree, prompt, delivered, handover, ssh)


def open_pane(deps: Deps, p: Pending) -> Opened:
    """Sandbox, preset checks and the tmux window of a local run, its wrapper left waiting for
    the ticket. Touches no store (it runs in a job's thread); a failure is LaunchFailed, its
    pane closed."""
    run, task, worktree, name = p.run, p.task, p.worktree, p.run.window_name
    paths = deps.project.paths
    agent = getattr(deps.project.config.agents, run.role)
    stop = paths.stop_file(task.id, run.role, run.iteration, run.attempt)
    try:
        plan = confinement.prepare(
            deps,
            task_id=task.id,
            role=run.role,
            run_id=run.id,
            worktree=worktree,
            io_dir=stop.parent,
            readable=[p.prompt, p.delivered, *([p.handover] if p.handover else [])],
        )
    except (HatchError, OSError) as exc:
        raise LaunchFailed(f"could not launch {name}: cannot confine the agent: {exc}") from None
    preset = agents.for_agent(agent)
    ctx = agents.LaunchContext(
        sandbox=plan.mode,
        env=agents.agent_env(agent),
        command=tuple(agent.command),
        worktree=worktree,
        role=run.role,
    )
    try:
        refusal = preset.preflight(ctx)  # e.g. aider without a key would wait for a browser
        if refusal is None:
            preset.prepare_worktree(worktree, ctx.env)  # e.g. Claude Code's workspace trust
    except (HatchError, OSError) as exc:
        refusal = f"cannot prepare the worktree for {preset.name}: {exc}"
    if refusal is not None:
        raise LaunchFailed(f"could not launch {name}: {refusal}")
    env = {
        **run_env(
            deps, run, task, p.spec, _here, files=(worktree, p.prompt, p.delivered, p.handover)
        ),
        "HATCH_SANDBOX": plan.mode,
        # run_agent.sh puts this first on PATH so the agent finds this hatchctl (`hatchctl
        # sim-agent`); tmux itself overrides PATH given with -e by the client's PATH
        "HATCH_BIN_DIR": str(Path(sys.executable).parent),
        **agents.launch_env(agent, ctx),  # e.g. IS_SANDBOX=1 for Claude Code under bwrap
        **agent.env,
    }
    argv = ["bash", str(deps.scripts.path("agent/run_agent.sh")), *plan.prefix, *agent.command]
    log = paths.run_log(task.id, run.role, run.iteration, run.attempt)
    pane = None
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        pane = deps.tmux.new_window(
            name,
            argv,
            cwd=worktree,
            env=env,
            index=run.id,  # one tmux call: window, tag and log pipe
            pipe=f"exec cat >> {shlex.quote(str(log))}",
        )
    except (TmuxError, OSError) as exc:
        if pane is not None:
            with contextlib.suppress(TmuxError):
                deps.tmux.kill_pane(pane.pane_id)
        raise LaunchFailed(f"could not launch {name}: {exc}") from None
    return Opened(pane.pane_id, pane.pid, plan.mode)


def _here(path: Path) -> Path:
    return path


def finish(deps: Deps, p: Pending, opened: Opened) -> RunRow | None:
    """The ticket written (the wrapper starts the agent) and the run ``running``; None, its pane
    closed, when the run ended while its pane opened (a kill, ``down``)."""
    current = deps.store.run(p.run.id)
    if current is None or current.state != "starting":
        with contextlib.suppress(TmuxError):
            deps.tmux.kill_pane(opened.pane_id)
        return None
    ticket = f"run_id={p.run.id} task={p.task.id} role={p.run.role}\n"
    write_launch_file(deps.project.paths.ticket(p.run.id), ticket.encode())
    return running(deps, p.run, opened.pane_id, opened.pane_pid, {"sandbox": opened.mode})


def run_env(
    deps: Deps,
    run: RunRow,
    task: TaskRow,
    spec: TaskSpec,
    where: Callable[[Path], Path],
    *,
    files: tuple[Path, Path, Path, Path | None],
) -> dict[str, str]:
    """The HATCH_* variables of a run (README's agent contract), its paths as ``where`` maps
    them onto its host. ``files``: worktree, prompt, delivered prompt, handover."""
    project, paths = deps.project, deps.project.paths
    agent = getattr(project.config.agents, run.role)
    worktree, prompt, delivered, handover = files
    task_id, role, iteration, attempt = run.task_id, run.role, run.iteration, run.attempt
    summary = paths.summary_file(task_id, role, iteration)
    stop = paths.stop_file(task_id, role, iteration, attempt)
    spec_file = Path(spec.path) if Path(spec.path).is_absolute() else project.root / spec.path
    return {
        "HATCH_RUN_ID": str(run.id),
        "HATCH_RUN_KEY": deps.run_key(run.id),
        "HATCH_RUN_TOKEN": deps.run_token(run.id),
        "HATCH_TASK_ID": task_id,
        "HATCH_ROLE": role,
        "HATCH_ITERATION": str(iteration),
        "HATCH_ATTEMPT": str(attempt),
        "HATCH_WORKTREE": str(where(worktree)),
        "HATCH_SPEC_FILE": str(where(spec_file)),
        "HATCH_PROMPT_FILE": str(where(prompt)),
        "HATCH_SUMMARY_FILE": str(where(summary)),
        "HATCH_STOP_FILE": str(where(stop)),
        "HATCH_HANDOVER_FILE": str(where(handover)) if handover else "",
        "HATCH_STATE_DIR": str(where(paths.hatch)),
        "HATCH_BASE_SHA": task.base_sha or "",
        "HATCH_PROMPT_ARG": "1" if agent.prompt_delivery == "argument" else "0",
        **({"HATCH_PROMPT_DELIVERED": str(where(delivered))} if delivered != prompt else {}),
        "HATCH_STOP_MODE": agent.stop,
        "HATCH_LAUNCH_TIMEOUT": str(int(max(1, deps.limits.launch_timeout))),
    }


def running(
    deps: Deps, run: RunRow, pane_id: str | None, pane_pid: int | None, data: dict[str, Any]
) -> RunRow:
    """The launched pane is up and its ticket written: starting -> running."""
    with deps.store.tx() as tx:
        run = tx.transition_run(
            run.id,
            "starting",
            "running",
            pane_id=pane_id,
            pane_pid=pane_pid,
            running_at=tx.now,
            last_activity_at=tx.now,
            data={"pane_id": pane_id, "window": run.window_name, **data},
        )
        tx.update_task(run.task_id, pane_id=pane_id)
    deps.log.info(
        "run_launched",
        task_id=run.task_id,
        run_id=run.id,
        role=run.role,
        iteration=run.iteration,
        attempt=run.attempt,
        pane_id=pane_id,
        host=run.host or "local",
    )
    return run


def failed(deps: Deps, run_id: int, error: str) -> None:
    """A launch that failed: its ticket cancelled, the run (if still starting) crashed."""
    runend.cancel_ticket(deps, run_id)
    with deps.store.tx() as tx:
        current = tx.run(run_id)
        if current is None or current.state != "starting":
            return
        tx.transition_run(
            run_id,
            "starting",
            "crashed",
            ended_at=tx.now,
            reason="launch_failed",
            data={"error": error[:500]},
        )
