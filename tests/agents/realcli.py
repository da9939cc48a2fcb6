"""The pinned agent CLIs the preset tests run (tests/agents/test_preset_*.py): where they are
(tools/agent-clis: npm claude, codex, gemini; tools/aider-venv: pip aider; both installed by
tools/bootstrap.sh; a test needing one that is missing skips and says which), running one with a
private HOME and no credentials, or under hatchctl's own sandbox, and the known failure a text
shows."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from hatchctl import agents
from hatchctl.agents import LaunchContext, Preset
from hatchctl.runtime import sandbox
from tests.conftest import make_repo

ROOT = Path(__file__).resolve().parents[2]
NPM_BIN = ROOT / "tools/agent-clis/node_modules/.bin"
CLI_PATHS = {
    "claude": NPM_BIN / "claude",
    "codex": NPM_BIN / "codex",
    "gemini": NPM_BIN / "gemini",
    "aider": ROOT / "tools/aider-venv/bin/aider",
}
REAL = ("claude", "codex", "aider", "gemini")


def cli(name: str) -> Path:
    path = Path(os.environ.get(f"HATCH_{name.upper()}_BIN", CLI_PATHS[name]))
    if not (path.exists() and os.access(path, os.X_OK)):
        pytest.skip(f"the {name} CLI is not installed at {path} (run tools/bootstrap.sh)")
    return path


def run(argv: list[str | Path], env: dict[str, str] | None = None, timeout: float = 60) -> str:
    out = subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )
    return out.stdout + out.stderr


def private_env(home: Path) -> dict[str, str]:
    """No credentials and a private HOME: what a CLI does on a fresh machine."""
    env = {k: v for k, v in os.environ.items() if not re.search(r"API_KEY|TOKEN|^GOOGLE_", k)}
    home.mkdir(parents=True, exist_ok=True)
    return {**env, "HOME": str(home), "CODEX_HOME": str(home / ".codex")}


def failure(preset: Preset, text: str) -> str | None:
    found = preset.failure(text)
    return found.reason if found else None


def in_sandbox(name: str, tmp_path: Path) -> tuple[list[str], dict[str, str], Path]:
    """The preset's command under hatchctl's own bwrap profile: the repository writable, HOME
    read-only except the preset's ``sandbox_writable`` (``~`` is this test's HOME)."""
    if sandbox.probe() is not None:
        pytest.skip(f"bwrap does not work here: {sandbox.probe()}")
    exe, preset = cli(name), agents.get(name)
    repo = make_repo(tmp_path / "repo")
    home = tmp_path / "home"
    writable = [home / w.removeprefix("~/") for w in preset.sandbox_writable]
    sandbox.ensure_dirs(writable)
    (tmp_path / "hatch").mkdir()
    profile = sandbox.Profile(
        hatch_dir=tmp_path / "hatch",
        workdir=repo,
        writable=tuple(writable),
        visible=(home, exe.parent.resolve(), *sandbox.default_visible(repo, ROOT)),
    )
    env = {**private_env(home), **preset.env}
    env.update(preset.launch_env(LaunchContext(sandbox="bwrap", env=env)))
    return sandbox.argv(profile, [str(exe), *preset.command[1:]]), env, home
