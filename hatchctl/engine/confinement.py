"""Confining one agent run: its sandbox and process reaper on launch, and after it (``reclaim``)
taking back what it may legitimately change and checking what it may not.

On launch: the run's exchange directory (0700) is made, the refs it must not touch are
snapshotted, a sandboxed run gets a shadow of ``refs/heads/hatch`` holding only its own branch,
and the agent's command is wrapped: in ``bwrap`` where the sandbox is on (its pid namespace:
every descendant dies with the agent), else in the ``reaper`` (a child subreaper: the same).

After a stop (``reclaim``): the worktree's git links are rewritten, the sandboxed branch is taken
back if it is a real commit, and every other ref is compared with the snapshot.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import hatchctl
from hatchctl.config import AgentSection
from hatchctl.engine.deps import Deps
from hatchctl.errors import CommandError, HatchError
from hatchctl.runtime import refguard, sandbox
from hatchctl.state.rows import RunRow


@dataclass(frozen=True)
class Plan:
    mode: str  # bwrap | none
    prefix: list[str]  # put before the agent's own command
    sandbox_argv: list[str] = field(default_factory=list)


def mode_for(deps: Deps, role: str) -> str:
    return sandbox.resolve_mode(getattr(deps.project.config.agents, role).sandbox)


def _git_timeout(deps: Deps) -> float:
    return float(deps.limits.git_timeout)


def _refs_file(deps: Deps, run_id: int) -> Path:
    return deps.project.paths.runs / f"{run_id}.refs"


def prepare(
    deps: Deps,
    *,
    task_id: str,
    role: str,
    run_id: int,
    worktree: Path,
    io_dir: Path,
    readable: list[Path],
) -> Plan:
    """Everything a launch needs before the pane starts. Raises HatchError when the sandbox
    is required but cannot be set up (an infrastructure failure, not the agent's)."""
    paths, timeout = deps.project.paths, _git_timeout(deps)
    root = deps.project.root
    io_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    refs, logs = paths.shadow_refs(task_id), paths.shadow_logs(task_id)
    back = refguard.take_back(root, task_id, refs, timeout)  # an earlier run's commits stay
    if back.moved or back.problem:
        deps.log.info(
            "sandbox_branch_taken_back", task_id=task_id, moved=back.moved, problem=back.problem
        )
    integration = deps.project.config.project.integration_branch
    mode = mode_for(deps, role)
    # (one for-each-ref: the refs to protect and, for the sandbox's shadow, this task's branch)
    protected, tip = refguard.snapshot_with_tip(root, integration, task_id, timeout)
    refguard.save(_refs_file(deps, run_id), protected, mode)
    if mode == "none":
        return Plan("none", reaper_prefix(deps))
    problem = sandbox.probe()
    if problem:
        raise HatchError(f"sandbox = bwrap for the {role} agent, but {problem}")
    common = refguard.common_dir(root, timeout)
    refguard.repair_links(common, worktree, task_id)
    refguard.seed_shadow(root, common, task_id, refs, logs, timeout, tip)
    extra, programs = agent_paths(getattr(deps.project.config.agents, role), role, root)
    profile = sandbox.Profile(
        hatch_dir=paths.hatch,
        workdir=worktree,
        writable=(io_dir, *extra),
        readable=tuple(p for p in readable if p.exists()),
        visible=(*sandbox.default_visible(root, deps.scripts.root), *programs),
        git=sandbox.GitLayout(common, refguard.worktree_gitdir(common, task_id), refs, logs),
    )
    bw = sandbox.argv(profile, [])
    return Plan("bwrap", bw, bw)  # (no reaper: bwrap's pid namespace does its work, below)


# The reaper's start, paid by every launch: -S (no site: its path scan and .pth files) and -c
# (no runpy), the package's own directory given as an argument, put first on sys.path
REAPER_BOOT = (
    "import sys; sys.path[:0] = [sys.argv.pop(1)]; "
    "from hatchctl.runtime.reaper import main; sys.exit(main())"
)
PACKAGE_ROOT = str(Path(hatchctl.__file__).resolve().parent.parent)  # where hatchctl/ is


def reaper_prefix(deps: Deps) -> list[str]:
    """The reaper (a child subreaper: every descendant dies with it) before an unsandboxed
    agent's command; -I: never the worktree's modules (nor $PYTHON* variables). A sandboxed one
    runs without it: bwrap's pid namespace holds every descendant (a double fork, ``setsid``,
    ``env -i`` cannot leave it), ends with the agent (bwrap's init exits with it and the kernel
    kills the rest) and with its pane (``--die-with-parent``); the reaper was one more Python
    start per launch that changed none of that."""
    grace = f"{float(deps.limits.kill_grace):g}"
    return [sys.executable, "-I", "-S", "-c", REAPER_BOOT, PACKAGE_ROOT, "--grace", grace, "--"]


def agent_paths(agent: AgentSection, role: str, root: Path) -> tuple[list[Path], tuple[Path, ...]]:
    """(the extra writable paths, made to exist; what the agent's program needs to see). An
    extra path that would make the project writable is a HatchError."""
    extra = [Path(p).expanduser().absolute() for p in agent.sandbox_writable]
    for w in extra:
        if w == root or root in w.parents or w in root.parents:
            raise HatchError(
                f"[agents.{role}] sandbox_writable {w} would make the project writable"
            )
    sandbox.ensure_dirs(extra)
    programs = tuple(
        root_of
        for a in agent.command
        if a.startswith("/") and Path(a).exists()
        for root_of in sandbox.program_roots(Path(a))
    )
    return extra, programs


@dataclass
class Reclaimed:
    moved: tuple[str, str] | None = None
    problems: list[str] = field(default_factory=list)
    tampered: dict[str, tuple[str, str]] = field(default_factory=dict)
    unrestored: list[str] = field(default_factory=list)
    sandboxed: bool = False


def reclaim(deps: Deps, run: RunRow) -> Reclaimed:
    """Take back a run's branch and check every other ref. Safe to repeat. A change to a
    protected ref by an unsandboxed run is undone; under the sandbox the agent cannot have made
    it (the user or another tool did), so it is only reported."""
    root, paths, timeout = deps.project.root, deps.project.paths, _git_timeout(deps)
    out = Reclaimed()
    worktree = paths.worktree(run.task_id)
    saved = refguard.load(_refs_file(deps, run.id))
    sandboxed = saved is not None and saved[1] == "bwrap"
    out.sandboxed = sandboxed
    try:
        common = refguard.common_dir(root, timeout)
        if worktree.exists():
            refguard.repair_links(common, worktree, run.task_id)
        if sandboxed:
            back = refguard.take_back(root, run.task_id, paths.shadow_refs(run.task_id), timeout)
            out.moved = back.moved
            if back.problem:
                out.problems.append(back.problem)
        if saved is not None:
            before = saved[0]
            integration = deps.project.config.project.integration_branch
            after = refguard.snapshot(root, integration, timeout)
            out.tampered = refguard.tampered(before, after)
            if out.tampered and not sandboxed:
                out.unrestored = refguard.restore(root, out.tampered, timeout)
    except (CommandError, OSError, HatchError) as exc:
        out.problems.append(f"could not check the run's git metadata: {exc}")
    return out
