"""Gemini CLI 0.61.0 (``@google/gemini-cli``), from ``gemini --help`` of that version.

``gemini --approval-mode yolo --skip-trust --prompt PROMPT`` runs headless ("non-interactive
mode with the given prompt"): it works until the answer is complete and exits (``stop =
"exit"``). The prompt must follow ``--prompt`` (a bare argument in a terminal starts the
interactive UI). ``--approval-mode yolo`` approves every tool call (``-y/--yolo`` does the same in
0.61.0; later versions deprecate it in favour of ``--approval-mode``). In a folder Gemini CLI does
not trust, 0.61.0 silently downgrades it ("Approval mode overridden to "default" because the
current folder is not trusted") and a headless run can then use no tool: ``--skip-trust`` trusts
the worktree for the session (like ``GEMINI_CLI_TRUST_WORKSPACE=true``), so nothing has to be
written to ``~/.gemini/trustedFolders.json``.

It writes ``~/.gemini`` (history, chats, project ids): ``sandbox_writable``. Its own sandbox
(``-s/--sandbox``: docker, podman) is off unless your settings turn it on; under hatchctl's
bwrap sandbox leave it off. Exit codes of a failed headless run: 41 authentication, 42 input,
44 sandbox, 52 configuration.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from hatchctl.agents import FailurePattern, Finding, LaunchContext, Preset, dotenv_has, env_true

if TYPE_CHECKING:
    from hatchctl.config import AgentSection


def _settings(ctx: LaunchContext) -> dict[str, Any]:
    try:
        data = json.loads((ctx.home / ".gemini" / "settings.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def selected_auth(ctx: LaunchContext) -> str | None:
    security = _settings(ctx).get("security")
    auth = security.get("auth") if isinstance(security, dict) else None
    selected = auth.get("selectedType") if isinstance(auth, dict) else None
    return selected if isinstance(selected, str) else None


class GeminiPreset(Preset):
    def credentials(self, ctx: LaunchContext) -> Finding:
        env, gemini_dir = ctx.env, ctx.home / ".gemini"
        if env.get("GEMINI_API_KEY"):
            return Finding("credentials", "ok", "GEMINI_API_KEY is set")
        if env_true(env, "GOOGLE_GENAI_USE_VERTEXAI"):
            if env.get("GOOGLE_API_KEY") or (
                env.get("GOOGLE_CLOUD_PROJECT") and env.get("GOOGLE_CLOUD_LOCATION")
            ):
                return Finding("credentials", "ok", "Vertex AI (GOOGLE_GENAI_USE_VERTEXAI)")
            return Finding(
                "credentials",
                "warn",
                "GOOGLE_GENAI_USE_VERTEXAI without GOOGLE_API_KEY or "
                "GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION",
            )
        for path in (gemini_dir / ".env", ctx.home / ".env"):
            if dotenv_has(path, ("GEMINI_API_KEY",)):
                return Finding("credentials", "ok", f"GEMINI_API_KEY in {path}")
        selected = selected_auth(ctx)
        oauth = gemini_dir / "oauth_creds.json"
        if selected == "oauth-personal" or env_true(env, "GOOGLE_GENAI_USE_GCA"):
            if oauth.is_file():
                return Finding("credentials", "ok", f"logged in with Google ({oauth})")
            return Finding(
                "credentials",
                "warn",
                f"Google login selected but {oauth} is missing: run `gemini` once and log in",
            )
        if selected or env_true(env, "GEMINI_CLI_USE_COMPUTE_ADC"):
            return Finding("credentials", "ok", f"auth type {selected or 'compute-default'}")
        return Finding(
            "credentials",
            "warn",
            "no credentials found (GEMINI_API_KEY, Vertex AI variables, or an auth type in "
            f'{gemini_dir / "settings.json"}): runs would exit 41 "Please set an Auth method"',
        )

    def checks(self, ctx: LaunchContext, agent: AgentSection) -> list[Finding]:
        out = []
        words = list(agent.command)
        if words[-1:] not in (["--prompt"], ["-p"]) and agent.prompt_delivery == "argument":
            out.append(
                Finding(
                    "prompt",
                    "warn",
                    "the command does not end with --prompt: the prompt starts the interactive "
                    "UI, which waits for input after its turn",
                )
            )
        trusted = "--skip-trust" in words or env_true(ctx.env, "GEMINI_CLI_TRUST_WORKSPACE")
        if not trusted:
            out.append(
                Finding(
                    "trust",
                    "warn",
                    "no --skip-trust: in an untrusted worktree Gemini CLI turns yolo off and a "
                    "headless run can use no tool",
                )
            )
        if isinstance(_settings(ctx).get("tools"), dict) and _settings(ctx)["tools"].get("sandbox"):
            out.append(
                Finding(
                    "sandbox",
                    "warn",
                    "tools.sandbox is on in ~/.gemini/settings.json: Gemini CLI's own container "
                    "sandbox does not work inside hatchctl's (pass --sandbox=false)",
                )
            )
        return out


PRESET = GeminiPreset(
    name="gemini",
    title="Gemini CLI",
    version="0.61.0",
    docs="https://geminicli.com/docs/cli",
    install="npm install -g @google/gemini-cli@0.61.0",
    command=("gemini", "--approval-mode", "yolo", "--skip-trust", "--prompt"),
    prompt_delivery="argument",
    stop="exit",
    sandbox_writable=("~/.gemini",),
    waiting_patterns=(
        r"Do you trust the files in this folder\?",
        r"Waiting for authentication",
        r"Allow execution of",  # a tool confirmation without --yolo
    ),
    failure_patterns=(
        FailurePattern(
            r"Please set an Auth method in your .*settings\.json",
            "gemini_no_auth",
            "Gemini CLI has no credentials: set GEMINI_API_KEY or log in with `gemini` once",
        ),
        FailurePattern(
            r"When using Gemini API, you must specify the GEMINI_API_KEY",
            "gemini_no_api_key",
            "Gemini CLI is set to use an API key but GEMINI_API_KEY is not set",
        ),
        FailurePattern(
            r'Approval mode overridden to "default" because the current folder is not trusted',
            "gemini_untrusted_folder",
            "Gemini CLI does not trust the worktree and turned yolo off (add --skip-trust)",
        ),
    ),
    metrics_source="summary",
)
