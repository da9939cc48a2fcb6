"""aider 0.86.2 (PyPI ``aider-chat``), from ``aider --help`` of that version.

``aider --yes-always --message PROMPT`` sends one message, applies the edits, commits them
(``--auto-commits`` is the default) and exits (``stop = "exit"``). The prompt must follow
``--message``: delivered as a bare argument it would be read as a file name to edit. The other
flags keep a run from stopping for things nobody will answer: no update check, no release
notes, no analytics question, no ``.gitignore`` change in the worktree, no offer to scrape URLs
found in the prompt.

Credentials: with no API key and no model, 0.86.2 offers an OpenRouter login, and
``--yes-always`` accepts it: it prints a URL and waits up to 5 minutes for a browser. So the
preset refuses to launch without a key it can see (``preflight``), doctor warns, and the texts
of that flow are failure patterns.

Git identity: aider reads user.name/user.email from git's config (not GIT_AUTHOR_*) and, when
one is missing, writes a placeholder into the repository's config: read-only under hatchctl's
sandbox, so it crashes and asks to report the bug. The preset refuses such a sandboxed launch,
doctor says so, and the crash texts are failure patterns.

Summary: ``--yes-always`` declines every shell command (aider asks those with "explicit yes
required"), and aider edits only files of its repository, so it cannot write hatchctl's
summary file (under ``.hatch/``). So the preset ``derives_summary``: when a factory run exits 0
without a summary and committed on its branch, hatchctl writes the summary itself from git
facts (hatchctl.engine.derived, marked ``"derived_by": "hatchctl"``) and verifies it as any
other. A QA verdict cannot be derived: aider cannot be the QA agent (``role_problem``).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from hatchctl.agents import FailurePattern, Finding, LaunchContext, Level, Preset, dotenv_has

if TYPE_CHECKING:
    from hatchctl.config import AgentSection

# the variables aider 0.86.2 picks a default model from (onboarding.py), and its own
KEY_VARS = (
    "OPENROUTER_API_KEY",
    "ANTHROPIC_API_KEY",
    "DEEPSEEK_API_KEY",
    "OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "VERTEXAI_PROJECT",
    "AIDER_OPENAI_API_KEY",
    "AIDER_ANTHROPIC_API_KEY",
)
NO_KEY = (
    "aider has no API key ({where}): 0.86.2 would offer an OpenRouter login and wait up to "
    "5 minutes for a browser; set e.g. ANTHROPIC_API_KEY or OPENAI_API_KEY in "
    "[agents.<role>].env (or pass --model with a key in .env)"
)


NO_IDENTITY = (
    "git has no {missing} for aider ({where}): 0.86.2 then writes a placeholder identity into "
    "the repository's config, which hatchctl's sandbox keeps read-only, and crashes; set them "
    "in the agent's ~/.gitconfig (its HOME) or the repository's config"
)
GIT_TIMEOUT = 10.0


def missing_identity(env: Mapping[str, str], cwd: Path | None) -> list[str] | None:
    """The git identity keys aider 0.86.2 would find unset (``setup_git``: user.name and
    user.email, from git's config as the agent's environment sees it, not GIT_AUTHOR_*), or
    None when git cannot tell."""
    missing = []
    for key in ("user.name", "user.email"):
        try:
            out = subprocess.run(
                ["git", "config", "--get", key],
                cwd=cwd if cwd is not None and cwd.is_dir() else None,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=GIT_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        if out.returncode == 1 or (out.returncode == 0 and not out.stdout.strip()):
            missing.append(key)
        elif out.returncode != 0:
            return None
    return missing


class AiderPreset(Preset):
    def _found(self, ctx: LaunchContext) -> tuple[str, str]:
        """(level, what): ok with a key, warn when only a model or config was found (aider
        will not start the browser login; its key may be elsewhere), none otherwise."""
        for name in KEY_VARS:
            if ctx.env.get(name):
                return "ok", f"{name} is set"
        home = ctx.home
        dotenvs = [home / ".aider" / "oauth-keys.env", home / ".env"]
        if ctx.worktree is not None:
            dotenvs.append(ctx.worktree / ".env")
        for path in dotenvs:
            if dotenv_has(path, KEY_VARS):
                return "ok", f"a key in {path}"
        words = ctx.command
        if ctx.env.get("AIDER_MODEL") or any(
            w == "--model" or w.startswith("--model=") for w in words
        ):
            return "warn", "a model is set but no API key was found (aider reads .env files too)"
        conf = [home / ".aider.conf.yml"]
        if ctx.worktree is not None:
            conf.append(ctx.worktree / ".aider.conf.yml")
        for path in conf:
            if path.is_file():
                return "warn", f"no API key found; {path} may set one (not read)"
        return "none", ", ".join([*KEY_VARS[:5], "~/.env"])

    def preflight(self, ctx: LaunchContext) -> str | None:
        problem = self.role_problem(ctx.role)
        if problem is not None:
            return problem
        level, what = self._found(ctx)
        if level == "none":
            return NO_KEY.format(where=f"none of {what}")
        return self._identity(ctx) if ctx.sandbox == "bwrap" else None

    def _identity(self, ctx: LaunchContext) -> str | None:
        where = ctx.worktree or (ctx.worktrees[0] if ctx.worktrees else None)
        missing = missing_identity(ctx.env, where)
        if not missing:
            return None
        return NO_IDENTITY.format(missing=" and ".join(missing), where=f"HOME={ctx.home}")

    def credentials(self, ctx: LaunchContext) -> Finding:
        level, what = self._found(ctx)
        if level == "none":
            return Finding(
                "credentials",
                "warn",
                NO_KEY.format(where=f"none of {what}") + "; hatchctl refuses to launch it",
            )
        return Finding("credentials", "ok" if level == "ok" else "warn", what)

    def checks(self, ctx: LaunchContext, agent: AgentSection) -> list[Finding]:
        out = []
        problem = self.role_problem(ctx.role)
        if problem is not None:
            out.append(Finding("role", "fail", problem))
        words = list(agent.command)
        if words[-1:] not in (["--message"], ["--msg"], ["-m"]) and agent.prompt_delivery == (
            "argument"
        ):
            out.append(
                Finding(
                    "prompt",
                    "fail",
                    "the command does not end with --message: the prompt (its last argument) "
                    "would be taken for a file name",
                )
            )
        identity = self._identity(ctx)
        if identity is not None:
            level: Level = "fail" if ctx.sandbox == "bwrap" else "warn"
            out.append(Finding("git identity", level, identity))
        if "--yes-always" not in words:
            out.append(
                Finding("prompt", "warn", "no --yes-always: aider's questions wait for a person")
            )
        return out


PRESET = AiderPreset(
    name="aider",
    title="aider",
    version="0.86.2",
    docs="https://aider.chat/docs/config/options.html",
    install="pipx install aider-chat==0.86.2",
    command=(
        "aider",
        "--yes-always",
        "--no-check-update",
        "--no-show-release-notes",
        "--no-analytics",
        "--no-gitignore",
        "--no-detect-urls",
        "--message",
    ),
    prompt_delivery="argument",
    stop="exit",
    sandbox_writable=("~/.aider",),  # its analytics id, caches and saved OpenRouter key
    waiting_patterns=(
        r"\(Y\)es/\(N\)o.*\[(Yes|No|[A-Za-z]+)\]: *$",  # a question with no --yes-always
    ),
    failure_patterns=(
        FailurePattern(
            r"No LLM model was specified and no API keys were provided",
            "aider_no_api_key",
            "aider found no API key: set one in [agents.<role>].env",
        ),
        FailurePattern(
            r"Waiting up to \d+ minutes for you to finish in the browser",
            "aider_browser_login",
            "aider waits for an OpenRouter login in a browser: set an API key instead",
        ),
        FailurePattern(
            r"Read-only file system: '[^'\n]*config\.lock'",
            "aider_git_identity",
            "aider found no git user.name/user.email and cannot write them under the sandbox: "
            "set them in the agent's ~/.gitconfig",
        ),
        FailurePattern(
            r"Please consider reporting this bug to help improve aider",
            "aider_crashed",
            "aider crashed and asks to report the bug (its traceback is in the run's log)",
        ),
        FailurePattern(
            r"litellm\.AuthenticationError",
            "aider_auth_failed",
            "the model provider rejected aider's API key",
        ),
    ),
    metrics_source="summary",
    derives_summary=True,
)
