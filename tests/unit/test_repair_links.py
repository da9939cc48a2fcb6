"""A worktree's link files are rewritten before each sandboxed launch (refguard.repair_links)
while other tasks' setup jobs run `git worktree prune`. A prune that finds a worktree's
``gitdir`` file missing deletes that worktree's whole administrative directory (then every
git command there fails: "not a git repository"), so the files are replaced atomically: with
prunes running all along, the worktree stays a worktree."""

from __future__ import annotations

import threading
from pathlib import Path

from hatchctl.runtime import refguard
from hatchctl.runtime.scripts import Scripts, builtin_root
from tests.conftest import git, make_repo


def test_link_files_rewritten_while_worktrees_are_pruned(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    wt = repo / ".hatch" / "worktrees" / "T"
    Scripts(builtin_root(), timeout=60).run(
        "git/create_worktree.sh", str(repo), str(wt), "T", "main"
    )
    common = repo / ".git"
    done = threading.Event()
    errors: list[BaseException] = []

    def rewrite() -> None:
        try:
            while not done.is_set():
                refguard.repair_links(common, wt, "T")
        except BaseException as exc:  # the admin directory pruned away under it
            errors.append(exc)

    writer = threading.Thread(target=rewrite)
    writer.start()
    try:  # (with the old unlink-then-create it was pruned away within ~6 prunes)
        for _ in range(200):
            git(repo, "worktree", "prune")
            assert (common / "worktrees" / "T" / "gitdir").is_file()
    finally:
        done.set()
        writer.join(timeout=30)
    assert errors == []
    assert git(wt, "rev-parse", "--abbrev-ref", "HEAD") == "hatch/T"
    assert not list((common / "worktrees" / "T").glob(".*.tmp"))  # no temporary file left
