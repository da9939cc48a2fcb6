"""The per-task setup scripts (ensure_integration.sh, create_worktree.sh, mount_readonly.sh) with
fewer processes (issue 11): lib.sh's builtin dirname/realpath give what the programs give, the
checks that moved still refuse what they refused, and one setup starts a bounded number of
programs (counted with strace where it is installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hatchctl.runtime.scripts import builtin_root, mounts_under
from tests.conftest import git

SCRIPTS = builtin_root()


def bash(code: str, *args: str, cwd: Path | None = None) -> str:
    """``code`` run with lib.sh sourced; its stdout."""
    out = subprocess.run(
        ["bash", "-c", f'source "{SCRIPTS}/lib.sh"; {code}', "test", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPTS / name), *args], capture_output=True, text=True, timeout=60
    )


def test_parent_of_is_dirname() -> None:
    paths = ["a", "a/", "a/b", "a//b", "a/b/", "/a", "/", "//", "///", "//a", "a///b///", ".", ".."]
    paths += ["./x", "../x", "/sp ace/q", "-n"]
    got = bash('for p; do parent_of d "$p"; printf "%s\\0" "$d"; done', *paths)
    want = [subprocess.run(["dirname", "--", p], capture_output=True, text=True).stdout[:-1]
            for p in paths]  # fmt: skip
    assert got.split("\0")[:-1] == want


def test_resolve_is_realpath_m(tmp_path: Path) -> None:
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "x y").mkdir()
    (tmp_path / "link").symlink_to("real")
    (tmp_path / "dangling").symlink_to("nowhere")
    (tmp_path / "file").write_text("f")
    (tmp_path / "real" / "up").symlink_to(tmp_path / "real" / "sub")
    rels = ["real", "link", "link/sub", "link/new", "link/new/deeper", "dangling", "dangling/x",
            "real/../link/sub", "link/..", "link/sub/..", "nope/x", "x y/z", "real/up", "real/up/n",
            "link/.", "file", "file/x", "link/", ".", ".."]  # fmt: skip
    paths = [*rels, *(str(tmp_path / r) for r in rels), "/"]
    got = bash('for p; do resolve r "$p"; printf "%s\\0" "$r"; done', *paths, cwd=tmp_path)
    want = [
        subprocess.run(
            ["realpath", "-m", "--", p], capture_output=True, text=True, cwd=tmp_path
        ).stdout[:-1]
        for p in paths
    ]
    assert got.split("\0")[:-1] == want


def test_ensure_integration_refuses_branch_names_a_ref_exists_for(repo: Path) -> None:
    """The usual call is one show-ref; a name git would refuse as a branch is refused even
    when a ref of that name exists (show-ref finds those two: "HEAD" and "-...")."""
    sha = git(repo, "rev-parse", "main")
    for bad in ("HEAD", "-x"):
        git(repo, "update-ref", f"refs/heads/{bad}", sha)
        out = script("git/ensure_integration.sh", str(repo), str(repo / "integ"), bad, "main")
        assert out.returncode == 2 and "invalid branch name" in out.stderr, bad
    for bad in ("a..b", "x.lock", "c@{1}", "a b"):
        out = script("git/ensure_integration.sh", str(repo), str(repo / "integ"), bad, "main")
        assert out.returncode == 2, bad
    assert not (repo / "integ").exists()


def test_ensure_integration_prints_the_tip(repo: Path) -> None:
    integ = repo.parent / "integ"
    first = script("git/ensure_integration.sh", str(repo), str(integ), "hatch/integration", "main")
    assert first.returncode == 0, first.stderr
    again = script("git/ensure_integration.sh", str(repo), str(integ), "hatch/integration", "main")
    tip = git(repo, "rev-parse", "hatch/integration")
    assert first.stdout.strip() == again.stdout.strip() == tip
    assert git(integ, "symbolic-ref", "HEAD") == "refs/heads/hatch/integration"


def test_create_worktree_after_its_registration_went_stale(repo: Path, tmp_path: Path) -> None:
    """No prune before every add: a stale registration (the directory deleted) of the same path,
    or of another path holding the branch, is pruned when `add` fails, and the add retried."""
    wt = tmp_path / "wt"
    base = git(repo, "rev-parse", "main")
    first = script("git/create_worktree.sh", "--reset", str(repo), str(wt / "A"), "A", "main")
    assert first.returncode == 0, first.stderr
    shutil.rmtree(wt / "A")
    again = script("git/create_worktree.sh", "--reset", str(repo), str(wt / "A"), "A", "main")
    assert again.returncode == 0, again.stderr
    git(repo, "worktree", "add", "-q", "-b", "hatch/B", str(tmp_path / "moved" / "B"), "main")
    shutil.rmtree(tmp_path / "moved")
    out = script("git/create_worktree.sh", "--reset", str(repo), str(wt / "B"), "B", "main")
    assert out.returncode == 0, out.stderr
    for name in ("A", "B"):  # checked out (outside the lock), clean, on its branch at the base
        for tracked in git(repo, "ls-files").splitlines():
            assert (wt / name / tracked).is_file(), tracked
        assert git(wt / name, "status", "--porcelain") == ""
        assert git(wt / name, "rev-parse", "HEAD") == base
        assert git(wt / name, "symbolic-ref", "HEAD") == f"refs/heads/hatch/{name}"


def killed_mid_add(repo: Path, worktree: Path, branch: str) -> Path:
    """What `git worktree add` leaves when it is SIGKILLed before it finished (seen in a chaos
    run): the registration still locked "initializing", HEAD not yet a commit, the directory
    holding only its .git file. Made from a real add, rewound to that state; its admin dir."""
    git(repo, "worktree", "add", "-q", "--no-checkout", "-b", branch, str(worktree), "main")
    admin = Path(git(repo, "rev-parse", "--path-format=absolute", "--git-common-dir"))
    admin = admin / "worktrees" / worktree.name
    (admin / "locked").write_text("initializing\n")
    (admin / "HEAD").write_text("0" * 40 + "\n")
    return admin


def test_create_worktree_after_an_add_killed_midway(repo: Path, tmp_path: Path) -> None:
    """The supervisor SIGKILLed during `git worktree add`: the next setup made the task fail
    ("exists and is not the worktree of hatch/T", 3 restarts, then failed). What the unfinished
    add left is removed and the worktree made; a directory with anything else in it is kept."""
    wt = tmp_path / "wt"
    killed_mid_add(repo, wt / "A", "hatch/A")
    out = script("git/create_worktree.sh", str(repo), str(wt / "A"), "A", "main")
    assert out.returncode == 0, out.stderr
    assert (wt / "A" / "README.md").is_file()
    assert git(wt / "A", "symbolic-ref", "HEAD") == "refs/heads/hatch/A"
    assert "locked" not in git(repo, "worktree", "list", "--porcelain")
    # the same state with a file of someone's in the directory: not this script's to delete
    killed_mid_add(repo, wt / "B", "hatch/B")
    (wt / "B" / "notes.txt").write_text("mine\n")
    out = script("git/create_worktree.sh", str(repo), str(wt / "B"), "B", "main")
    assert out.returncode == 4 and "is not the worktree of hatch/B" in out.stderr
    assert (wt / "B" / "notes.txt").read_text() == "mine\n"


def test_create_worktree_after_a_checkout_killed_midway(repo: Path, tmp_path: Path) -> None:
    """Killed after the add, during the checkout (or before it): the worktree is this task's,
    on its branch, with no index (the checkout writes it last) and perhaps an index.lock. Kept
    as it was, it would hand the agent a tree with files missing; it is checked out now."""
    wt = tmp_path / "wt" / "A"
    git(repo, "worktree", "add", "-q", "--no-checkout", "-b", "hatch/A", str(wt), "main")
    index = Path(git(wt, "rev-parse", "--path-format=absolute", "--git-path", "index"))
    Path(f"{index}.lock").write_text("")  # what a killed checkout leaves
    out = script("git/create_worktree.sh", str(repo), str(wt), "A", "main")
    assert out.returncode == 0, out.stderr
    assert (wt / "README.md").is_file() and git(wt, "status", "--porcelain") == ""
    # a finished worktree is kept as it is: an agent's uncommitted work stays
    (wt / "README.md").write_text("changed by the agent\n")
    out = script("git/create_worktree.sh", str(repo), str(wt), "A", "main")
    assert out.returncode == 0, out.stderr
    assert (wt / "README.md").read_text() == "changed by the agent\n"


def test_mount_view_is_read_only_in_mountinfo(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("a bind mount needs root")
    src, view = tmp_path / "planning", tmp_path / "wt" / "project-state-readonly"
    src.mkdir()
    (src / "plan.md").write_text("plan\n")
    (tmp_path / "wt").mkdir()
    try:
        out = script("mount/mount_readonly.sh", str(src), str(view))
        assert out.returncode == 0, out.stderr
        if out.stdout.split()[-1] != "bind":
            pytest.skip("bind mounts are not permitted here (the copy is tested elsewhere)")
        line = next(
            x.split() for x in Path("/proc/self/mountinfo").read_text().splitlines()
            if x.split()[4] == str(view.resolve())
        )  # fmt: skip
        assert "ro" in line[5].split(",")
        assert script("mount/mount_readonly.sh", str(src), str(view)).stdout.split()[-1] == "bind"
    finally:
        script("mount/unmount.sh", str(view))
    assert mounts_under(tmp_path) == []


def test_one_setup_starts_few_programs(repo: Path, tmp_path: Path) -> None:
    """One task's setup (the three scripts) starts at most 16 programs (git's own children of
    `worktree add` included; it was ~37 with dirname, realpath, grep, id, mkdir and prune)."""
    if shutil.which("strace") is None:
        pytest.skip("strace not installed")
    planning = tmp_path / "planning"
    planning.mkdir()
    integ, wt = tmp_path / "integ", tmp_path / "wts" / "T"
    made = script("git/ensure_integration.sh", str(repo), str(integ), "hatch/integration", "main")
    assert made.returncode == 0, made.stderr
    trace = tmp_path / "trace"
    steps = [
        ["git/ensure_integration.sh", str(repo), str(integ), "hatch/integration", "main"],
        ["git/create_worktree.sh", "--reset", str(repo), str(wt), "T", "main"],
        ["mount/mount_readonly.sh", str(planning), str(wt / "project-state-readonly")],
    ]
    programs = 0
    try:
        for step in steps:
            argv = ["strace", "-f", "-qq", "-e", "trace=execve", "-o", str(trace), "bash"]
            out = subprocess.run(
                [*argv, str(SCRIPTS / step[0]), *step[1:]], capture_output=True, text=True,
                timeout=60,
            )  # fmt: skip
            if out.returncode != 0 and "ptrace" in out.stderr:
                pytest.skip(f"strace cannot trace here: {out.stderr.strip()[-200:]}")
            assert out.returncode == 0, out.stderr
            programs += sum(
                1
                for x in trace.read_text().splitlines()
                if ("execve(" in x or "execve resumed" in x) and x.endswith("= 0")
            )
    finally:
        script("mount/unmount.sh", str(wt / "project-state-readonly"))
    assert programs <= 16, programs
