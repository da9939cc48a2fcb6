"""A summary hatchctl derives from git for a preset that cannot write one (aider): through the
monitor's stop handling, on a real repository, with the refusals that go with it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from hatchctl import agents
from hatchctl.config import AgentSection
from hatchctl.engine import derived
from hatchctl.engine.deps import Deps
from hatchctl.engine.monitor import Monitor
from hatchctl.errors import SummaryError
from hatchctl.state.rows import RunRow
from hatchctl.state.summary import load_summary
from tests.conftest import git, make_repo, offline_deps

AIDER = '[agents.factory]\npreset = "aider"\n'


def _project(tmp_path: Path, toml: str = AIDER) -> tuple[Deps, RunRow, str]:
    """A repository whose task T (branch hatch/T, base = main) has a factory run that exited 0
    with no summary (recorded as stopped, as the monitor sees it)."""
    root = make_repo(tmp_path / "p")
    base = git(root, "rev-parse", "HEAD")
    git(root, "branch", "hatch/T", base)
    deps = offline_deps(root, toml, active=None)
    paths = deps.project.paths
    stop = paths.stop_file("T", "factory", 1, 1)
    summary = paths.summary_file("T", "factory", 1)
    summary.parent.mkdir(parents=True)
    with deps.store.tx() as tx:
        tx.insert_task("T", title="t")
        tx.transition_task("T", "pending", "active", phase="factory", iteration=1)
        tx.update_task("T", base_sha=base, branch="hatch/T")
        run = tx.insert_run(
            task_id="T",
            role="factory",
            iteration=1,
            attempt=1,
            window_name="T.factory.i1.a1",
            log_path="l",
            stop_path=str(stop.relative_to(root)),
            summary_path=str(summary.relative_to(root)),
            prompt_path="p",
        )
        tx.transition_run(run.id, "starting", "running")
    return deps, run, base


def _commit(root: Path, name: str, subject: str, date: str | None = None) -> str:
    """A commit on hatch/T (made through a worktree, as an agent would), its full SHA."""
    wt = root.parent / "wt"
    if not wt.exists():
        git(root, "worktree", "add", "-q", str(wt), "hatch/T")
    (wt / name).write_text(f"{name}\n")
    env = {**os.environ, **({"GIT_COMMITTER_DATE": date} if date else {})}
    for argv in (["add", name], ["commit", "-q", "-m", subject]):
        subprocess.run(["git", "-C", str(wt), *argv], env=env, check=True, timeout=30)
    return git(root, "rev-parse", "hatch/T")


def _exit(deps: Deps, run: RunRow, code: int = 0) -> RunRow:
    with deps.store.tx() as tx:
        out = tx.transition_run(run.id, "running", "stopped", exit_code=code, ended_at=tx.now)
    return out


def test_a_commit_made_by_the_run_becomes_a_derived_summary_and_the_task_goes_to_verify(
    tmp_path: Path,
) -> None:
    deps, run, base = _project(tmp_path)
    root = deps.project.root
    _commit(root, "old.txt", "an earlier round", "2001-01-01T00:00:00Z")
    sha = _commit(root, "hello.txt", "feat: add hello.txt")
    Monitor(deps, {}).after_stop(_exit(deps, run), exited=True)

    after = deps.store.run(run.id)
    assert after is not None and (after.state, after.reason) == ("succeeded", "completed")
    task = deps.store.task("T")
    assert task is not None and task.phase == "verify"
    path = deps.project.paths.summary_file("T", "factory", 1)
    summary = load_summary(path, task_id="T", role="factory", iteration=1)
    extra = summary.model_extra or {}
    assert extra["derived_by"] == "hatchctl"
    assert extra["derived_from"] == {
        "base": base,
        "branch": "hatch/T",
        "commits": 2,
        "new_commits": 1,
    }
    assert summary.commits == [sha]  # only this run's commit is claimed
    assert sorted(summary.implementation_files) == ["hello.txt", "old.txt"]  # base..branch
    assert "feat: add hello.txt" in summary.handover_notes
    assert summary.test_results is None and summary.metrics is None
    assert (path.stat().st_mode & 0o777) == 0o600
    events = [e for e in deps.store.events("T") if e.kind == "summary_derived"]
    assert len(events) == 1 and events[0].data["commits"] == 1, events


def test_nothing_committed_during_the_run_is_no_summary_as_before(tmp_path: Path) -> None:
    deps, run, _ = _project(tmp_path)
    _commit(deps.project.root, "old.txt", "an earlier round", "2001-01-01T00:00:00Z")
    Monitor(deps, {}).after_stop(_exit(deps, run), exited=True)
    after = deps.store.run(run.id)
    assert after is not None and (after.state, after.reason) == ("failed", "no_summary")
    assert not deps.project.paths.summary_file("T", "factory", 1).exists()
    assert "summary_derived" not in [e.kind for e in deps.store.events("T")]


def test_only_a_missing_summary_of_a_clean_factory_exit_of_such_a_preset_is_derived(
    tmp_path: Path,
) -> None:
    deps, run, _ = _project(tmp_path)
    missing = SummaryError("summary summary.json does not exist")
    ok = _exit(deps, run)
    assert derived.wanted(deps, ok, missing)
    assert not derived.wanted(deps, ok, SummaryError("summary summary.json is invalid: x"))
    assert not derived.wanted(deps, RunRow(**{**ok.__dict__, "exit_code": 1}), missing)
    assert not derived.wanted(deps, RunRow(**{**ok.__dict__, "role": "qa"}), missing)
    sim, sim_run, _ = _project(tmp_path / "sim", toml="")  # preset "command": the agent's job
    assert not derived.wanted(sim, _exit(sim, sim_run), missing)


def test_a_link_planted_at_the_summary_path_is_replaced_never_followed(tmp_path: Path) -> None:
    deps, run, _ = _project(tmp_path)
    target = tmp_path / "outside.json"
    target.write_text("{}")
    path = deps.project.paths.summary_file("T", "factory", 1)
    path.symlink_to(target)
    _commit(deps.project.root, "hello.txt", "feat: add hello.txt")
    summary = derived.derive(deps, _exit(deps, run), SummaryError("summary.json does not exist"))
    assert summary is not None
    assert target.read_text() == "{}" and not path.is_symlink()
    assert json.loads(path.read_text())["derived_by"] == "hatchctl"


def test_aider_cannot_be_the_qa_agent(tmp_path: Path) -> None:
    """A verdict cannot be derived: the preset refuses the QA role at launch (the supervisor
    turns that into a configuration error) and doctor fails it."""
    preset = agents.get("aider")
    env = {"OPENAI_API_KEY": "k", "HOME": str(tmp_path)}
    qa = agents.LaunchContext(sandbox="none", env=env, command=preset.command, role="qa")
    refusal = preset.preflight(qa) or ""
    assert "cannot be the QA agent" in refusal and "verdict" in refusal
    agent = AgentSection.model_validate({"preset": "aider"})
    assert [f.level for f in preset.checks(qa, agent) if f.name == "role"] == ["fail"]
    factory = agents.LaunchContext(sandbox="none", env=env, command=preset.command)
    assert preset.preflight(factory) is None
    assert agents.get("claude").role_problem("qa") is None


def test_aider_under_the_sandbox_needs_a_git_identity_in_its_config(tmp_path: Path) -> None:
    """aider 0.86.2 writes a placeholder user.name into the repository's config when git has
    none (GIT_AUTHOR_* do not count): read-only under the sandbox, so the launch is refused."""
    preset = agents.get("aider")
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "OPENAI_API_KEY": "k",
        "GIT_AUTHOR_NAME": "not enough",
    }
    ctx = agents.LaunchContext(sandbox="bwrap", env=env, command=preset.command, worktree=home)
    assert "user.name and user.email" in (preset.preflight(ctx) or "")
    unconfined = agents.LaunchContext(sandbox="none", env=env, command=preset.command)
    assert preset.preflight(unconfined) is None  # aider writes it (doctor warns)
    (home / ".gitconfig").write_text("[user]\n\tname = a\n\temail = a@example.com\n")
    assert preset.preflight(ctx) is None
