"""Claude Code 2.1.332 (``@anthropic-ai/claude-code``), from ``claude --help`` of that version.

``claude --dangerously-skip-permissions PROMPT`` starts the interactive session with the prompt
submitted (a positional ``prompt``; ``-p/--print`` would exit after one answer and skips the
hooks hatchctl's summary requests need). The session stays open after its turn: the Stop hook
hatchctl writes into the worktree's ``.claude/settings.local.json`` signals the turn's end
(``stop = "claude-hook"``) and hatchctl reads tokens and turns from the transcript the hook names.

What it needs, found in 2.1.332 itself:
- as root, ``--dangerously-skip-permissions`` exits at once ("cannot be used with root/sudo
  privileges") unless ``IS_SANDBOX=1`` (or ``CLAUDE_CODE_BUBBLEWRAP=1``). The preset sets
  ``IS_SANDBOX=1`` only for runs inside hatchctl's bwrap sandbox (``launch_env``): that is the
  claim the variable makes. As root with no sandbox it is not set, doctor fails and says how to
  fix it (sandbox, non-root user, or ``IS_SANDBOX = "1"`` in ``env`` to accept the risk).
- an untrusted folder opens a trust dialog; trust is ``projects[<worktree>]
  .hasTrustDialogAccepted`` in ``~/.claude.json`` (``$CLAUDE_CONFIG_DIR/.claude.json`` when
  set), looked up for the git root of the working directory (the worktree).
  ``prepare_worktree`` writes it before the agent starts, under Claude Code's own lock
  (``~/.claude.json.lock``, a directory) and atomically, keeping every other key.
- it writes ``~/.claude`` (sessions, transcripts, settings): ``sandbox_writable``. It rewrites
  ``~/.claude.json`` through a lock directory and a temporary file next to it, so binding the
  file alone cannot make it writable; under the sandbox it logs "continuing without
  persisting" and runs (checked), which is why trust must be seeded from outside.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hatchctl.agents import (
    FailurePattern,
    Finding,
    LaunchContext,
    Preset,
    env_true,
    json_lock,
    read_json_object,
    write_json_atomic,
)
from hatchctl.errors import HatchError

if TYPE_CHECKING:
    from hatchctl.config import AgentSection

BYPASS_FLAGS = ("--dangerously-skip-permissions", "--allow-dangerously-skip-permissions")
PROVIDERS = ("CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX", "CLAUDE_CODE_USE_FOUNDRY")


def config_dir(env: Mapping[str, str]) -> Path:
    """Claude Code's settings directory: $CLAUDE_CONFIG_DIR, else ~/.claude."""
    custom = env.get("CLAUDE_CONFIG_DIR", "").strip()
    return Path(custom).expanduser() if custom else _home(env) / ".claude"


def config_file(env: Mapping[str, str]) -> Path:
    """Claude Code's global state (trust, onboarding, approved keys): ~/.claude.json."""
    custom = env.get("CLAUDE_CONFIG_DIR", "").strip()
    return (Path(custom).expanduser() if custom else _home(env)) / ".claude.json"


def _home(env: Mapping[str, str]) -> Path:
    return Path(env.get("HOME") or Path.home())


def trust_keys(worktree: Path) -> list[str]:
    """The keys Claude Code may look trust up under: the path, and its real path (Node's
    process.cwd() is the real path)."""
    keys = [str(worktree.absolute())]
    with contextlib.suppress(OSError):
        real = str(worktree.resolve())
        if real not in keys:
            keys.append(real)
    return keys


def is_trusted(data: Mapping[str, Any], worktree: Path) -> bool:
    projects = data.get("projects")
    if not isinstance(projects, dict):
        return False
    for key in trust_keys(worktree):
        entry = projects.get(key)
        if isinstance(entry, dict) and entry.get("hasTrustDialogAccepted") is True:
            return True
    return False


