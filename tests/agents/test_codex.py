"""The real Codex CLI (``codex exec``, the ``codex`` preset) driven end to end by hatchctl,
against a scripted fake OpenAI Responses API.

Each test makes a real project (real git, a private tmux server, hatchctl's bwrap sandbox where
it works), gives codex a private ``CODEX_HOME`` (never the user's ~/.codex) whose config.toml
names the fake API as its model provider, and runs a supervisor until it drains. The fake API
plays the model: calls to codex's shell tool that edit and commit a file and write the handover
summary.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from hatchctl import agents
from hatchctl.engine.deps import Deps
from hatchctl.project import Project
from hatchctl.runtime import sandbox
from tests.agents.conftest import CLAUDE_LIMITS, PaneRecorder, git_out, tidy
from tests.agents.fake_responses import Conversation, FakeResponses, codex_config, say, shell
from tests.agents.test_claude_code import summary_command
from tests.integration.conftest import Projects, drain, kinds

ROOT = Path(__file__).resolve().parents[2]
CODEX = Path(os.environ.get("HATCH_CODEX_BIN", ROOT / "tools/agent-clis/node_modules/.bin/codex"))
KEY_VAR = "HATCH_FAKE_OPENAI_KEY"  # the provider's env_key: a fake key, never a real one
TASK = "HELLO-1"
SPEC = {
    "files": ["hello.txt"],
    "acceptance": "grep -q 'hello from codex' hello.txt",
    "body": "Create hello.txt saying hello.",
}
COMMIT = (
    "printf 'hello from codex\\n' > hello.txt && git add hello.txt && "
    "git commit -q -m 'Add hello.txt' && git log --oneline -1"
)
FACTORY = Conversation(
    "You are the FACTORY agent",
    (
        shell(COMMIT, "Creating and committing hello.txt."),
        shell(summary_command("factory", "completed", ', "implementation_files": ["hello.txt"]')),
        say("Done: hello.txt is committed and the summary is written."),
    ),
)
QA = Conversation(
    "You are the QA agent",
    (
        shell("git diff --stat HEAD~1 && grep -q 'hello from codex' hello.txt", "Reviewing."),
        shell(summary_command("qa", "approved", ', "findings": []')),
        say("Approved: hello.txt is there and the acceptance command passes."),
    ),
)


@pytest.fixture
def codex_cli() -> Path:
    if not (CODEX.exists() and os.access(CODEX, os.X_OK)):
        pytest.skip(f"the Codex CLI is not installed at {CODEX} (run tools/bootstrap.sh)")
    return CODEX


def codex_agent(codex: Path, home: Path, *, key: bool = True) -> dict[str, Any]:
    """An [agents.<role>] table: the codex preset with the pinned binary's path (the preset's
    own flags) and a private CODEX_HOME, the one path outside the worktree it may write."""
    env = {"CODEX_HOME": str(home)}
    if key:
        env[KEY_VAR] = "sk-fake-codex-0123456789"
    return {
        "preset": "codex",
        "command": [str(codex), *agents.get("codex").command[1:]],
        "sandbox_writable": [str(home)],
        "env": env,
    }


def codex_project(
    projects: Projects, codex: Path, api: FakeResponses, home: Path, *, key: bool = True
) -> Project:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(codex_config(api, KEY_VAR))
    agent = codex_agent(codex, home, key=key)
    return projects.make(
        {TASK: SPEC}, {"agents": {"factory": agent, "qa": agent}, "limits": CLAUDE_LIMITS}
    )


def explain(api: FakeResponses, panes: PaneRecorder, deps: Deps | None = None) -> str:
    out = ["requests: " + ", ".join(f"{r.path}:{r.kind}:{r.step}" for r in api.requests)]
    out += [f"outputs: {r.outputs()[-1:]}" for r in api.main_calls() if r.outputs()]
    if deps is not None:
        out.append(f"events: {[(e.kind, e.data) for e in deps.store.events(TASK)]}")
    for name, screens in panes.screens.items():
        if screens:  # a window recorded before it drew anything has none
            out.append(f"--- last screen of {name}:\n{tidy(screens[-1][1])}")
    return "\n".join(out)


def test_codex_factory_and_qa_merge_a_task_and_the_session_gives_token_usage(
    projects: Projects, codex_cli: Path, tmp_path: Path
) -> None:
    """factory -> QA -> merged with the real codex exec under hatchctl's sandbox (the default);
    each run's tokens come from its own codex session file and equal what the fake API
    reported for that run's calls."""
    home = tmp_path / "codex-home"
    with FakeResponses([FACTORY, QA]) as api:
        p = codex_project(projects, codex_cli, api, home)
        with PaneRecorder(p) as panes:
            code, tasks, deps = drain(p, time_limit=60)
    why = explain(api, panes, deps)
    assert code == 0 and tasks[TASK].state == "completed", why
    assert git_out(p.root, "show", "hatch/integration:hello.txt") == "hello from codex"
    assert "Add hello.txt" in git_out(p.root, "log", "--format=%s", "hatch/integration")
    assert "merged" in kinds(deps, TASK), why

    factory_run, qa_run = deps.store.runs(TASK)
    sandboxed = "none" if sandbox.probe() is not None else "bwrap"
    launched = [e.data for e in deps.store.events(TASK) if "sandbox" in (e.data or {})]
    assert [d["sandbox"] for d in launched] == [sandboxed, sandboxed], launched

    # what codex sent: its shell tool, our prompt, the fake key from the provider's env_key
    first = api.main_calls()[0]
    assert "exec_command" in first.tool_names
    assert first.headers["authorization"] == "Bearer sk-fake-codex-0123456789"
    prompt = p.paths.prompt_file(TASK, "factory", 1, 1).read_text()
    assert prompt.strip() in first.prompt
    assert "Add hello.txt" in api.main_calls()[1].outputs()[0]  # `git log --oneline -1`

    # each run's metrics (stored in the db) are its own calls' usage, from its session file
    sessions = sorted((home / "sessions").rglob("rollout-*.jsonl"))
    assert len(sessions) == 2, sessions
    for run, conv in ((factory_run, 0), (qa_run, 1)):
        calls = [r for r in api.main_calls() if r.conversation == conv]
        stored = deps.store.run(run.id)
        assert stored is not None
        m = stored.metrics
        assert m["source"] == "codex-session", m
        assert m["turns"] == len(calls) == 3
        assert m["model"] == "gpt-5-fake"
        usage = [c.usage for c in calls]
        cached = sum(u["input_tokens_details"]["cached_tokens"] for u in usage)
        assert m["tokens_in"] == sum(u["input_tokens"] for u in usage) - cached
        assert m["cache_read"] == cached
        assert m["tokens_out"] == sum(u["output_tokens"] for u in usage)
        assert m["reasoning_tokens"] == sum(
            u["output_tokens_details"]["reasoning_tokens"] for u in usage
        )
        assert m["wall_seconds"] > 0
    print(f"\nfactory metrics: {json.dumps(factory_run.metrics)}")
    print(f"session files: {[s.name for s in sessions]}")


