"""What a launch writes and skips (issue 11): link files already right are not rewritten, but
anything else is (a link, a hard link, a FIFO, a directory, a public mode, other text); the
shadow is seeded from the snapshot's own `for-each-ref` (what `rev-parse` would say); the prompt
and ticket are private files replaced atomically, never written through a link."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hatchctl.engine.launcher import write_launch_file
from hatchctl.runtime import refguard
from hatchctl.runtime.scripts import Scripts, builtin_root
from tests.conftest import git, make_repo


@pytest.fixture
def worktree(tmp_path: Path) -> tuple[Path, Path]:
    repo = make_repo(tmp_path / "repo")
    wt = repo / ".hatch" / "worktrees" / "T"
    old = os.umask(0o077)  # as the supervisor runs its scripts
    try:
        Scripts(builtin_root(), timeout=60).run(
            "git/create_worktree.sh", str(repo), str(wt), "T", "main"
        )
    finally:
        os.umask(old)
    return repo, wt


def _links(repo: Path, wt: Path) -> dict[Path, str]:
    gitdir = repo / ".git" / "worktrees" / "T"
    return {
        gitdir / "commondir": "../..\n",
        gitdir / "gitdir": f"{wt}/.git\n",
        wt / ".git": f"gitdir: {gitdir}\n",
    }


def test_links_git_wrote_are_kept_as_they_are(worktree: tuple[Path, Path]) -> None:
    repo, wt = worktree
    links = _links(repo, wt)
    refguard.repair_links(repo / ".git", wt, "T")  # the first repair makes them private
    inodes = {p: p.stat().st_ino for p in links}
    refguard.repair_links(repo / ".git", wt, "T")
    assert {p: p.stat().st_ino for p in links} == inodes  # not rewritten
    for path, text in links.items():
        assert path.read_text() == text and refguard.holds(path, text)
    assert git(wt, "rev-parse", "--abbrev-ref", "HEAD") == "hatch/T"


def test_anything_but_the_exact_private_file_is_rewritten(
    worktree: tuple[Path, Path], tmp_path: Path
) -> None:
    repo, wt = worktree
    common = repo / ".git"
    links = _links(repo, wt)
    refguard.repair_links(common, wt, "T")
    commondir, gitdir, dotgit = links
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text(links[gitdir])
    elsewhere.chmod(0o600)
    gitdir.unlink()
    gitdir.symlink_to(elsewhere)  # the right text, through a link
    os.link(dotgit, tmp_path / "second-name")  # the right text, a hard link
    commondir.chmod(0o644)  # the right text, not private
    refguard.repair_links(common, wt, "T")
    assert not gitdir.is_symlink() and elsewhere.read_text() == links[gitdir]
    assert dotgit.stat().st_nlink == 1
    assert commondir.stat().st_mode & 0o777 == 0o600
    dotgit.unlink()
    os.mkfifo(dotgit, 0o600)  # never blocks, never kept
    commondir.write_text("../../../elsewhere\n")
    refguard.repair_links(common, wt, "T")
    for path, text in links.items():
        assert refguard.holds(path, text), path
    assert not refguard.holds(tmp_path / "missing", "")
    assert not refguard.holds(wt, "")  # a directory
    assert git(wt, "rev-parse", "--abbrev-ref", "HEAD") == "hatch/T"


def test_tip_from_the_snapshot_is_what_rev_parse_says(worktree: tuple[Path, Path]) -> None:
    repo, _wt = worktree
    protected, tip = refguard.snapshot_with_tip(repo, "hatch-integration", "T", 30)
    assert tip == git(repo, "rev-parse", "--verify", "refs/heads/hatch/T")
    assert protected == refguard.snapshot(repo, "hatch-integration", 30)
    assert not any(name.startswith("refs/heads/hatch/") for name in protected)
    assert refguard.snapshot_with_tip(repo, "hatch-integration", "NOPE", 30)[1] is None
    refs, logs = (
        repo / ".hatch" / "sandbox" / "T" / "refs",
        repo / ".hatch" / "sandbox" / "T" / "logs",
    )
    for given in (tip, None):  # None: asked of git, as before
        refguard.seed_shadow(repo, repo / ".git", "T", refs, logs, 30, given)
        assert (refs / "T").read_text() == f"{tip}\n" == (refs.parent / "seeded").read_text()


def test_launch_files_are_private_and_replace_a_link(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("keep\n")
    ticket = tmp_path / "runs" / "1.ticket"
    ticket.parent.mkdir()
    ticket.symlink_to(target)
    write_launch_file(ticket, b"run_id=1\n")
    assert not ticket.is_symlink() and ticket.read_text() == "run_id=1\n"
    assert ticket.stat().st_mode & 0o777 == 0o600
    assert target.read_text() == "keep\n"
    write_launch_file(ticket, b"run_id=2\n")
    assert ticket.read_text() == "run_id=2\n"
    assert sorted(p.name for p in ticket.parent.iterdir()) == ["1.ticket"]  # no temp file left
