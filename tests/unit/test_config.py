from __future__ import annotations

from pathlib import Path

import pytest

from hatchctl.config import find_config, load_config, parse_config
from hatchctl.errors import ConfigError


def test_defaults_for_everything(tmp_path: Path) -> None:
    cfg = parse_config("", tmp_path / "hatch.toml")
    assert cfg.limits.max_strikes == 3
    assert cfg.limits.restart.max_restarts == 5
    assert cfg.limits.restart.initial_backoff == 5.0
    assert cfg.limits.restart.max_backoff == 300.0
    assert cfg.limits.restart.reset_after == 600.0
    assert cfg.agents.factory.command == ["hatchctl", "sim-agent"]
    assert cfg.limits.stall_seconds == cfg.limits.idle_timeout / 2


def test_durations_and_sections(tmp_path: Path) -> None:
    cfg = parse_config(
        '[limits]\nrun_timeout = "1h"\nidle_timeout = "90s"\n[agents.qa]\n'
        'command = ["claude", "-p"]\nstop = "claude-hook"\nprompt_delivery = "paste"\n',
        tmp_path / "hatch.toml",
    )
    assert cfg.limits.run_timeout == 3600
    assert cfg.limits.idle_timeout == 90
    assert cfg.agents.qa.command == ["claude", "-p"]
    assert cfg.agents.qa.stop == "claude-hook"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[limits]\nmax_actve = 3\n", "unknown key 'limits.max_actve'"),
        ("[projct]\n", "unknown key 'projct'"),
        ('[limits]\nrun_timeout = "forever"\n', "invalid value for 'limits.run_timeout'"),
        ('[agents.factory]\nstop = "magic"\n', "invalid value for 'agents.factory.stop'"),
        ("[agents.factory]\ncommand = []\n", "invalid value for 'agents.factory.command'"),
        ('[project]\nname = "a b"\n', "invalid value for 'project.name'"),
        ("this is = not toml [", "invalid TOML"),
    ],
)
def test_bad_config_names_key_and_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "hatch.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_find_config_walks_up(tmp_path: Path) -> None:
    (tmp_path / "hatch.toml").write_text("")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_config(deep) == (tmp_path / "hatch.toml").resolve()


def test_find_config_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no hatch.toml found"):
        find_config(tmp_path)
