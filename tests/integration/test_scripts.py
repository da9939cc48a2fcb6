"""The bash scripts, run for real: worktrees, merges, mounts, the agent wrapper."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from hatchctl.runtime.scripts import builtin_root, mounts_under
from hatchctl.runtime.tmux import Tmux
from tests.conftest import git

SCRIPTS = builtin_root()


def script(
    name: str, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPTS / name), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def test_every_script_is_strict_documented_and_dry_runnable() -> None:
    scripts = sorted(p for p in SCRIPTS.rglob("*.sh") if p.name != "lib.sh")
    assert len(scripts) == 16
    for path in scripts:
        text = path.read_text()
        assert text.startswith("#!/usr/bin/env bash\n# "), path
        if not path.name.endswith("_hook.sh"):  # a hook must never fail its agent: no set -e
            assert "set -euo pipefail" in text, path
            assert "Exit codes" in text, path
        if path.parent.name != "agent":  # the agent wrappers run the agent; the rest can dry-run
            assert "parse_common" in text and "[--dry-run]" in text, path


def test_create_worktree_validates_ids(repo: Path) -> None:
    for bad in ("../x", "a b", "$(rm)", "-rf"):
        out = script("git/create_worktree.sh", str(repo), str(repo / "wt"), bad, "main")
        assert out.returncode == 2, bad
        assert "invalid task id" in out.stderr
    assert not (repo / "wt").exists()


def test_dry_run_prints_and_changes_nothing(repo: Path) -> None:
    out = script("git/create_worktree.sh", "--dry-run", str(repo), str(repo / "wt"), "T-1", "main")
    assert out.returncode == 0, out.stderr
    assert "+ git -C" in out.stderr and "worktree add" in out.stderr
    assert not (repo / "wt").exists()
    assert "hatch/T-1" not in git(repo, "branch", "--list")


def test_worktree_lifecycle_and_merge_conflict(repo: Path) -> None:
    integ = repo / ".hatch" / "worktrees" / "_integration"
    out = script("git/ensure_integration.sh", str(repo), str(integ), "hatch/integration", "main")
    assert out.returncode == 0, out.stderr
    for task, content in (("A", "from A\n"), ("B", "from B\n")):
        wt = repo / ".hatch" / "worktrees" / task
        out = script("git/create_worktree.sh", str(repo), str(wt), task, "hatch/integration")
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == git(repo, "rev-parse", "hatch/integration")
        (wt / "shared.txt").write_text(content)
        git(wt, "add", "shared.txt")
        git(wt, "commit", "-q", "-m", f"{task} writes shared.txt")
    assert script("git/merge_branch.sh", str(integ), "hatch/A").returncode == 0
    tip = git(integ, "rev-parse", "HEAD")
    conflict = script("git/merge_branch.sh", str(integ), "hatch/B")
    assert conflict.returncode == 10, conflict.stderr
    assert "merge conflict" in conflict.stderr
    assert git(integ, "rev-parse", "HEAD") == tip  # unchanged
    assert git(integ, "status", "--porcelain") == ""  # and clean
    # idempotent: merging an already merged branch changes nothing and succeeds
    assert script("git/merge_branch.sh", str(integ), "hatch/A").returncode == 0
    assert git(integ, "rev-parse", "HEAD") == tip


def test_a_merge_killed_midway_leaves_nothing_that_looks_like_a_conflict(repo: Path) -> None:
    """A supervisor SIGKILLed during a merge leaves index.lock and a merge in progress in the
    integration worktree; the next merge clears them (it was a wrong merge_conflict before)."""
    integ = repo / ".hatch" / "worktrees" / "_integration"
    assert (
        script(
            "git/ensure_integration.sh", str(repo), str(integ), "hatch/integration", "main"
        ).returncode
        == 0
    )
    for task, name in (("A", "a.txt"), ("B", "b.txt")):
        wt = repo / ".hatch" / "worktrees" / task
        assert (
            script(
                "git/create_worktree.sh", str(repo), str(wt), task, "hatch/integration"
            ).returncode
            == 0
        )
        (wt / name).write_text(f"{task}\n")
        git(wt, "add", name)
        git(wt, "commit", "-q", "-m", f"{task} adds {name}")
    # what a killed merge leaves: a merge of A in progress and the index lock
    git(integ, "merge", "--no-ff", "--no-commit", "hatch/A")
    gitdir = Path(git(integ, "rev-parse", "--absolute-git-dir"))
    (gitdir / "index.lock").write_text("")
    out = script("git/merge_branch.sh", str(integ), "hatch/B")
    assert out.returncode == 0, out.stderr
    assert script("git/merge_branch.sh", str(integ), "hatch/A").returncode == 0
    assert (integ / "a.txt").exists() and (integ / "b.txt").exists()
    assert git(integ, "status", "--porcelain") == ""


@pytest.mark.parametrize("how", ["auto", "copy", "manual_rw_bind"])
def test_removing_a_worktree_never_deletes_the_mounted_planning_dir(
    repo: Path, tmp_path: Path, how: str
) -> None:
    planning = tmp_path / "planning"
    planning.mkdir()
    (planning / "SPEC-1.md").write_text("the plan\n")
    wt = repo / ".hatch" / "worktrees" / "T1"
    assert script("git/create_worktree.sh", str(repo), str(wt), "T1", "main").returncode == 0
    target = wt / "project-state-readonly"
    if how == "manual_rw_bind":
        if os.geteuid() != 0:
            pytest.skip("a read-write bind mount needs root")
        target.mkdir()
        subprocess.run(["mount", "--bind", str(planning), str(target)], check=True, timeout=10)
        method = "bind (read-write, made by the test)"
    else:
        out = script(
            "mount/mount_readonly.sh", str(planning), str(target), env={"HATCH_MOUNT_METHOD": how}
        )
        assert out.returncode == 0, out.stderr
        method = out.stdout.strip().splitlines()[-1]
        assert method in ("bind", "copy") and (how == "auto" or method == "copy")
        if method == "bind" or os.geteuid() != 0:
            with pytest.raises(OSError):
                (target / "new.txt").write_text("agents cannot write here")
        else:  # a copy, as root (no CAP_SYS_ADMIN): root ignores modes, so check the modes
            assert all(not (p.stat().st_mode & 0o222) for p in [target, *target.rglob("*")])
    assert (target / "SPEC-1.md").read_text() == "the plan\n", method
    out = script("git/remove_worktree.sh", str(repo), str(wt))
    assert out.returncode == 0, out.stderr
    assert not wt.exists()
    assert mounts_under(repo) == []
    assert (planning / "SPEC-1.md").read_text() == "the plan\n"  # the source survived


def wrapper_env(tmp_path: Path, state: Path, worktree: Path) -> dict[str, str]:
    """run_agent.sh's environment for run 7 of task T."""
    return {
        "HATCH_RUN_ID": "7",
        "HATCH_TASK_ID": "T",
        "HATCH_ROLE": "factory",
        "HATCH_ITERATION": "1",
        "HATCH_ATTEMPT": "1",
        "HATCH_STOP_FILE": str(tmp_path / "x.stop"),
        "HATCH_STATE_DIR": str(state),
        "HATCH_WORKTREE": str(worktree),
    }


