"""``hatchctl doctor``: what this machine can and cannot do for hatchctl, checked for real."""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hatchctl.agents import (
    LaunchContext,
    Preset,
    agent_env,
    command_flags,
    for_agent,
    help_argv,
    parse_version,
    unknown_flags,
)
from hatchctl.errors import CommandError
from hatchctl.runtime import proc
from hatchctl.runtime.agentpath import agent_search_path, find_agent

if TYPE_CHECKING:
    from hatchctl.config import AgentSection
    from hatchctl.project import Project


@dataclass(frozen=True)
class Check:
    name: str
    level: str  # ok | warn | fail
    detail: str


def _version_check(name: str, argv: list[str], minimum: tuple[int, int]) -> Check:
    if shutil.which(argv[0]) is None:
        hint = f"install it: sudo apt-get install -y {argv[0]}"
        return Check(name, "fail", f"{argv[0]} not found on PATH ({hint})")
    try:
        out = proc.run(argv, timeout=5).output
    except CommandError as exc:
        return Check(name, "fail", str(exc))
    match = re.search(r"(\d+)\.(\d+)", out)
    if not match:
        return Check(name, "warn", f"cannot read the version from {out!r}")
    version = (int(match.group(1)), int(match.group(2)))
    level = "ok" if version >= minimum else "fail"
    return Check(name, level, f"{out.strip()} (need >= {minimum[0]}.{minimum[1]})")


def _inotify() -> Check:
    base = Path("/proc/sys/fs/inotify")
    try:
        watches = int((base / "max_user_watches").read_text())
        instances = int((base / "max_user_instances").read_text())
    except (OSError, ValueError):
        return Check(
            "inotify",
            "warn",
            "cannot read /proc/sys/fs/inotify; the watcher may fall back to polling",
        )
    level = "ok" if watches >= 8192 and instances >= 16 else "warn"
    return Check("inotify", level, f"max_user_watches={watches} max_user_instances={instances}")


def _mount_probe(script: Path) -> Check:
    with tempfile.TemporaryDirectory(prefix="hatch-doctor-") as tmp:
        src, dst = Path(tmp, "src"), Path(tmp, "dst")
        src.mkdir()
        (src / "probe").write_text("probe\n")
        try:
            out = proc.run(["bash", str(script), str(src), str(dst)], timeout=15)
        except CommandError as exc:
            return Check("read-only mount", "fail", str(exc))
        method = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "unknown"
        unmount = script.parent / "unmount.sh"
        try:
            proc.run(["bash", str(unmount), str(dst)], timeout=15)
        except CommandError as exc:
            return Check(
                "read-only mount", "fail", f"mounted with {method} but unmount failed: {exc}"
            )
    if method == "bind":
        return Check("read-only mount", "ok", "read-only bind mounts work here (method=bind)")
    return Check(
        "read-only mount", "warn", f"bind mounts not permitted; using fallback method={method}"
    )


def _sandbox(project: Project | None, problem: str | None) -> Check:
    wanted = (
        {getattr(project.config.agents, r).sandbox for r in ("factory", "qa")}
        if project is not None
        else {"auto"}
    )
    if problem is None:
        if wanted == {"none"}:
            return Check("sandbox", "warn", 'bwrap works here, but sandbox = "none"')
        return Check("sandbox", "ok", "bwrap sandboxes work here: agents run confined")
    if "bwrap" in wanted:
        return Check("sandbox", "fail", f'sandbox = "bwrap" but {problem}')
    level = "ok" if wanted == {"none"} else "warn"
    return Check(
        "sandbox",
        level,
        f"{problem}; agents run unconfined (they can write the main checkout and .hatch/: "
        "see docs/security.md)",
    )


def run_checks(project: Project | None) -> list[Check]:
    from hatchctl.runtime import sandbox
    from hatchctl.runtime.scripts import scripts_root

    problem = sandbox.probe()
    checks = [
        Check("python", "ok" if sys.version_info >= (3, 11) else "fail", sys.version.split()[0]),
        _version_check("tmux", ["tmux", "-V"], (3, 0)),
        _version_check("git", ["git", "--version"], (2, 25)),
        _inotify(),
        _sandbox(project, problem),
    ]
    if project is not None:
        checks += agent_checks(project, problem)
        from hatchctl.hosts import doctor_checks  # each [hosts.NAME], probed over ssh at once

        checks += [Check(*c) for c in doctor_checks(project)]
    root = scripts_root(
        project.root / project.config.project.scripts_dir
        if project is not None and project.config.project.scripts_dir
        else None
    )
    checks.append(_mount_probe(root / "mount" / "mount_readonly.sh"))
    return checks


