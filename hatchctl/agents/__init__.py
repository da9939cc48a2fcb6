"""Agent presets: ``[agents.factory] preset = "claude"`` fills in what running one agent CLI
under hatchctl takes: its command line, how the prompt is delivered, how a turn's end is
detected (stop mode), its environment, the paths its sandbox must let it write, and what its
screen shows when it waits for input or has failed for a known reason.

Each preset is written from the ``--help`` and documentation of one pinned version of its CLI
(``Preset.version``; the same pins as ``tools/agent-clis/package.json``) and checked by
``hatchctl doctor`` against the CLI actually installed (``hatchctl.runtime.doctor``).

Keys set in hatch.toml win over the preset's (``apply_preset``); ``env`` is merged variable by
variable (yours win). ``preset = "command"`` (the default) fills in nothing: the command runs as
configured, ``hatchctl sim-agent`` unless ``command`` says otherwise.

What hatchctl's launcher asks of a preset at run time (``LaunchContext`` describes the run):
``launch_env`` (variables that depend on the run, e.g. Claude Code's ``IS_SANDBOX=1`` under
hatchctl's sandbox), ``prepare_worktree`` (e.g. Claude Code's workspace trust) and
``preflight`` (a reason not to start at all, e.g. aider with no API key). The monitor matches a
pane's screen with ``waiting`` and ``failure``.

This module imports only hatchctl.errors at import time (hatchctl.config imports it).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from hatchctl.errors import HatchError
from hatchctl.state.atomicfile import write_atomic

if TYPE_CHECKING:
    from hatchctl.config import AgentSection

NAMES = ("command", "claude", "codex", "aider", "gemini")
DEFAULT = "command"
Level = Literal["ok", "warn", "fail"]
MetricsSource = Literal["claude-transcript", "codex-session", "summary"]
_VERSION_RE = re.compile(r"(\d+\.\d+\.\d+)")
_FLAG_RE = re.compile(r"(?<![\w-])(--?[A-Za-z0-9][A-Za-z0-9_-]*)")
LOCK_STALE = 10.0  # seconds: a lock directory untouched this long was left by a dead process


class FailurePattern(NamedTuple):
    """A text on an agent's screen that means the run cannot succeed (stop it, say why)."""

    regex: str
    reason: str  # short, stable: e.g. claude_root_refused
    detail: str  # one line for the user: what happened and what to do
    # also while the agent keeps printing: a text that stays on its screen for longer than
    # idle_timeout (e.g. a reconnect loop that never ends) ends the run as this failure
    while_busy: bool = False


@dataclass(frozen=True)
class Finding:
    """One line of ``hatchctl doctor`` about an agent (``name``: credentials, trust...)."""

    name: str
    level: Level
    detail: str


@dataclass(frozen=True)
class LaunchContext:
    """One run as the launcher (or doctor) sees it.

    ``sandbox``: the run's resolved sandbox, ``bwrap`` or ``none`` (confinement.Plan.mode);
    ``env``: the agent's environment as it will run (``agent_env``: the supervisor's environment
    overlaid with ``[agents.<role>].env``); ``worktree``: the run's worktree (None in doctor);
    ``worktrees``: every task worktree that exists now (doctor reports their trust);
    ``command``: the agent's command line."""

    sandbox: str
    env: Mapping[str, str]
    command: tuple[str, ...] = ()
    worktree: Path | None = None
    worktrees: tuple[Path, ...] = ()
    uid: int = field(default_factory=os.geteuid)
    role: str = "factory"

    @property
    def home(self) -> Path:
        return Path(self.env.get("HOME") or Path.home())