def test_run_agent_refuses_without_ticket(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "runs").mkdir(parents=True)
    (state / "runs" / "7.cancelled").write_text("")
    marker = tmp_path / "ran"
    env = wrapper_env(tmp_path, state, tmp_path)
    out = script("agent/run_agent.sh", "touch", str(marker), env=env, cwd=tmp_path)
    assert out.returncode == 75
    assert not marker.exists() and not (tmp_path / "x.stop").exists()


def test_run_agent_refuses_outside_its_worktree(tmp_path: Path) -> None:
    """A pane that tmux started anywhere but the worktree never runs the agent (exit 76)."""
    state, worktree, elsewhere = tmp_path / "state", tmp_path / "wt", tmp_path / "other"
    (state / "runs").mkdir(parents=True)
    worktree.mkdir()
    elsewhere.mkdir()
    (state / "runs" / "7.ticket").write_text("")
    marker = tmp_path / "ran"
    env = wrapper_env(tmp_path, state, worktree)
    out = script("agent/run_agent.sh", "touch", str(marker), env=env, cwd=elsewhere)
    assert out.returncode == 76, out.stderr
    assert "not in the worktree" in out.stderr
    assert not marker.exists() and (state / "runs" / "7.ticket").exists()  # never claimed
    ok = script("agent/run_agent.sh", "touch", str(marker), env=env, cwd=worktree)
    assert ok.returncode == 0, ok.stderr
    assert marker.exists()


def test_fast_exit_always_writes_stop(tmp_path: Path) -> None:
    """An agent that exits 3 within milliseconds still produces .stop with exit_code 3: 50/50."""
    tmux = Tmux(f"t{uuid.uuid4().hex[:10]}", timeout=10)
    state = tmp_path / "state"
    (state / "runs").mkdir(parents=True)
    try:
        tmux.ensure_server(tmp_path)
        stops = []
        for i in range(1, 51):
            stop = tmp_path / f"r{i}.stop"
            env = {
                "HATCH_RUN_ID": str(i),
                "HATCH_TASK_ID": "FAST",
                "HATCH_ROLE": "factory",
                "HATCH_ITERATION": "1",
                "HATCH_ATTEMPT": str(i),
                "HATCH_STOP_FILE": str(stop),
                "HATCH_STATE_DIR": str(state),
                "HATCH_WORKTREE": str(tmp_path),
            }
            (state / "runs" / f"{i}.ticket").write_text("go\n")
            tmux.new_window(
                f"fast{i}",
                ["bash", str(SCRIPTS / "agent" / "run_agent.sh"), "bash", "-c", "exit 3"],
                cwd=tmp_path,
                env=env,
            )
            stops.append(stop)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all(s.exists() for s in stops):
            time.sleep(0.05)
        docs = [json.loads(s.read_text()) for s in stops if s.exists()]
        assert len(docs) == 50
        assert all(d["exit_code"] == 3 and d["reason"] == "exit" for d in docs)
        assert sorted(d["attempt"] for d in docs) == list(range(1, 51))
        durations = []
        for i in range(1, 51):  # the agent itself ran in milliseconds
            fields = dict(
                kv.split("=", 1)
                for kv in (state / "runs" / f"{i}.claimed").read_text().split()
                if "=" in kv and kv.split("=", 1)[0].endswith("_ns")
            )
            durations.append((int(fields["ended_ns"]) - int(fields["started_ns"])) / 1e6)
        assert sorted(durations)[25] < 100, durations
    finally:
        tmux.kill_server()
