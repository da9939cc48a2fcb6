"""Agent presets (hatchctl/agents/) against the real CLIs they were written for.

The pinned CLIs live in tools/agent-clis (npm: claude, codex, gemini) and tools/aider-venv
(pip: aider), both installed by tools/bootstrap.sh; a test needing one that is missing skips and
says which. Everything else (config merging, trust seeding, doctor's findings) needs no CLI.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from hatchctl import agents
from hatchctl.agents import LaunchContext, Preset, claude
from hatchctl.config import AgentSection, load_config, parse_config
from hatchctl.errors import ConfigError, HatchError
from hatchctl.project import Project
from hatchctl.runtime import sandbox
from hatchctl.runtime.doctor import agent_checks
from tests.agents.seed_worker import seed_one
from tests.conftest import hatchctl, make_repo, poll

ROOT = Path(__file__).resolve().parents[2]
NPM_BIN = ROOT / "tools/agent-clis/node_modules/.bin"
CLI_PATHS = {
    "claude": NPM_BIN / "claude",
    "codex": NPM_BIN / "codex",
    "gemini": NPM_BIN / "gemini",
    "aider": ROOT / "tools/aider-venv/bin/aider",
}
REAL = ("claude", "codex", "aider", "gemini")
# what says, in each CLI's own help, that the prompt may be the command's last argument
PROMPT_SLOT = {
    "claude": r"Usage: claude \[options\] \[command\] \[prompt\]",
    "codex": r"Usage: codex exec \[OPTIONS\] \[PROMPT\]",
    "aider": r"--message COMMAND, --msg COMMAND, -m COMMAND",
    "gemini": r"-p, --prompt\s+Run in non-interactive \(headless\) mode with the given prompt",
}


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


# -- known failure texts, produced by the real CLIs ---------------------------------------------


def _failure(preset: Preset, text: str) -> str | None:
    found = preset.failure(text)
    return found.reason if found else None


@pytest.mark.skipif(os.geteuid() != 0, reason="Claude Code's root refusal needs root")
def test_claude_root_refusal_is_a_known_failure(tmp_path: Path) -> None:
    env = private_env(tmp_path / "home")
    env.pop("IS_SANDBOX", None)
    out = run([cli("claude"), *agents.get("claude").command[1:], "-p", "hi"], env, timeout=30)
    assert _failure(agents.get("claude"), out) == "claude_root_refused", out


def test_gemini_without_credentials_is_a_known_failure_under_hatchctls_sandbox(
    tmp_path: Path,
) -> None:
    """Gemini CLI under hatchctl's sandbox (only its preset's paths writable) gets as far as
    asking for credentials: the known failure, not a read-only file system."""
    argv, env, _ = _in_sandbox("gemini", tmp_path)
    out = subprocess.run(
        [*argv, "hi"], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 41, out.stderr  # 0.61.0: FatalAuthenticationError
    assert _failure(agents.get("gemini"), out.stdout + out.stderr) == "gemini_no_auth"
    assert "YOLO mode is enabled" in out.stderr
    assert "not trusted" not in out.stderr  # --skip-trust kept yolo on in an untrusted repo
    assert "read-only file system" not in (out.stdout + out.stderr).lower(), out.stderr[-3000:]


def test_aider_without_a_key_waits_for_a_browser_and_is_caught(tmp_path: Path) -> None:
    """aider 0.86.2 with no key starts an OpenRouter login and waits minutes: the preset's
    failure patterns see both texts within seconds, and its preflight refuses such a run. It
    runs under hatchctl's sandbox with only its preset's paths writable: getting that far shows
    they are enough (no read-only file system on the way)."""
    argv, env, _ = _in_sandbox("aider", tmp_path)
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
    assert _failure(preset, text) == "aider_no_api_key", text
    assert "read-only file system" not in text.lower(), text[-3000:]
    assert _failure(preset, text.split("No LLM model")[1]) == "aider_browser_login", text
    ctx = LaunchContext(sandbox="none", env=env, command=preset.command, worktree=repo)
    assert "would offer an OpenRouter login" in (preset.preflight(ctx) or "")
    keyed = LaunchContext(sandbox="none", env={**env, "ANTHROPIC_API_KEY": "k"}, worktree=repo)
    assert preset.preflight(keyed) is None
    (repo / ".env").write_text("OPENAI_API_KEY=sk-x\n")
    assert preset.preflight(ctx) is None  # aider reads the worktree's .env too


def _in_sandbox(name: str, tmp_path: Path) -> tuple[list[str], dict[str, str], Path]:
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


@pytest.mark.parametrize("name", ["claude"])
def test_sandbox_writable_is_enough_to_start_under_hatchctls_sandbox(
    name: str, tmp_path: Path
) -> None:
    """Claude Code starts under hatchctl's sandbox with only its preset's paths writable and
    gets as far as asking for credentials: the known failure, not a read-only file system.
    (Gemini's and aider's no-credential tests above run under the sandbox too.)"""
    argv, env, _ = _in_sandbox(name, tmp_path)
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
        while time.monotonic() < deadline and _failure(agents.get(name), seen) != expected:
            line = proc.stdout.readline()
            if not line:
                break
            seen += line
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert _failure(agents.get(name), seen) == expected, seen[-3000:]
    assert "read-only file system" not in seen.lower(), seen[-3000:]


def test_codex_writes_its_session_under_hatchctls_sandbox(tmp_path: Path) -> None:
    """codex exec under hatchctl's sandbox with only ~/.codex writable records its session
    (the preset's metrics source) before it ever reaches a model."""
    argv, env, home = _in_sandbox("codex", tmp_path)
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
