"""Setup jobs make worktrees concurrently, and git's `worktree add` / `prune` / `remove` are not
safe run at once (some adds fail; a prune can delete the administrative directory of a worktree
being added). The scripts serialize them on the repository (lib.sh `lock_worktrees`): many
concurrent create_worktree.sh (and removals meanwhile) all succeed, each worktree usable."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from hatchctl.runtime.scripts import Scripts, builtin_root
from tests.conftest import git, make_repo

N = 20


def test_concurrent_worktree_scripts_all_succeed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    for i in range(50):  # a checkout that takes a moment: the adds overlap
        (repo / f"f{i}.txt").write_text(f"{i}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "files")
    scripts = builtin_root() / "git"
    wt = repo / ".hatch" / "worktrees"
    # one to remove while the others are made
    Scripts(builtin_root(), timeout=60).run(
        "git/create_worktree.sh", str(repo), str(wt / "OLD"), "OLD", "main"
    )
    procs = [
        subprocess.Popen(
            [
                "bash",
                str(scripts / "create_worktree.sh"),
                str(repo),
                str(wt / f"T{i}"),
                f"T{i}",
                "main",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(N)
    ]
    procs.append(
        subprocess.Popen(
            ["bash", str(scripts / "remove_worktree.sh"), str(repo), str(wt / "OLD")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
    )
    failed = []
    for p in procs:
        _, err = p.communicate(timeout=120)
        if p.returncode != 0:
            failed.append(err.strip().splitlines()[-1:])
    assert failed == []
    listed = git(repo, "worktree", "list", "--porcelain") + "\n"
    for i in range(N):
        path = wt / f"T{i}"
        assert f"worktree {path}\n" in listed
        assert git(path, "rev-parse", "--abbrev-ref", "HEAD") == f"hatch/T{i}"
    assert not (wt / "OLD").exists() and f"{wt / 'OLD'}\n" not in listed


def test_a_lock_held_on_the_git_directory_does_not_stall_worktrees(tmp_path: Path) -> None:
    """A sandboxed agent sees the repository's .git (read-only) and could hold a flock on it for
    ever; the worktree lock is on .hatch, which its sandbox replaces by an empty tmpfs."""
    repo = make_repo(tmp_path / "repo")
    holder = subprocess.Popen(["flock", str(repo / ".git"), "sleep", "60"])
    try:
        deadline = time.monotonic() + 20
        while (
            subprocess.run(["flock", "-n", str(repo / ".git"), "true"], timeout=10).returncode == 0
        ):
            assert time.monotonic() < deadline, "the holder never took its lock"
            time.sleep(0.02)  # until the holder has it
        scripts = Scripts(builtin_root(), timeout=30, env={"HATCH_LOCK_TIMEOUT": "5"})
        wt = repo / ".hatch" / "worktrees" / "T"
        scripts.run("git/create_worktree.sh", str(repo), str(wt), "T", "main")
        assert git(wt, "rev-parse", "--abbrev-ref", "HEAD") == "hatch/T"
    finally:
        holder.kill()
        holder.wait(timeout=10)
