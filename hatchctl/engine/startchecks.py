"""What the supervisor checks once at start-up, before any agent runs: each role's agent command
and required sandbox (one clear line, not three strikes), and the sandbox its acceptance and
regression commands (agent-written code) run in."""

from __future__ import annotations

from hatchctl import agents
from hatchctl.engine.deps import Deps
from hatchctl.errors import ConfigError
from hatchctl.runtime import sandbox
from hatchctl.runtime.acceptance import Confine
from hatchctl.runtime.agentpath import find_agent


def confiner(deps: Deps) -> Confine | None:
    """Acceptance and regression commands run agent-written code: in a sandbox where the
    factory's sandbox is on."""
    if sandbox.resolve_mode(deps.project.config.agents.factory.sandbox) != "bwrap":
        return None
    visible = sandbox.default_visible(deps.project.root, deps.scripts.root)
    return sandbox.confiner(deps.project.paths.hatch, visible)


def check_agents(deps: Deps) -> None:
    """Refuse to start with an agent command that cannot run (one clear line, not 3 strikes)
    or with a required sandbox this machine cannot make."""
    for role in ("factory", "qa"):
        wanted = getattr(deps.project.config.agents, role).sandbox
        problem = sandbox.probe() if wanted != "none" else None
        if wanted == "bwrap" and problem:
            raise ConfigError(
                f'[agents.{role}] sandbox = "bwrap", but {problem} '
                '(or set sandbox = "none" and read docs/security.md)'
            )
        deps.log.info(
            "sandbox_mode",
            role=role,
            wanted=wanted,
            mode=sandbox.resolve_mode(wanted),
            problem=problem,
        )
        agent = getattr(deps.project.config.agents, role)
        ctx = agents.LaunchContext(
            sandbox=sandbox.resolve_mode(wanted),
            env=agents.agent_env(agent),
            command=tuple(agent.command),
            worktree=deps.project.root,
            role=role,
        )
        refusal = agents.for_agent(agent).preflight(ctx)
        if refusal:
            raise ConfigError(f"[agents.{role}] {refusal}")
        exe = agent.command[0]
        found = find_agent(exe, deps.project.root)
        if not found:
            raise ConfigError(
                f"the {role} agent command {exe!r} is not installed, not on PATH or not "
                f"executable (hatch.toml [agents.{role}] command)"
            )
