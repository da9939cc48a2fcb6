"""The real aider CLI (the ``aider`` preset) driven end to end by hatchctl as the factory, against
a scripted fake OpenAI chat completions API; the simulated agent (``hatchctl sim-agent``) is QA.

aider gets a private HOME (never the user's ~/.aider), a fake key, the fake API as its OpenAI
base URL, ``--model openai/fake-model`` with a model metadata file (so neither aider nor litellm
fetches model prices from the network) and no repository map (``--map-tokens 0``: a faster
start). The fake API plays the model: an edit in aider's "whole" format (the default for a model
it does not know) that creates hello.txt, and the commit message aider asks for afterwards.
aider applies and commits the edit itself; it cannot write hatchctl's summary, so hatchctl
derives it from git, and verifies it like any other.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from hatchctl import agents
from hatchctl.project import Project
from hatchctl.runtime import sandbox
from hatchctl.state.summary import load_summary
from tests.agents.conftest import CLAUDE_LIMITS, PaneRecorder, git_out, tidy
from tests.agents.fake_openai_chat import FakeOpenAIChat, Script, whole_file
from tests.integration.conftest import Projects, drain, kinds

ROOT = Path(__file__).resolve().parents[2]
AIDER = Path(os.environ.get("HATCH_AIDER_BIN", ROOT / "tools/aider-venv/bin/aider"))
MODEL = "openai/fake-model"
API_KEY = "sk-fake-aider-0123456789"
TASK = "HELLO-1"
SPEC = {
    "files": ["hello.txt"],
    "acceptance": "grep -q 'hello from aider' hello.txt",
    "body": "Create hello.txt saying hello from aider.",
}
FACTORY = Script(
    "Create hello.txt saying hello",
    whole_file("hello.txt", "hello from aider", "Creating hello.txt."),
    "feat: add hello.txt",
)
# what aider knows of the fake model instead of fetching litellm's price list
METADATA = {
    MODEL: {
        "max_tokens": 8192,
        "max_input_tokens": 128000,
        "max_output_tokens": 8192,
        "input_cost_per_token": 0.000001,
        "output_cost_per_token": 0.000002,
        "litellm_provider": "openai",
        "mode": "chat",
    }
}


@pytest.fixture
def aider_cli() -> Path:
    if not (AIDER.exists() and os.access(AIDER, os.X_OK)):
        pytest.skip(f"aider is not installed at {AIDER} (run tools/bootstrap.sh)")
    return AIDER


def aider_agent(aider: Path, api: FakeOpenAIChat, home: Path) -> dict[str, Any]:
    """An [agents.factory] table: the aider preset's flags with the pinned binary, the fake
    model, and a private HOME (the one path outside the worktree it may write)."""
    home.mkdir(parents=True, exist_ok=True)
    # aider reads its commit identity from git's config, never GIT_AUTHOR_*: a user has one
    (home / ".gitconfig").write_text(
        "[user]\n\tname = aider user\n\temail = aider@hatchctl.invalid\n"
    )
    meta = home / "fake-model.json"
    meta.write_text(json.dumps(METADATA))
    preset = agents.get("aider").command
    assert preset[-1] == "--message"  # the prompt must follow it
    extra = ["--model", MODEL, "--model-metadata-file", str(meta), "--map-tokens", "0"]
    return {
        "preset": "aider",
        "command": [str(aider), *preset[1:-1], *extra, preset[-1]],
        "sandbox_writable": [str(home)],
        "env": {
            "HOME": str(home),
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_API_BASE": api.base,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # litellm's bundled prices, no download
        },
    }


def explain(api: FakeOpenAIChat, panes: PaneRecorder, p: Project) -> str:
    out = [f"requests: {api.paths()}"]
    deps_events = p.open_store().events(TASK)
    out.append(f"events: {[(e.kind, e.data) for e in deps_events]}")
    for name, screens in panes.screens.items():
        if screens:
            out.append(f"--- last screen of {name}:\n{tidy(screens[-1][1])}")
    return "\n".join(out)


def test_aider_factory_and_sim_qa_merge_a_task_with_a_derived_summary(
    projects: Projects, aider_cli: Path, tmp_path: Path
) -> None:
    """factory (the real aider, under hatchctl's sandbox: the default) -> QA (sim-agent) ->
    merged. aider's own commit reaches the integration branch; hatchctl derived the factory's
    summary from git (event and file), verified it, and stored the run's wall time."""
    with FakeOpenAIChat([FACTORY]) as api:
        agent = aider_agent(aider_cli, api, tmp_path / "aider-home")
        p = projects.make({TASK: SPEC}, {"agents": {"factory": agent}, "limits": CLAUDE_LIMITS})
        with PaneRecorder(p) as panes:
            code, tasks, deps = drain(p, time_limit=60)
        why = explain(api, panes, p)
    assert code == 0 and tasks[TASK].state == "completed", why
    assert git_out(p.root, "show", "hatch/integration:hello.txt") == "hello from aider"
    log = git_out(p.root, "log", "--format=%H%x1f%B%x1e", "hatch/integration")
    aider_commits = [c for c in log.split("\x1e") if "feat: add hello.txt" in c]
    assert len(aider_commits) == 1, log
    sha, body = aider_commits[0].strip().split("\x1f")
    assert f"Co-authored-by: aider ({MODEL})" in body  # aider committed it itself
    events = kinds(deps, TASK)
    assert "summary_derived" in events and "merged" in events, why
    assert events.index("summary_derived") < events.index("merged")

    factory_run, qa_run = deps.store.runs(TASK)
    assert (factory_run.role, factory_run.state, factory_run.exit_code) == (
        "factory",
        "succeeded",
        0,
    ), why
    assert (qa_run.role, qa_run.state, qa_run.reason) == ("qa", "succeeded", "approved"), why
    sandboxed = "none" if sandbox.probe() is not None else "bwrap"
    launched = [e.data for e in deps.store.events(TASK) if "sandbox" in (e.data or {})]
    assert [d["sandbox"] for d in launched] == [sandboxed, sandboxed], launched

    # the derived summary: git's facts, marked as hatchctl's, valid for the factory's round
    summary = load_summary(
        p.paths.summary_file(TASK, "factory", 1), task_id=TASK, role="factory", iteration=1
    )
    extra = summary.model_extra or {}
    assert extra["derived_by"] == "hatchctl"
    assert (summary.status, summary.commits) == ("completed", [sha])
    assert summary.implementation_files == ["hello.txt"]
    assert "feat: add hello.txt" in summary.handover_notes
    assert summary.test_results is None and summary.metrics is None  # nothing made up

    # what aider sent: our prompt (streamed), with the fake key, then its commit message call
    main, commit = api.calls("main"), api.calls("commit")
    assert len(main) == 1 and len(commit) == 1, api.paths()
    assert main[0].stream and main[0].body["model"] == "fake-model"
    assert main[0].headers["authorization"] == f"Bearer {API_KEY}"
    prompt = p.paths.prompt_file(TASK, "factory", 1, 1).read_text()
    assert prompt.strip() in main[0].prompt

    stored = deps.store.run(factory_run.id)
    assert stored is not None and stored.metrics["wall_seconds"] > 0, stored
    print(f"\nfactory metrics: {json.dumps(stored.metrics)}")