def seed_trust(path: Path, worktrees: Iterable[Path], *, timeout: float = 5.0) -> bool:
    """Mark every worktree trusted in Claude Code's ``path`` (~/.claude.json), keeping every
    other key, under Claude Code's lock, atomically. True when the file changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with json_lock(path, timeout):
        data = read_json_object(path)
        projects = data.get("projects")
        if projects is None:
            projects = data["projects"] = {}
        if not isinstance(projects, dict):
            raise HatchError(f"{path}: 'projects' is not a JSON object; not changing it")
        changed = False
        for worktree in worktrees:
            for key in trust_keys(worktree):
                entry = projects.get(key)
                entry = dict(entry) if isinstance(entry, dict) else {}
                if entry.get("hasTrustDialogAccepted") is not True:
                    entry["hasTrustDialogAccepted"] = True
                    projects[key] = entry
                    changed = True
        if changed:
            write_json_atomic(path, data)
        return changed


def _user_settings(env: Mapping[str, str]) -> dict[str, Any]:
    try:
        data = json.loads((config_dir(env) / "settings.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def uses_bypass(command: Iterable[str]) -> bool:
    words = list(command)
    if any(w in BYPASS_FLAGS for w in words):
        return True
    return any(
        a == "--permission-mode" and b == "bypassPermissions" for a, b in itertools.pairwise(words)
    )


class ClaudePreset(Preset):
    def launch_env(self, ctx: LaunchContext) -> dict[str, str]:
        # Claude Code's root guard accepts IS_SANDBOX=1: true here, the run is confined
        return {"IS_SANDBOX": "1"} if ctx.sandbox == "bwrap" else {}

    def prepare_worktree(self, worktree: Path, env: Mapping[str, str]) -> None:
        seed_trust(config_file(env), [worktree])

    def credentials(self, ctx: LaunchContext) -> Finding:
        env = ctx.env
        key = env.get("ANTHROPIC_API_KEY", "")
        if key:
            try:
                answers = read_json_object(config_file(env)).get("customApiKeyResponses")
            except HatchError:
                answers = None
            answers = answers if isinstance(answers, dict) else {}
            if key[-20:] in (answers.get("rejected") or []):
                return Finding(
                    "credentials",
                    "fail",
                    "ANTHROPIC_API_KEY is set but was rejected in Claude Code's key dialog (customApiKeyResponses.rejected in .claude.json)",
                )
            if key[-20:] not in (answers.get("approved") or []):
                return Finding(
                    "credentials",
                    "warn",
                    'ANTHROPIC_API_KEY is set but not yet approved: the first run waits at "Do you want to use this API key?" (answer it once in the pane, or run `claude` once here)',
                )
            return Finding("credentials", "ok", "ANTHROPIC_API_KEY (approved in .claude.json)")
        for name in ("ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"):
            if env.get(name):
                return Finding("credentials", "ok", f"{name} is set")
        for name in PROVIDERS:
            if env_true(env, name):
                return Finding("credentials", "ok", f"{name}: the cloud provider's own credentials")
        stored = config_dir(env) / ".credentials.json"
        if stored.is_file():
            return Finding("credentials", "ok", f"logged in ({stored})")
        if _user_settings(env).get("apiKeyHelper"):
            return Finding("credentials", "ok", "apiKeyHelper in settings.json")
        return Finding(
            "credentials",
            "warn",
            f'no credentials found (ANTHROPIC_API_KEY, ANTHROPIC_AUTH_TOKEN, CLAUDE_CODE_OAUTH_TOKEN or {stored}): every run would stop at "Not logged in" (run `claude` and /login, or set a key in [agents.<role>].env)',
        )

    def checks(self, ctx: LaunchContext, agent: AgentSection) -> list[Finding]:
        return [
            self._root(ctx, agent),
            self._trust(ctx),
            *self._first_run(ctx, agent),
            *self._stop(agent),
        ]

    def _root(self, ctx: LaunchContext, agent: AgentSection) -> Finding:
        name = "IS_SANDBOX"
        if not uses_bypass(agent.command):
            return Finding(
                name,
                "warn",
                "the command has no --dangerously-skip-permissions: Claude Code asks before each tool and the run waits for an answer",
            )
        if ctx.uid != 0:
            return Finding(
                name, "ok", "not root: --dangerously-skip-permissions needs no IS_SANDBOX"
            )
        if ctx.env.get("IS_SANDBOX") == "1" or env_true(ctx.env, "CLAUDE_CODE_BUBBLEWRAP"):
            if ctx.sandbox == "bwrap":
                return Finding(
                    name,
                    "ok",
                    "root, IS_SANDBOX=1 set in the environment, inside hatchctl's bwrap sandbox",
                )
            return Finding(
                name,
                "warn",
                "root with IS_SANDBOX=1 from your environment and no sandbox: Claude Code runs as root, unconfined",
            )
        if ctx.sandbox == "bwrap":
            return Finding(
                name,
                "ok",
                "root inside hatchctl's bwrap sandbox: the launcher sets IS_SANDBOX=1 (without it --dangerously-skip-permissions refuses to run as root)",
            )
        return Finding(
            name,
            "fail",
            'running as root with no sandbox: Claude Code refuses --dangerously-skip-permissions ("cannot be used with root/sudo privileges"); install bubblewrap so runs are sandboxed, run hatchctl as another user, or set IS_SANDBOX = "1" in [agents.<role>].env to accept an unconfined root agent',
        )

    def _trust(self, ctx: LaunchContext) -> Finding:
        path = config_file(ctx.env)
        try:
            data = read_json_object(path)
        except HatchError as exc:
            return Finding("trust", "fail", f"cannot pre-seed workspace trust: {exc}")
        if not os.access(path if path.exists() else path.parent, os.W_OK):
            return Finding(
                "trust",
                "fail",
                f"{path} is not writable: workspace trust cannot be pre-seeded (each run would wait at the trust dialog)",
            )
        if not isinstance(data.get("projects", {}), dict):
            return Finding("trust", "fail", f"{path}: 'projects' is not a JSON object")
        trusted = sum(is_trusted(data, w) for w in ctx.worktrees)
        detail = f"{path}: each task's worktree is marked trusted before its agent starts"
        if ctx.worktrees:
            detail += f"; {trusted} of {len(ctx.worktrees)} existing worktrees trusted now"
        return Finding("trust", "ok", detail)

    def _first_run(self, ctx: LaunchContext, agent: AgentSection) -> list[Finding]:
        try:
            data = read_json_object(config_file(ctx.env))
        except HatchError:
            return []
        out = []
        if not data.get("hasCompletedOnboarding"):
            out.append(
                Finding(
                    "first run",
                    "warn",
                    "Claude Code was never set up with this HOME: its first screen (text style, login) waits for a person; run `claude` once",
                )
            )
        accepted = data.get("bypassPermissionsModeAccepted") or _user_settings(ctx.env).get(
            "skipDangerousModePermissionPrompt"
        )
        if uses_bypass(agent.command) and not accepted:
            out.append(
                Finding(
                    "first run",
                    "warn",
                    "the Bypass Permissions warning was never accepted: runs wait at it; run `claude --dangerously-skip-permissions` once and accept",
                )
            )
        return out

    def _stop(self, agent: AgentSection) -> list[Finding]:
        if agent.stop == "claude-hook":
            return []
        return [
            Finding(
                "stop",
                "warn",
                'stop = "exit": the interactive session stays open after its turn, so the run ends only at idle_timeout (the preset uses "claude-hook")',
            )
        ]


PRESET = ClaudePreset(
    name="claude",
    title="Claude Code",
    version="2.1.332",
    docs="https://code.claude.com/docs/en/cli-reference",
    install="npm install -g @anthropic-ai/claude-code@2.1.332",
    command=("claude", "--dangerously-skip-permissions"),
    prompt_delivery="argument",
    stop="claude-hook",
    # a pinned version: no self-update mid-run (it could not write its install anyway); no clone
    # of Anthropic's plugin marketplace from GitHub at every start (seen with strace: an ssh, then
    # an https git clone per start; an agent's start reaches no network but its API)
    env={"DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL": "1"},
    sandbox_writable=("~/.claude",),
    waiting_patterns=(
        r"Yes, I trust this folder",  # workspace trust dialog
        r"Do you want to use this API key\?",
        r"WARNING: Claude Code running in Bypass Permissions mode",
        r"Choose the text style that looks best",  # first-run onboarding
        r"Select login method",
        r"Do you want to proceed\?",  # a tool permission prompt
    ),
    failure_patterns=(
        FailurePattern(
            r"--dangerously-skip-permissions cannot be used with root/sudo privileges",
            "claude_root_refused",
            "Claude Code refuses --dangerously-skip-permissions as root without IS_SANDBOX=1: "
            "sandbox the runs (bubblewrap), run as another user, or set IS_SANDBOX in env",
        ),
        FailurePattern(
            r"Not logged in · (Please )?run /login",
            "claude_not_logged_in",
            "Claude Code has no credentials: run `claude` and /login, or set ANTHROPIC_API_KEY",
        ),
        FailurePattern(
            r"Invalid API key · Fix external API key|Invalid auth token · Fix external auth token",
            "claude_invalid_credentials",
            "Claude Code rejected the key or token from the environment",
        ),
        FailurePattern(
            r"(OAuth token revoked|Login expired) · Please run /login",
            "claude_login_expired",
            "Claude Code's login expired: run `claude` and /login",
        ),
        FailurePattern(
            r"Credit balance is too low",
            "claude_no_credit",
            "the Anthropic account has no credit left",
        ),
    ),
    metrics_source="claude-transcript",
)
