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
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hatchctl.agents import FailurePattern, Finding, LaunchContext, Preset

if TYPE_CHECKING:
    from hatchctl.config import AgentSection

BYPASS = "--dangerously-bypass-approvals-and-sandbox"
KEY_VARS = ("CODEX_API_KEY", "OPENAI_API_KEY", "CODEX_ACCESS_TOKEN")


def codex_home(ctx: LaunchContext) -> Path:
    custom = ctx.env.get("CODEX_HOME", "").strip()
    return Path(custom).expanduser() if custom else ctx.home / ".codex"


class CodexPreset(Preset):
    def credentials(self, ctx: LaunchContext) -> Finding:
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
            r"Not inside a trusted directory and --skip-git-repo-check was not specified",
            "codex_not_a_repo",
            "codex exec refuses to run outside a git repository",
        ),
    ),
    metrics_source="codex-session",
)