@dataclass(frozen=True)
class Preset:
    """What one agent CLI needs. Subclasses (one module each) override the methods."""

    name: str
    title: str
    version: str = ""  # the CLI version this preset was written and tested against
    docs: str = ""  # where its flags are documented
    install: str = ""  # how to install that version
    command: tuple[str, ...] = ("hatchctl", "sim-agent")
    prompt_delivery: Literal["argument", "paste"] = "argument"
    stop: Literal["exit", "claude-hook"] = "exit"
    env: Mapping[str, str] = field(default_factory=dict)
    sandbox_writable: tuple[str, ...] = ()  # ~ is the supervisor's home (confinement)
    # regexes (multi-line) on the rendered screen: the agent waits for a person
    waiting_patterns: tuple[str, ...] = ()
    failure_patterns: tuple[FailurePattern, ...] = ()
    metrics_source: MetricsSource = "summary"
    # the CLI cannot write hatchctl's summary: when a factory run of it exits 0 without one,
    # hatchctl writes it from git facts (hatchctl.engine.derived); such a preset cannot be QA
    derives_summary: bool = False

    @property
    def binary(self) -> str:
        return self.command[0]

    def defaults(self) -> dict[str, Any]:
        """The ``[agents.<role>]`` values this preset fills in where hatch.toml is silent."""
        return {
            "command": list(self.command),
            "prompt_delivery": self.prompt_delivery,
            "stop": self.stop,
            "env": dict(self.env),
            "sandbox_writable": list(self.sandbox_writable),
        }

    # -- at launch ---------------------------------------------------------------------------

    def launch_env(self, ctx: LaunchContext) -> dict[str, str]:
        """Variables that depend on the run; ``[agents.<role>].env`` still wins over them."""
        return {}

    def prepare_worktree(self, worktree: Path, env: Mapping[str, str]) -> None:
        """Make ``worktree`` ready for this CLI before its agent starts (idempotent)."""
        return None

    def preflight(self, ctx: LaunchContext) -> str | None:
        """Why this run must not start (a configuration problem), or None."""
        return self.role_problem(ctx.role)

    def role_problem(self, role: str) -> str | None:
        """Why this preset cannot play ``role`` (factory, qa or planner), or None."""
        if role == "planner" and self.derives_summary:
            return (
                f"preset {self.name!r} cannot be the planner: {self.title} works on the files "
                "of a git repository, and the planner writes new spec files in a directory "
                "of its own"
            )
        if role == "qa" and self.derives_summary:
            return (
                f"preset {self.name!r} cannot be the QA agent: {self.title} cannot write a "
                "summary, and a QA verdict (approved or rejected) is the agent's own word, "
                "which hatchctl cannot derive from git; use it as the factory only"
            )
        return None

    # -- while it runs -----------------------------------------------------------------------

    def waiting(self, screen: str) -> str | None:
        """The first waiting pattern found on ``screen`` (the agent waits for input)."""
        for pattern in self.waiting_patterns:
            if re.search(pattern, screen, re.MULTILINE):
                return pattern
        return None

    def failure(self, screen: str) -> FailurePattern | None:
        """The first known failure shown on ``screen``."""
        for pattern in self.failure_patterns:
            if re.search(pattern.regex, screen, re.MULTILINE):
                return pattern
        return None

    # -- doctor ------------------------------------------------------------------------------

    def credentials(self, ctx: LaunchContext) -> Finding | None:
        """Whether the CLI will find credentials (None: nothing to check)."""
        return None

    def checks(self, ctx: LaunchContext, agent: AgentSection) -> list[Finding]:
        """Requirements of this CLI beyond binary, version and flags (root, sandbox, trust...)."""
        return []


def get(name: str) -> Preset:
    """The preset called ``name``; KeyError for an unknown one."""
    if name not in NAMES:
        raise KeyError(name)
    preset = importlib.import_module(f"hatchctl.agents.{name}").PRESET
    assert isinstance(preset, Preset)
    return preset


def for_agent(agent: AgentSection) -> Preset:
    return get(agent.preset)


def unknown_message(name: object) -> str:
    return f"unknown preset {name!r} (one of: {', '.join(NAMES)})"


def apply_preset(data: Mapping[str, Any]) -> dict[str, Any]:
    """An ``[agents.<role>]`` table with its preset's values filled in where it is silent.
    ``env`` is merged (the table's variables win). An unknown or invalid preset name is left
    for the ``preset`` field's validator to report."""
    out = dict(data)
    name = data.get("preset", DEFAULT)
    if not isinstance(name, str) or name not in NAMES:
        return out
    for key, value in get(name).defaults().items():
        if key == "env" and isinstance(data.get("env"), Mapping):
            out["env"] = {**value, **data["env"]}
        else:
            out.setdefault(key, value)
    return out