def test_a_missing_provider_key_fails_the_run_at_once_with_its_reason(
    projects: Projects, codex_cli: Path, tmp_path: Path
) -> None:
    """The provider's env_key variable is not in the agent's environment: codex exits 1 with
    "Missing environment variable"; hatchctl recognises the preset's failure on the screen and
    fails the run (codex_missing_env_key) instead of restarting it. Doctor's credentials line
    says so before any run."""
    preset = agents.get("codex")
    with FakeResponses([FACTORY, QA]) as api:
        p = codex_project(projects, codex_cli, api, tmp_path / "codex-home", key=False)
        factory = p.config.agents.factory
        env = agents.agent_env(factory)
        ctx = agents.LaunchContext(sandbox="bwrap", env=env, command=tuple(factory.command))
        missing = preset.credentials(ctx)
        assert missing is not None and missing.level == "warn", missing
        assert f"Missing environment variable: `{KEY_VAR}`" in missing.detail
        keyed = agents.LaunchContext(sandbox="bwrap", env={**env, KEY_VAR: "k"}, command=())
        ok = preset.credentials(keyed)
        assert ok is not None and (ok.level, KEY_VAR in ok.detail) == ("ok", True), ok

        with PaneRecorder(p) as panes:
            _, tasks, deps = drain(p, time_limit=30)
    why = explain(api, panes, deps)
    assert tasks[TASK].state == "failed", why
    runs = deps.store.runs(TASK)
    assert [(r.state, r.reason) for r in runs] == [("failed", "codex_missing_env_key")], why
    assert runs[0].exit_code == 1 and api.main_calls() == [], why
