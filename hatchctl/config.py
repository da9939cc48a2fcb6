"""hatch.toml -> pydantic models. Defaults for everything; unknown keys are errors naming key and file."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from hatchctl.errors import ConfigError, SummaryError
from hatchctl.state.durations import parse_duration
from hatchctl.state.summary import read_agent_file

CONFIG_NAME = "hatch.toml"
Duration = Annotated[float, BeforeValidator(parse_duration)]
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProjectSection(_Strict):
    name: str = "hatch"
    specs_dir: str = "specs"
    planning_dir: str = ""  # mounted read-only into worktrees; defaults to specs_dir
    base_ref: str = "HEAD"
    integration_branch: str = "hatch/integration"
    scripts_dir: str = ""  # an ejected copy of hatch_scripts (hatchctl scripts --eject)
    regression: list[str] | str = Field(default_factory=list)  # run on integration after merge
    # after a merge, also run the acceptance of the merged task ("own") and of every completed
    # task ("all"): a merge git calls clean can still lose a task's behaviour
    recheck: Literal["all", "own", "none"] = "all"
    # "human": work QA approved waits in phase review for `hatchctl approve|reject` (or A/R)
    review: Literal["none", "human"] = "none"
    recheck_parallel: int = Field(default=2, ge=1, le=16)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME_RE.fullmatch(v):
            raise ValueError("must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$ (it names a tmux socket)")
        return v


class RestartPolicy(_Strict):
    initial_backoff: Duration = 5.0
    multiplier: float = Field(default=2.0, ge=1.0)
    max_backoff: Duration = 300.0
    max_restarts: int = Field(default=5, ge=0)
    reset_after: Duration = 600.0
    jitter: float = Field(default=0.2, ge=0.0, le=1.0)


class BreakerPolicy(_Strict):
    threshold: int = Field(default=5, ge=1)  # infra failures within `window` that pause scheduling
    window: Duration = 300.0


class LimitsSection(_Strict):
    max_active: int = Field(default=2, ge=1)
    max_strikes: int = Field(default=3, ge=1)
    run_timeout: Duration = 1800.0
    idle_timeout: Duration = 300.0
    stall_after: Duration | None = None  # shown as `stalled` after this; default idle_timeout/2
    test_timeout: Duration = 300.0
    summary_timeout: Duration = 60.0
    summary_requests: int = Field(default=2, ge=0)
    tmux_timeout: Duration = 5.0
    git_timeout: Duration = 60.0
    script_timeout: Duration = 120.0
    kill_grace: Duration = 5.0
    launch_timeout: Duration = 30.0  # a launched pane must claim its ticket within this
    # text pasted into an agent (paste prompts, summary requests): paste -> Enter delay, how
    # long one try waits for the agent to confirm, and how many tries (see runtime/delivery.py)
    submit_delay: Duration = 0.5
    delivery_confirm: Duration = 3.0
    delivery_tries: int = Field(default=4, ge=1)
    delivery_ready: Duration = 10.0  # a pasted prompt waits for the agent's bracketed paste
    tick: Duration = Field(default=1.0, gt=0, le=60)  # the longest the loop sleeps
    db_busy_timeout: Duration = 5.0  # how long a locked state database is retried
    # below this much free space on the filesystem of .hatch/ the supervisor pauses (disk_full)
    # until space returns; 0 disables the probe (a write failing with "disk full" still pauses)
    min_free_mb: int = Field(default=64, ge=0, le=1_048_576)
    # an SSH host unreachable this long: its runs end as host_lost (no strike), their tasks are
    # placed again elsewhere (docs/scaling.md)
    host_grace: Duration = Field(default=120.0, ge=0)
    restart: RestartPolicy = RestartPolicy()
    breaker: BreakerPolicy = BreakerPolicy()

    @property
    def stall_seconds(self) -> float:
        return self.stall_after if self.stall_after is not None else self.idle_timeout / 2


class AgentSection(_Strict):
    # an agent CLI's known settings (hatchctl/agents/): they fill in every key below that the
    # table does not set; env is merged (the table's variables win); "command" fills in nothing
    preset: str = "command"
    command: list[str] = Field(default_factory=lambda: ["hatchctl", "sim-agent"], min_length=1)
    prompt_template: str = ""  # path relative to the project root; empty = built-in template
    prompt_delivery: Literal["argument", "paste"] = "argument"
    stop: Literal["exit", "claude-hook"] = "exit"
    env: dict[str, str] = Field(default_factory=dict)
    # bwrap: every run in a bubblewrap sandbox (refuse to run where it does not work);
    # auto: bwrap where it works, none elsewhere (doctor and an event say so); none: no sandbox
    sandbox: Literal["auto", "bwrap", "none"] = "auto"
    sandbox_writable: list[str] = Field(default_factory=list)  # extra paths, ~ expanded

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, data: Any) -> Any:
        from hatchctl.agents import apply_preset

        return apply_preset(data) if isinstance(data, dict) else data

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, v: str) -> str:
        from hatchctl.agents import NAMES, unknown_message

        if v not in NAMES:
            raise ValueError(unknown_message(v))
        return v


class AgentsSection(_Strict):
    factory: AgentSection = AgentSection()
    qa: AgentSection = AgentSection()
    planner: AgentSection | None = None  # optional: `hatchctl plan FEATURE.md`

    @model_validator(mode="after")
    def _roles_fit_presets(self) -> AgentsSection:
        from hatchctl.agents import get

        for role in ("factory", "qa", "planner"):
            section = getattr(self, role)
            problem = section and get(section.preset).role_problem(role)
            if problem:  # e.g. aider as QA: a verdict cannot be derived from git
                raise ValueError(f"[agents.{role}] {problem}")
        return self


class NotifySection(_Strict):
    command: list[str] = Field(default_factory=list)
    timeout: Duration = 10.0


class LogSection(_Strict):
    max_bytes: int = Field(default=5_000_000, ge=10_000)
    backups: int = Field(default=3, ge=0)


LABEL_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def check_labels(labels: list[str], what: str) -> list[str]:
    """``labels`` when each matches LABEL_RE, else ValueError naming the first that does not."""
    bad = [label for label in labels if not LABEL_RE.fullmatch(label)]
    if bad:
        raise ValueError(f"{what} {bad[0]!r} must match {LABEL_RE.pattern}")
    return labels


LOCAL_HOST = "local"  # the controlling machine: the implicit host, configured by [limits]


def _no_control(v: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in v):
        raise ValueError("must not contain control characters")
    return v


class HostSection(_Strict):
    """``[hosts.NAME]``: a machine reached with OpenSSH (see docs/scaling.md)."""

    ssh: str  # a destination as ssh takes it: host, user@host, or a Host alias of ssh_config
    ssh_config: str = ""  # passed as `ssh -F` (~ expanded, relative to the project root)
    port: int | None = Field(default=None, ge=1, le=65535)
    root: str  # absolute path on the host: hatchctl's clone and worktrees live under it
    max_active: int = Field(default=2, ge=1)
    labels: list[str] = Field(default_factory=list, max_length=32)

    @field_validator("ssh")
    @classmethod
    def _destination(cls, v: str) -> str:
        if not v or v.startswith("-") or len(v) > 255:
            raise ValueError("must be a destination such as user@host (not empty, no leading '-')")
        if any(c.isspace() for c in v):
            raise ValueError("must not contain whitespace")
        return _no_control(v)

    @field_validator("ssh_config")
    @classmethod
    def _config_path(cls, v: str) -> str:
        return _no_control(v)

    @field_validator("root")
    @classmethod
    def _root(cls, v: str) -> str:
        _no_control(v)
        if not v.startswith("/") or ".." in v.split("/"):
            raise ValueError("must be an absolute path with no '..'")
        return v.rstrip("/") or "/"

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: list[str]) -> list[str]:
        return check_labels(v, "label")


class HatchConfig(_Strict):
    project: ProjectSection = ProjectSection()
    limits: LimitsSection = LimitsSection()
    agents: AgentsSection = AgentsSection()
    notify: NotifySection = NotifySection()
    log: LogSection = LogSection()
    hosts: dict[str, HostSection] = Field(default_factory=dict)

    @field_validator("hosts")
    @classmethod
    def _host_names(cls, v: dict[str, HostSection]) -> dict[str, HostSection]:
        for name in v:
            if name == LOCAL_HOST:
                raise ValueError("'local' is this machine (configured by [limits]); pick another")
            if not _NAME_RE.fullmatch(name):
                raise ValueError(f"host name {name!r} must match {_NAME_RE.pattern}")
        return v


def find_config(start: Path) -> Path:
    """Walk up from ``start`` (like git) to the first directory holding hatch.toml."""
    here = start.resolve()
    for candidate in (here, *here.parents):
        path = candidate / CONFIG_NAME
        if path.is_file():
            return path
    raise ConfigError(
        f"no {CONFIG_NAME} found in {here} or any parent directory "
        "(run `hatchctl init` or pass -C DIR)"
    )


def _describe(err: ValidationError, path: Path) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"{path}: unknown key '{key}'"
    return f"{path}: invalid value for '{key}': {first['msg']}"


def parse_config(text: str, path: Path) -> HatchConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: nested too deeply") from None
    try:
        return HatchConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None


def load_config(path: Path) -> HatchConfig:
    try:  # bounded: a FIFO or a link to /dev/zero named hatch.toml must not hang hatchctl
        text = read_agent_file(path, "config", 1024 * 1024).decode("utf-8")
    except SummaryError as exc:
        raise ConfigError(f"cannot read {path}: {str(exc).removeprefix('config ')}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read {path}: not UTF-8 ({exc.reason})") from None
    return parse_config(text, path)


def default_project_name(root: Path) -> str:
    raw = re.sub(r"[^A-Za-z0-9_-]+", "-", root.name).strip("-_") or "hatch"
    if not raw[0].isalnum():
        raw = "p" + raw
    return raw[:40]


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0", "false", "no")
