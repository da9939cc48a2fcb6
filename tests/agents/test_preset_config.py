"""Agent presets in hatch.toml (a preset fills an agent section, explicit keys win, env merged, an
unknown one is one error line) and ``hatchctl init --agent``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hatchctl import agents
from hatchctl.config import AgentSection, load_config, parse_config
from hatchctl.errors import ConfigError
from hatchctl.runtime import sandbox
from tests.agents.realcli import REAL, cli, private_env
from tests.conftest import hatchctl, make_repo

# -- hatch.toml: presets fill in, explicit keys win ---------------------------------------------


def test_explicit_keys_override_the_preset_and_env_is_merged(tmp_path: Path) -> None:
    cfg = parse_config(
        '[agents.factory]\npreset = "claude"\n'
        '[agents.qa]\npreset = "claude"\ncommand = ["claude", "--model", "opus"]\n'
        'stop = "exit"\nsandbox_writable = ["/srv/cache"]\n'
        'env = { DISABLE_AUTOUPDATER = "0", ANTHROPIC_BASE_URL = "http://127.0.0.1:9" }\n',
        tmp_path / "hatch.toml",
    )
    factory, qa = cfg.agents.factory, cfg.agents.qa
    assert factory.command == ["claude", "--dangerously-skip-permissions"]
    assert (factory.stop, factory.prompt_delivery) == ("claude-hook", "argument")
    assert factory.env == {
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL": "1",
    }
    assert factory.sandbox_writable == ["~/.claude"]
    assert qa.command == ["claude", "--model", "opus"]
    assert qa.stop == "exit"
    assert qa.sandbox_writable == ["/srv/cache"]
    assert qa.env == {  # merged: the preset's, a key set here wins
        "DISABLE_AUTOUPDATER": "0",
        "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL": "1",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
    }
    assert qa.prompt_delivery == "argument"  # not set: from the preset


def test_the_command_preset_keeps_todays_defaults(tmp_path: Path) -> None:
    default = parse_config("", tmp_path / "hatch.toml").agents.factory
    explicit = parse_config('[agents.factory]\npreset = "command"\n', tmp_path / "h.toml")
    assert default == AgentSection() == explicit.agents.factory
    assert default.command == ["hatchctl", "sim-agent"] and default.preset == "command"


@pytest.mark.parametrize("name", REAL)
def test_every_preset_fills_a_valid_agent_section(name: str) -> None:
    preset = agents.get(name)
    section = AgentSection.model_validate({"preset": name})
    assert section.command == list(preset.command)
    assert section.stop == preset.stop and section.prompt_delivery == preset.prompt_delivery
    assert section.sandbox_writable == list(preset.sandbox_writable)


def test_an_unknown_preset_is_one_error_line_naming_key_and_file(tmp_path: Path) -> None:
    make_repo(tmp_path)
    path = tmp_path / "hatch.toml"
    path.write_text('[agents.qa]\npreset = "cursor"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "invalid value for 'agents.qa.preset'" in message
    assert "unknown preset 'cursor' (one of: command, claude, codex, aider, gemini)" in message
    assert str(path) in message and "\n" not in message
    out = hatchctl("validate", cwd=tmp_path)
    assert out.returncode != 0
    assert out.stderr.strip().splitlines() == [f"hatchctl: {message}"]


# -- hatchctl init --agent ----------------------------------------------------------------------


def test_init_choices_are_the_presets() -> None:
    from hatchctl.cli import build_parser

    init = build_parser()._subparsers._group_actions[0].choices["init"]  # type: ignore[union-attr]
    choices = next(a.choices for a in init._actions if a.dest == "agent")
    assert sorted(choices) == sorted(REAL)


def _init_agent_writes_a_hatch_toml_for_the_preset(name: str, repo: Path) -> None:
    out = hatchctl("init", "--agent", name, cwd=repo)
    assert out.returncode == 0, out.stderr
    cfg = load_config(repo / "hatch.toml")
    for role in ("factory", "qa"):
        section: AgentSection = getattr(cfg.agents, role)
        if agents.get(name).role_problem(role):  # aider cannot review: the simulated QA
            assert section.preset == "command" and section.prompt_template == "prompts/qa.md"
            continue
        assert section.preset == name
        assert section.command == list(agents.get(name).command)
        assert section.prompt_template == f"prompts/{role}.md"
    assert hatchctl("validate", cwd=repo).returncode == 0


@pytest.mark.parametrize("name", [n for n in REAL if n != "claude"])
def test_init_agent_writes_a_hatch_toml_for_the_preset(name: str, tmp_path: Path) -> None:
    """(claude's: in the next test, whose doctor run starts from the same init.)"""
    _init_agent_writes_a_hatch_toml_for_the_preset(name, make_repo(tmp_path / "repo"))


def test_init_agent_claude_writes_a_hatch_toml_that_passes_validate_and_doctor(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo")
    _init_agent_writes_a_hatch_toml_for_the_preset("claude", repo)  # init, then validate
    exe = cli("claude")
    env = private_env(tmp_path / "home")
    env["PATH"] = f"{exe.parent}{os.pathsep}{env['PATH']}"
    out = hatchctl("doctor", cwd=repo, env=env)
    lines = out.stdout.splitlines()
    agent = [ln for ln in lines if "] agent factory+qa" in ln]
    assert any(ln.startswith("[ok] agent factory+qa flags:") for ln in agent), out.stdout
    assert any(ln.startswith("[ok] agent factory+qa version: Claude Code 2.1.332") for ln in agent)
    assert any(ln.startswith("[warn] agent factory+qa credentials:") for ln in agent)
    if os.geteuid() == 0 and sandbox.probe() is not None:  # root, no sandbox: refused, says why
        assert any(ln.startswith("[fail] agent factory+qa IS_SANDBOX:") for ln in agent)
    else:
        assert [ln for ln in lines if ln.startswith("[fail]")] == [], out.stdout
        assert out.returncode == 0, out.stdout + out.stderr