# -- agents ------------------------------------------------------------------------------------


def _sandbox_mode(configured: str, problem: str | None) -> str:
    if configured == "auto":
        return "bwrap" if problem is None else "none"
    return configured


def _worktrees(project: Project) -> tuple[Path, ...]:
    from hatchctl.engine.jobs import INTEGRATION_DIR

    try:
        found = sorted(project.paths.worktrees.iterdir())
    except OSError:
        return ()
    return tuple(p for p in found if p.is_dir() and p.name != INTEGRATION_DIR)


def _same_agent(a: AgentSection, b: AgentSection) -> bool:
    keys = ("preset", "command", "env", "sandbox", "stop", "prompt_delivery", "sandbox_writable")
    return all(getattr(a, k) == getattr(b, k) for k in keys)


class _CliCache:
    """One ``--version`` and one ``--help`` per program and subcommand, for both roles."""

    def __init__(self) -> None:
        self.outputs: dict[tuple[str, ...], str | CommandError] = {}

    def output(self, argv: list[str], env: dict[str, str]) -> str:
        key = tuple(argv)
        if key not in self.outputs:
            try:
                self.outputs[key] = proc.run(argv, timeout=30, env=env).output
            except CommandError as exc:
                self.outputs[key] = exc
        out = self.outputs[key]
        if isinstance(out, CommandError):
            raise out
        return out


def _preset_cli(
    name: str, preset: Preset, agent: AgentSection, exe: str, env: dict[str, str], cli: _CliCache
) -> list[Check]:
    """The installed CLI against the preset: its version, and every flag of the command in its
    own ``--help``."""
    out = []
    try:
        found = parse_version(cli.output([exe, "--version"], env))
    except CommandError as exc:
        found, out = None, [Check(f"{name} version", "warn", f"`--version` failed: {exc}")]
    if found is not None:
        same = found == preset.version
        detail = f"{preset.title} {found}" + (
            "" if same else f" (the preset was written for {preset.version}: {preset.install})"
        )
        out.append(Check(f"{name} version", "ok" if same else "warn", detail))
    argv = help_argv(agent.command, exe)
    shown = " ".join([agent.command[0], *argv[1:]])
    try:
        text = cli.output(argv, env)
    except CommandError as exc:
        return [*out, Check(f"{name} flags", "fail", f"`{shown}` failed: {exc}")]
    unknown = unknown_flags(agent.command, text)
    if unknown:
        detail = f"not in `{shown}`: {' '.join(unknown)}"
        return [*out, Check(f"{name} flags", "fail", detail)]
    flags = command_flags(agent.command)
    detail = f"{' '.join(flags)} accepted by `{shown}`" if flags else "no flags"
    return [*out, Check(f"{name} flags", "ok", detail)]


def agent_checks(
    project: Project, problem: str | None, cli: _CliCache | None = None
) -> list[Check]:
    """Per role (once when both roles run the same agent): the program exists; for a preset,
    its version, its flags, its credentials and what the preset needs (root, sandbox, trust)."""
    cli = cli or _CliCache()
    agents = project.config.agents
    groups = (
        [["factory", "qa"]] if _same_agent(agents.factory, agents.qa) else [["factory"], ["qa"]]
    )
    if agents.planner is not None:  # optional: `hatchctl plan`
        groups.append(["planner"])
    worktrees = _worktrees(project)
    out: list[Check] = []
    for roles in groups:
        agent: AgentSection = getattr(agents, roles[0])
        name = f"agent {'+'.join(roles)}"
        cmd = agent.command
        found = find_agent(cmd[0], project.root)
        preset = for_agent(agent)
        label = f"preset {preset.name}: " if preset.name != "command" else ""
        if not found:
            hint = f" ({preset.title} {preset.version}: {preset.install})" if preset.install else ""
            out.append(Check(name, "fail", f"{label}{cmd[0]} not found on PATH{hint}"))
            continue
        out.append(Check(name, "ok", f"{label}{' '.join(cmd)} -> {found}"))
        if preset.name == "command":
            continue
        env = {**agent_env(agent), "PATH": agent_search_path()}
        out += _preset_cli(name, preset, agent, found, env, cli)
        ctx = LaunchContext(
            sandbox=_sandbox_mode(agent.sandbox, problem),
            env=agent_env(agent),
            command=tuple(cmd),
            worktrees=worktrees,
            role=roles[-1],  # shared by factory and qa: qa (Preset.role_problem)
        )
        findings = [f for f in (preset.credentials(ctx),) if f is not None]
        findings += preset.checks(ctx, agent)
        out += [Check(f"{name} {f.name}", f.level, f.detail) for f in findings]
    return out
