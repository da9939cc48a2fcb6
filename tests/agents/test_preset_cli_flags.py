"""Each agent preset's command line (hatchctl/agents/) against the real CLI it was written for:
the pinned version, every flag in the CLI's own --help, the prompt as its last argument."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hatchctl import agents
from tests.agents.realcli import REAL, ROOT, cli, private_env, run

# what says, in each CLI's own help, that the prompt may be the command's last argument
PROMPT_SLOT = {
    "claude": r"Usage: claude \[options\] \[command\] \[prompt\]",
    "codex": r"Usage: codex exec \[OPTIONS\] \[PROMPT\]",
    "aider": r"--message COMMAND, --msg COMMAND, -m COMMAND",
    "gemini": r"-p, --prompt\s+Run in non-interactive \(headless\) mode with the given prompt",
}


# -- each preset's command line, checked against the real CLI's --help --------------------------


def test_presets_state_the_versions_pinned_in_tools() -> None:
    pins = json.loads((ROOT / "tools/agent-clis/package.json").read_text())["dependencies"]
    assert agents.get("claude").version == pins["@anthropic-ai/claude-code"]
    assert agents.get("codex").version == pins["@openai/codex"]
    assert agents.get("gemini").version == pins["@google/gemini-cli"]
    assert f"aider-chat=={agents.get('aider').version}" in (ROOT / "tools/bootstrap.sh").read_text()
    for name in REAL:
        preset = agents.get(name)
        assert preset.version in preset.install, name
        assert preset.metrics_source in ("claude-transcript", "codex-session", "summary")


@pytest.mark.parametrize("name", REAL)
def test_preset_command_is_accepted_by_the_real_cli(name: str, tmp_path: Path) -> None:
    """The installed CLI is the pinned version, its own --help lists every flag the preset's
    command uses, and shows that the prompt can come last (argument delivery)."""
    exe = cli(name)
    preset = agents.get(name)
    env = private_env(tmp_path / "home")
    # Gemini CLI starts a second node with a larger heap and waits for it; the output of
    # --version and --help is that child's either way: one node start (~1 CPU-s) per call
    env["GEMINI_CLI_NO_RELAUNCH"] = "true"
    assert agents.parse_version(run([exe, "--version"], env)) == preset.version
    help_text = run(agents.help_argv(preset.command, str(exe)), env)
    flags = agents.command_flags(preset.command)
    assert flags, "a preset with no flags proves nothing here"
    assert agents.unknown_flags(preset.command, help_text) == [], help_text[-2000:]
    # the check can fail: a flag the CLI does not have is reported
    assert agents.unknown_flags([*preset.command, "--no-such-flag-hatch"], help_text) == [
        "--no-such-flag-hatch"
    ]
    assert re.search(PROMPT_SLOT[name], help_text), help_text[:2000]
    assert preset.prompt_delivery == "argument"


def test_codex_flags_are_read_from_the_exec_subcommand_help(tmp_path: Path) -> None:
    exe = cli("codex")
    env = private_env(tmp_path / "home")
    assert agents.help_argv(agents.get("codex").command, "codex") == ["codex", "exec", "--help"]
    exec_flags = agents.help_flags(run([exe, "exec", "--help"], env))
    top_flags = agents.help_flags(run([exe, "--help"], env))
    # exec has no approval flag in 0.169.0: the preset's bypass flag is what keeps it unattended
    assert "--ask-for-approval" in top_flags and "--ask-for-approval" not in exec_flags
    assert "--dangerously-bypass-approvals-and-sandbox" in exec_flags
