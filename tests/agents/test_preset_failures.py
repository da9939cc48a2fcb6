"""The agent presets' known failures, produced by the real CLIs (no credentials, root, a browser
login), most under hatchctl's own sandbox with only the preset's paths writable."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from hatchctl import agents
from hatchctl.agents import LaunchContext
from tests.agents.realcli import cli, failure, in_sandbox, private_env, run
from tests.conftest import poll

# -- known failure texts, produced by the real CLIs ---------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="Claude Code's root refusal needs root")
def test_claude_root_refusal_is_a_known_failure(tmp_path: Path) -> None:
    env = private_env(tmp_path / "home")
    env.pop("IS_SANDBOX", None)
    out = run([cli("claude"), *agents.get("claude").command[1:], "-p", "hi"], env, timeout=30)
    assert failure(agents.get("claude"), out) == "claude_root_refused", out


def test_gemini_without_credentials_is_a_known_failure_under_hatchctls_sandbox(
    tmp_path: Path,
) -> None:
    """Gemini CLI under hatchctl's sandbox (only its preset's paths writable) gets as far as
    asking for credentials: the known failure, not a read-only file system."""
    argv, env, _ = in_sandbox("gemini", tmp_path)
    out = subprocess.run(
        [*argv, "hi"], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 41, out.stderr  # 0.61.0: FatalAuthenticationError
    assert failure(agents.get("gemini"), out.stdout + out.stderr) == "gemini_no_auth"
    assert "YOLO mode is enabled" in out.stderr
    assert "not trusted" not in out.stderr  # --skip-trust kept yolo on in an untrusted repo
    assert "read-only file system" not in (out.stdout + out.stderr).lower(), out.stderr[-3000:]


def test_aider_without_a_key_waits_for_a_browser_and_is_caught(tmp_path: Path) -> None:
    """aider 0.86.2 with no key starts an OpenRouter login and waits minutes: the preset's
    failure patterns see both texts within seconds, and its preflight refuses such a run. It
    runs under hatchctl's sandbox with only its preset's paths writable: getting that far shows
    they are enough (no read-only file system on the way)."""
    argv, env, _ = in_sandbox("aider", tmp_path)
    repo = tmp_path / "repo"
    proc = subprocess.Popen(
        [*argv, "say hi"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            seen.append(line)
            if "Waiting up to" in line or not line:
                break
    finally:
        proc.kill()
        proc.wait(timeout=10)
    text = "".join(seen)
    preset = agents.get("aider")
    assert failure(preset, text) == "aider_no_api_key", text
    assert "read-only file system" not in text.lower(), text[-3000:]
    assert failure(preset, text.split("No LLM model")[1]) == "aider_browser_login", text
    ctx = LaunchContext(sandbox="none", env=env, command=preset.command, worktree=repo)
    assert "would offer an OpenRouter login" in (preset.preflight(ctx) or "")
    keyed = LaunchContext(sandbox="none", env={**env, "ANTHROPIC_API_KEY": "k"}, worktree=repo)
    assert preset.preflight(keyed) is None
    (repo / ".env").write_text("OPENAI_API_KEY=sk-x\n")
    assert preset.preflight(ctx) is None  # aider reads the worktree's .env too


@pytest.mark.parametrize("name", ["claude"])
def test_sandbox_writable_is_enough_to_start_under_hatchctls_sandbox(
    name: str, tmp_path: Path
) -> None:
    """Claude Code starts under hatchctl's sandbox with only its preset's paths writable and
    gets as far as asking for credentials: the known failure, not a read-only file system.
    (Gemini's and aider's no-credential tests above run under the sandbox too.)"""
    argv, env, _ = in_sandbox(name, tmp_path)
    prompt = ["-p", "hi"]  # print mode: exits at once
    proc = subprocess.Popen(
        [*argv, *prompt],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    expected = {"claude": "claude_not_logged_in"}[name]
    seen = ""
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and failure(agents.get(name), seen) != expected:
            line = proc.stdout.readline()
            if not line:
                break
            seen += line
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert failure(agents.get(name), seen) == expected, seen[-3000:]
    assert "read-only file system" not in seen.lower(), seen[-3000:]


def test_codex_writes_its_session_under_hatchctls_sandbox(tmp_path: Path) -> None:
    """codex exec under hatchctl's sandbox with only ~/.codex writable records its session
    (the preset's metrics source) before it ever reaches a model."""
    argv, env, home = in_sandbox("codex", tmp_path)
    proc = subprocess.Popen(
        [*argv, "hi"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        sessions = home / ".codex" / "sessions"
        found = poll(  # created first, written a moment later: wait for its first line
            lambda: [f for f in sessions.rglob("rollout-*.jsonl") if f.read_text().strip()],
            timeout=45,
            what="a session",
        )
        first = json.loads(found[0].read_text().splitlines()[0])
        assert first["type"] == "session_meta"
        assert first["payload"]["cli_version"] == agents.get("codex").version
    finally:
        proc.kill()
        proc.wait(timeout=10)
