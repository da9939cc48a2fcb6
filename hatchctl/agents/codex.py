"""OpenAI Codex CLI 0.169.0 (``@openai/codex``), from ``codex exec --help`` of that version.

``codex exec [OPTIONS] [PROMPT]`` runs non-interactively: the prompt is its last argument, it
works until the task is done and exits (``stop = "exit"``). It writes its session, with token
counts, to ``$CODEX_HOME/sessions/YYYY/MM/DD/rollout-*.jsonl`` (``metrics_source``;
``CODEX_HOME`` defaults to ``~/.codex``, which must be writable: ``sandbox_writable``).

Sandbox: the preset passes ``--dangerously-bypass-approvals-and-sandbox`` ("intended solely for
running in environments that are externally sandboxed"): hatchctl's bwrap sandbox is that
environment. Codex's own ``--sandbox workspace-write`` cannot replace it: it keeps the
worktree's git directory (``<repo>/.git/worktrees/<ID>``, where ``git commit`` writes the index)
read-only (checked with 0.169.0: "Unable to create .../index.lock: Read-only file system"; with
``--add-dir`` too, openai/codex#23661) and cannot write the summary under ``.hatch/``. ``exec``
has no ``--ask-for-approval`` in 0.169.0; the bypass flag also means it never waits for one.
With hatchctl's sandbox off, nothing confines codex (doctor warns), as for every agent.

Run end to end by tests/agents/test_codex.py (the real 0.169.0 against a fake Responses API,
under hatchctl's sandbox): the preset's command needs nothing more. A custom endpoint is a
``model_provider`` (``$CODEX_HOME/config.toml`` or ``-c`` overrides) whose ``env_key`` names the
variable holding its key; without that variable set, codex exits at once with ``Missing
environment variable: `NAME`.`` (``codex_missing_env_key``, and doctor's ``credentials``).
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hatchctl.agents import FailurePattern, Finding, LaunchContext, Preset

if TYPE_CHECKING:
    from hatchctl.config import AgentSection

BYPASS = "--dangerously-bypass-approvals-and-sandbox"
KEY_VARS = ("CODEX_API_KEY", "OPENAI_API_KEY", "CODEX_ACCESS_TOKEN")
CONFIG_LIMIT = 1024 * 1024  # bytes of config.toml read


def codex_home(ctx: LaunchContext) -> Path:
    custom = ctx.env.get("CODEX_HOME", "").strip()
    return Path(custom).expanduser() if custom else ctx.home / ".codex"


def _overrides(command: tuple[str, ...]) -> dict[str, str]:
    """``-c key=value`` / ``--config key=value`` overrides of a codex command line."""
    out: dict[str, str] = {}
    words = list(command)
    for i, word in enumerate(words):
        if word in ("-c", "--config") and i + 1 < len(words):
            item = words[i + 1]
        elif word.startswith("--config="):
            item = word.removeprefix("--config=")
        else:
            continue
        key, sep, value = item.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _toml_value(text: str) -> Any:
    """An override's value as codex reads it: TOML, else the raw string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def provider(ctx: LaunchContext) -> tuple[str, Mapping[str, Any]]:
    """The model provider a run would use (its id and its ``model_providers`` table, ``{}``
    for a built-in one), from the command's ``-c`` overrides over ``$CODEX_HOME/config.toml``."""
    config: dict[str, Any] = {}
    # the user's config (often a link into a dotfiles repository: followed), in a directory the
    # agent can write: never blocks on a FIFO, only a regular file, bounded
    try:
        fd = os.open(codex_home(ctx) / "config.toml", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            if stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                config = tomllib.loads(f.read(CONFIG_LIMIT).decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        pass
    overrides = _overrides(ctx.command)
    name = overrides.get("model_provider")
    chosen = _toml_value(name) if name is not None else config.get("model_provider", "openai")
    chosen = str(chosen)
    tables = config.get("model_providers")
    table = tables.get(chosen) if isinstance(tables, dict) else None
    if f"model_providers.{chosen}" in overrides:
        table = _toml_value(overrides[f"model_providers.{chosen}"])
    for key, value in overrides.items():  # model_providers.<id>.<key>=value
        prefix = f"model_providers.{chosen}."
        if key.startswith(prefix) and re.fullmatch(r"[A-Za-z_]+", key.removeprefix(prefix)):
            table = {
                **(table if isinstance(table, dict) else {}),
                key.removeprefix(prefix): _toml_value(value),
            }
    return chosen, table if isinstance(table, dict) else {}


class CodexPreset(Preset):
    def credentials(self, ctx: LaunchContext) -> Finding:
        name, table = provider(ctx)
        env_key = table.get("env_key")
        if table and isinstance(env_key, str) and env_key:
            if ctx.env.get(env_key):
                return Finding("credentials", "ok", f"{env_key} is set (model provider {name!r})")
            return Finding(
                "credentials",
                "warn",
                f"model provider {name!r} reads its key from {env_key}, which is not set: runs "
                f'would fail with "Missing environment variable: `{env_key}`"',
            )
        if table:
            return Finding("credentials", "ok", f"model provider {name!r} names no env_key")
        for name in KEY_VARS:
            if ctx.env.get(name):
                return Finding("credentials", "ok", f"{name} is set")
        auth = codex_home(ctx) / "auth.json"
        if auth.is_file():
            return Finding("credentials", "ok", f"logged in ({auth})")
        return Finding(
            "credentials",
            "warn",
            f"no credentials found ({', '.join(KEY_VARS)} or {auth}): runs would fail with "
            '"no Codex credentials were found" (run `codex login`, or set CODEX_API_KEY in env)',
        )

    def checks(self, ctx: LaunchContext, agent: AgentSection) -> list[Finding]:
        out = []
        words = list(agent.command)
        unconfined = BYPASS in words or (
            "danger-full-access" in words or "--sandbox=danger-full-access" in words
        )
        if unconfined and ctx.sandbox != "bwrap":
            out.append(
                Finding(
                    "sandbox",
                    "warn",
                    "codex's own sandbox is off (--dangerously-bypass-approvals-and-sandbox) and "
                    "so is hatchctl's: codex runs unconfined (its workspace-write sandbox cannot "
                    "commit in a worktree: see docs/agents.md)",
                )
            )
        elif unconfined:
            out.append(Finding("sandbox", "ok", "confined by hatchctl's bwrap sandbox"))
        else:
            out.append(
                Finding(
                    "sandbox",
                    "warn",
                    "codex's own sandbox is on: it keeps .git/worktrees/<ID> read-only, so "
                    "`git commit` fails in the worktree (use the preset's command)",
                )
            )
        if words[1:2] != ["exec"]:
            out.append(
                Finding(
                    "mode",
                    "warn",
                    "not `codex exec`: the interactive TUI waits for input after its turn",
                )
            )
        return out


PRESET = CodexPreset(
    name="codex",
    title="Codex CLI",
    version="0.169.0",
    docs="https://developers.openai.com/codex/agent-approvals-security",
    install="npm install -g @openai/codex@0.169.0",
    command=("codex", "exec", BYPASS),
    prompt_delivery="argument",
    stop="exit",
    sandbox_writable=("~/.codex",),
    waiting_patterns=(
        r"Would you like to run the following command\?",  # the TUI's approval prompt
    ),
    failure_patterns=(
        FailurePattern(  # 0.169.0 retries an unreachable endpoint for as long as it runs
            r"Reconnecting\.\.\.",
            "codex_unreachable",
            "codex cannot reach its model endpoint (it keeps reconnecting): check the network "
            "and the provider's base_url",
            while_busy=True,
        ),
        FailurePattern(
            r"no Codex credentials were found",
            "codex_no_credentials",
            "Codex has no credentials: run `codex login` or set CODEX_API_KEY",
        ),
        FailurePattern(
            r"refresh token (has expired|was already used|was revoked)",
            "codex_login_expired",
            "Codex's login expired: run `codex logout` and `codex login`",
        ),
        FailurePattern(
            r"Missing environment variable: `[^`\n]+`",
            "codex_missing_env_key",
            "the model provider's env_key variable is not set in the agent's environment "
            "(set it in [agents.<role>].env)",
        ),
        FailurePattern(
            r"Not inside a trusted directory and --skip-git-repo-check was not specified",
            "codex_not_a_repo",
            "codex exec refuses to run outside a git repository",
        ),
    ),
    metrics_source="codex-session",
)