def agent_env(agent: AgentSection, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment an agent runs with: ``base`` (default: this process's) and its env."""
    return {**(os.environ if base is None else base), **agent.env}


def launch_env(agent: AgentSection, ctx: LaunchContext) -> dict[str, str]:
    """``for_agent(agent).launch_env(ctx)`` without the variables hatch.toml sets itself."""
    extra = for_agent(agent).launch_env(ctx)
    return {k: v for k, v in extra.items() if k not in agent.env}


def prepare_worktree(agent: AgentSection, worktree: Path) -> None:
    for_agent(agent).prepare_worktree(worktree, agent_env(agent))


# -- a CLI's JSON state files (e.g. ~/.claude.json) -----------------------------------------


def read_json_object(path: Path) -> dict[str, Any]:
    """A CLI's JSON state file as a dict ({} when missing or empty); HatchError when it is not
    a JSON object (the file is then never rewritten)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise HatchError(f"cannot read {path}: {exc}") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise HatchError(f"{path} is not valid JSON ({exc}); not changing it") from None
    if not isinstance(data, dict):
        raise HatchError(f"{path} does not hold a JSON object; not changing it")
    return data


@contextlib.contextmanager
def json_lock(path: Path, timeout: float = 5.0) -> Iterator[None]:
    """The lock Claude Code (proper-lockfile) takes on ``path``: the directory ``<path>.lock``
    (mkdir is atomic). A lock untouched for LOCK_STALE seconds was left by a dead process."""
    lock = path.with_name(path.name + ".lock")
    deadline = time.monotonic() + timeout
    while True:
        try:
            lock.mkdir(mode=0o700)
            break
        except FileExistsError:
            with contextlib.suppress(OSError):
                if time.time() - lock.stat().st_mtime > LOCK_STALE:
                    lock.rmdir()
                    continue
            if time.monotonic() > deadline:
                raise HatchError(
                    f"{lock} is held by another process; not changing {path}"
                ) from None
            time.sleep(0.05)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            lock.rmdir()


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Replace ``path`` atomically (temp file beside it, fsync, rename), keeping its mode. A
    symbolic link at ``path`` is kept: its target is replaced."""
    target = path.resolve() if path.is_symlink() else path
    try:
        mode = target.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o600
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    write_atomic(target, text.encode("utf-8"), mode=mode)
    with contextlib.suppress(OSError):
        dfd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


# -- reading a CLI's own help -----------------------------------------------------------------


def subcommands(command: Iterable[str]) -> list[str]:
    """The words after the program that select a subcommand (``codex exec ...`` -> [exec])."""
    out: list[str] = []
    for word in list(command)[1:]:
        if word.startswith("-"):
            break
        out.append(word)
    return out


def help_argv(command: list[str] | tuple[str, ...], exe: str | None = None) -> list[str]:
    """How to ask the CLI for the help that lists the flags ``command`` uses."""
    return [exe or command[0], *subcommands(command), "--help"]


def command_flags(command: Iterable[str]) -> list[str]:
    """The flags a command line uses (``--flag=value`` counts as ``--flag``)."""
    out = []
    for word in command:
        if word.startswith("-") and word != "-" and word != "--":
            flag = word.split("=", 1)[0]
            if flag not in out:
                out.append(flag)
    return out


def help_flags(text: str) -> set[str]:
    """Every flag a ``--help`` text lists."""
    return set(_FLAG_RE.findall(text))


def unknown_flags(command: Iterable[str], help_text: str) -> list[str]:
    known = help_flags(help_text)
    return [f for f in command_flags(command) if f not in known]


def parse_version(text: str) -> str | None:
    match = _VERSION_RE.search(text)
    return match.group(1) if match else None


def env_true(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def dotenv_has(path: Path, names: Iterable[str]) -> bool:
    """Whether a ``.env`` file sets one of ``names`` to something (never raises)."""
    wanted = set(names)
    try:
        if not path.is_file() or path.stat().st_size > 1 << 20:
            return False
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return False
    for line in lines:
        key, sep, value = line.strip().removeprefix("export ").partition("=")
        if sep and key.strip() in wanted and value.strip().strip("'\""):
            return True
    return False
