"""The Claude Code preset: IS_SANDBOX, workspace trust and credentials as doctor reports them, and
the trust pre-seeded in ~/.claude.json (atomic, under Claude Code's lock, concurrent seeding,
the real CLI skipping its trust dialog in a seeded worktree)."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from hatchctl import agents
from hatchctl.agents import LaunchContext, claude
from hatchctl.config import AgentSection
from hatchctl.errors import HatchError
from hatchctl.project import Project
from hatchctl.runtime.doctor import agent_checks
from tests.agents.realcli import cli, private_env
from tests.agents.seed_worker import seed_one
from tests.conftest import make_repo, poll

# -- Claude Code: IS_SANDBOX, trust and credentials as doctor reports them ----------------------


def _ctx(home: Path, *, uid: int = 0, sandbox_mode: str = "bwrap", **env: str) -> LaunchContext:
    return LaunchContext(
        sandbox=sandbox_mode, env={"HOME": str(home), **env}, uid=uid, command=("claude",)
    )


def _levels(findings: list[agents.Finding]) -> dict[str, str]:
    return {f.name: f.level for f in findings}


def test_claude_is_sandbox_states(tmp_path: Path) -> None:
    preset, agent = agents.get("claude"), AgentSection(preset="claude")
    state = {
        ("root", "bwrap", ""): "ok",
        ("root", "none", ""): "fail",
        ("root", "none", "1"): "warn",
        ("user", "none", ""): "ok",
    }
    for (who, mode, flag), level in state.items():
        extra = {"IS_SANDBOX": flag} if flag else {}
        ctx = _ctx(tmp_path, uid=0 if who == "root" else 1000, sandbox_mode=mode, **extra)
        assert _levels(preset.checks(ctx, agent))["IS_SANDBOX"] == level, (who, mode, flag)
    # the variable itself: set at launch only for runs inside hatchctl's sandbox
    assert preset.launch_env(_ctx(tmp_path)) == {"IS_SANDBOX": "1"}
    assert preset.launch_env(_ctx(tmp_path, sandbox_mode="none")) == {}
    mine = AgentSection(preset="claude", env={"IS_SANDBOX": "0"})
    assert agents.launch_env(mine, _ctx(tmp_path)) == {}  # hatch.toml wins
    no_bypass = AgentSection(preset="claude", command=["claude"])
    assert _levels(preset.checks(_ctx(tmp_path), no_bypass))["IS_SANDBOX"] == "warn"


def test_claude_trust_and_credentials_states(tmp_path: Path) -> None:
    preset, agent = agents.get("claude"), AgentSection(preset="claude")
    home = tmp_path / "home"
    home.mkdir()
    trusted, fresh = tmp_path / "wt" / "T-1", tmp_path / "wt" / "T-2"
    trusted.mkdir(parents=True)
    fresh.mkdir()
    ctx = LaunchContext(sandbox="bwrap", env={"HOME": str(home)}, worktrees=(trusted, fresh))
    assert preset.credentials(ctx).level == "warn"
    assert "Not logged in" in preset.credentials(ctx).detail
    claude.seed_trust(home / ".claude.json", [trusted])
    checks = {f.name: f for f in preset.checks(ctx, agent)}
    assert checks["trust"].level == "ok"
    assert "1 of 2 existing worktrees trusted" in checks["trust"].detail
    assert checks["first run"].level == "warn"  # never onboarded in this HOME
    key = "sk-ant-test-0123456789abcdefghij"
    with_key = LaunchContext(sandbox="bwrap", env={"HOME": str(home), "ANTHROPIC_API_KEY": key})
    assert preset.credentials(with_key).level == "warn"  # would ask "use this API key?"
    for answer, level in (("approved", "ok"), ("rejected", "fail")):
        data = json.loads((home / ".claude.json").read_text())
        data["customApiKeyResponses"] = {answer: [key[-20:]]}
        (home / ".claude.json").write_text(json.dumps(data))
        assert preset.credentials(with_key).level == level
    (home / ".claude").mkdir()
    (home / ".claude" / ".credentials.json").write_text("{}")
    assert preset.credentials(ctx).level == "ok"
    (home / ".claude.json").write_text("{not json")
    assert _levels(preset.checks(ctx, agent))["trust"] == "fail"


def test_doctor_reports_claude_states_with_the_real_cli(tmp_path: Path) -> None:
    exe = cli("claude")
    repo = make_repo(tmp_path / "repo")
    (repo / "hatch.toml").write_text(
        f'[agents.factory]\npreset = "claude"\ncommand = ["{exe}", "--dangerously-skip-permissions"]\n'
    )
    project = Project.find(repo)
    wt = project.paths.worktrees / "T-1"
    wt.mkdir(parents=True)
    home = tmp_path / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        for var in (
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_AUTH_TOKEN",
            "CLAUDE_CODE_OAUTH_TOKEN",
            "IS_SANDBOX",
        ):
            mp.delenv(var, raising=False)
        home.mkdir()
        claude.seed_trust(home / ".claude.json", [wt])
        lines = {c.name: c for c in agent_checks(project, problem=None)}
        root_fail = agent_checks(project, problem="no bwrap here")
    assert lines["agent factory flags"].level == "ok"
    assert lines["agent factory credentials"].level == "warn"
    assert "1 of 1 existing worktrees trusted" in lines["agent factory trust"].detail
    assert lines["agent factory IS_SANDBOX"].level == "ok"
    assert lines["agent qa"].level == "ok"  # qa: the default command preset, unchanged
    if os.geteuid() == 0:
        by_name = {c.name: c.level for c in root_fail}
        assert by_name["agent factory IS_SANDBOX"] == "fail"


# -- Claude Code: workspace trust pre-seeded in ~/.claude.json ----------------------------------


def test_trust_seeding_keeps_every_other_key_and_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / ".claude.json"
    other = {
        "numStartups": 7,
        "oauthAccount": {"emailAddress": "me@example.com"},
        "projects": {"/elsewhere": {"allowedTools": ["Bash"], "hasTrustDialogAccepted": False}},
    }
    path.write_text(json.dumps(other))
    path.chmod(0o640)
    wt = tmp_path / "wt"
    wt.mkdir()
    (tmp_path / "link").symlink_to(wt)
    before = path.stat().st_ino
    assert claude.seed_trust(path, [tmp_path / "link"]) is True
    data = json.loads(path.read_text())
    assert data["numStartups"] == 7 and data["oauthAccount"] == other["oauthAccount"]
    assert data["projects"]["/elsewhere"] == other["projects"]["/elsewhere"]
    # the path given and its real path (Claude Code looks trust up by the real cwd)
    assert data["projects"][str(tmp_path / "link")] == {"hasTrustDialogAccepted": True}
    assert data["projects"][str(wt)] == {"hasTrustDialogAccepted": True}
    st = path.stat()
    assert st.st_ino != before, "replaced by rename, never rewritten in place"
    assert st.st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == [".claude.json", "link", "wt"]
    assert claude.seed_trust(path, [wt]) is False and path.stat().st_ino == st.st_ino
    # an entry with other keys keeps them
    data["projects"]["/elsewhere"]["hasTrustDialogAccepted"] = False
    path.write_text(json.dumps(data))
    claude.seed_trust(path, [Path("/elsewhere")])
    entry = json.loads(path.read_text())["projects"]["/elsewhere"]
    assert entry == {"allowedTools": ["Bash"], "hasTrustDialogAccepted": True}


def test_trust_seeding_never_leaves_a_half_written_file(tmp_path: Path) -> None:
    path = tmp_path / ".claude.json"
    path.write_text('{"keep": 1}')
    wt = tmp_path / "wt"
    wt.mkdir()

    def broken(*args: Any) -> None:
        raise OSError("disk full")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "replace", broken)
        with pytest.raises(OSError):
            claude.seed_trust(path, [wt])
    assert path.read_text() == '{"keep": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == [".claude.json", "wt"]  # no temp, lock
    path.write_text("{not json")
    with pytest.raises(HatchError, match="not valid JSON"):
        claude.seed_trust(path, [wt])
    assert path.read_text() == "{not json"


def test_trust_seeding_takes_claude_codes_lock(tmp_path: Path) -> None:
    path = tmp_path / ".claude.json"
    lock = tmp_path / ".claude.json.lock"
    wt = tmp_path / "wt"
    wt.mkdir()
    lock.mkdir()  # Claude Code is saving its config right now
    with pytest.raises(HatchError, match="held by another process"):
        claude.seed_trust(path, [wt], timeout=0.3)
    assert not path.exists()
    old = time.time() - 60
    os.utime(lock, (old, old))  # left behind by a dead process
    assert claude.seed_trust(path, [wt], timeout=0.3) is True
    assert not lock.exists()


def test_concurrent_seeding_loses_no_worktree(tmp_path: Path) -> None:
    path = tmp_path / ".claude.json"
    path.write_text('{"projects": {}, "keep": true}')
    worktrees = [tmp_path / f"wt{i}" for i in range(8)]
    for wt in worktrees:
        wt.mkdir()
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        assert all(pool.map(seed_one, [(str(path), str(w)) for w in worktrees]))
    data = json.loads(path.read_text())
    assert data["keep"] is True
    assert all(claude.is_trusted(data, w) for w in worktrees)


def test_real_claude_skips_the_trust_dialog_in_a_seeded_worktree(tmp_path: Path) -> None:
    """Claude Code 2.1.332 in a tmux pane: a worktree seeded by prepare_worktree starts at the
    input box; an unseeded one shows the trust dialog (a waiting pattern)."""
    exe = cli("claude")
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    preset = agents.get("claude")
    home = tmp_path / "home"
    key = "sk-ant-fake-0123456789abcdefghij"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude" / "settings.json").write_text('{"skipDangerousModePermissionPrompt": true}')
    state = {"hasCompletedOnboarding": True, "customApiKeyResponses": {"approved": [key[-20:]]}}
    (home / ".claude.json").write_text(json.dumps(state))
    seeded, unseeded = make_repo(tmp_path / "seeded"), make_repo(tmp_path / "unseeded")
    env = {
        **private_env(home),
        "ANTHROPIC_API_KEY": key,
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
    }
    env.update(preset.env)
    # not in bwrap here: IS_SANDBOX=1 only lets Claude Code start as root (this test is about trust)
    env.update(preset.launch_env(LaunchContext(sandbox="bwrap", env=env)))
    preset.prepare_worktree(seeded, env)
    assert json.loads((home / ".claude.json").read_text())["hasCompletedOnboarding"] is True
    tmux = ["tmux", "-L", f"hatch-presets-{os.getpid()}"]
    passed = ("HOME", "PATH", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "IS_SANDBOX")
    flags = [f"-e{k}={env[k]}" for k in (*passed, *preset.env) if k in env]
    command = [str(exe), *preset.command[1:]]
    try:
        for args, wt in (
            (["new-session", "-d", "-s", "p", "-x", "120", "-y", "40"], seeded),  # window p:0
            (["new-window", "-t", "p:1"], unseeded),
        ):
            argv = [*tmux, *args, "-c", str(wt), *flags, *command]
            subprocess.run(argv, check=True, timeout=10, env=env)

        def screen(window: int) -> str:
            argv = [*tmux, "capture-pane", "-p", "-t", f"p:{window}"]
            return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout

        dialog = poll(lambda: preset.waiting(screen(1)), timeout=45, what="the trust dialog")
        assert dialog == r"Yes, I trust this folder"
        ready = poll(
            lambda: "bypass permissions on" in screen(0) and screen(0),
            timeout=45,
            what="the input box in the seeded worktree",
        )
        assert preset.waiting(ready) is None, ready
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, timeout=10)
