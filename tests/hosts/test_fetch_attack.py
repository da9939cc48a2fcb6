"""Attacks on fetch_from_host.sh's scratch repository, ``.git/hatch-fetch/TASK.git``, with real
git over the loopback sshd (the fetch path bring_back runs: engine/remotecollect.py).

Whatever is planted at ``.git/hatch-fetch`` or at the task's scratch in it, nothing outside the
repository is written, moved or removed (a followed link would have the fetch make its scratch,
write its HEAD, alternates and pack, then ``rm -rf`` it, wherever the link points):

- a link at ``.git/hatch-fetch`` (to a directory, or dangling): refused (exit 7, "symbolic
  link"), the link left as it is; the branch stays where it was and the host's work is not lost
  (the fetch brings it back once the link is gone);
- a link at the task's scratch, ``.git/hatch-fetch/T1.git``: removed, never followed, and the
  fetch goes on;
- a file at ``.git/hatch-fetch``: the fetch fails, saying so, the file untouched;
- ``.git/hatch-fetch`` a directory of another user's, who can write in it: refused (exit 7)
  before anything is made in it. The other user putting a link at the scratch just as the fetch
  makes it (a ``mkdir`` first on PATH does that, as that user: the race won every time) then
  never leads the fetch outside;
- `.git/objects/pack` a link (an agent writes objects): refused, the packs never moved through it.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hatchctl.hosts.ssh import SshHost
from hatchctl.runtime.scripts import scripts_root
from tests.conftest import git
from tests.hosts.test_fetch_from_host import layout

NOBODY = 65534


def tree(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything under ``root`` (itself included), by lstat: type, mode, owner, size, mtime,
    and a file's bytes or a link's target."""
    out: dict[str, tuple[object, ...]] = {}
    paths = [root, *root.rglob("*")] if root.exists() or root.is_symlink() else []
    for path in paths:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            what: object = os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            what = path.read_bytes()
        else:
            what = None
        key = str(path.relative_to(root))
        out[key] = (
            stat.S_IFMT(st.st_mode),
            st.st_mode,
            st.st_uid,
            st.st_size,
            st.st_mtime_ns,
            what,
        )
    return out


def elsewhere(parent: Path) -> Path:
    """A directory outside the repository, as a link would lead the fetch there: a canary, and
    a T1.git of its own (what the fetch's ``rm -rf`` of its scratch would remove)."""
    target = parent / "elsewhere"
    (target / "T1.git" / "objects").mkdir(parents=True)
    (target / "canary.txt").write_text("not the fetch's to touch\n")
    (target / "T1.git" / "keep.txt").write_text("keep me\n")
    (target / "T1.git" / "objects" / "keep.txt").write_text("keep me too\n")
    return target


def fetch(
    worktree: Path, url: str, host: SshHost, out: Path, path: str | None = None
) -> tuple[int, str, str]:
    """fetch_from_host.sh to its end, its output in files (as test_fetch_from_host.Fetch)."""
    script = scripts_root() / "git" / "fetch_from_host.sh"
    env = {**os.environ, "GIT_SSH_COMMAND": host.git_ssh_command(), "HATCH_LOCK_TIMEOUT": "60"}
    if path is not None:
        env["PATH"] = path
    o, e = out.with_suffix(".out"), out.with_suffix(".err")
    with o.open("w") as fo, e.open("w") as fe:
        code = subprocess.run(
            ["bash", str(script), str(worktree), url, "T1"],
            stdout=fo,
            stderr=fe,
            env=env,
            timeout=60,
            check=False,
        ).returncode
    return code, o.read_text(), e.read_text()


def unmoved(repo: Path, worktree: Path, base: str, ahead: str) -> None:
    """The branch where it was and none of the host's objects here."""
    assert git(worktree, "rev-parse", "HEAD").strip() == base
    assert git(repo, "rev-parse", "hatch/T1").strip() == base
    probe = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "-e", ahead], capture_output=True, timeout=30
    )
    assert probe.returncode != 0, "the host's commit came over"


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-directory", "dangling"])
def test_a_link_at_hatch_fetch_is_refused_and_nothing_outside_changes(
    host: SshHost, tmp_path: Path, dangling: bool
) -> None:
    repo, worktree, url, ahead = layout(tmp_path, host)
    base = git(worktree, "rev-parse", "HEAD").strip()
    target = elsewhere(tmp_path)
    pointed = target / "missing" if dangling else target
    link = repo / ".git" / "hatch-fetch"
    link.symlink_to(pointed)
    before = tree(target)
    code, out, err = fetch(worktree, url, host, tmp_path / "fetch")
    assert code == 7, (code, out, err)
    assert f"{link} is a symbolic link" in err
    assert tree(target) == before  # nothing written, moved or removed there
    assert not (target / "missing").exists()
    assert link.is_symlink() and os.readlink(link) == str(pointed)  # refused, left as it is
    unmoved(repo, worktree, base, ahead)
    link.unlink()  # the link gone: the host's work comes back, nothing was lost
    code, out, err = fetch(worktree, url, host, tmp_path / "again")
    assert code == 0, err
    assert out.strip() == ahead == git(worktree, "rev-parse", "HEAD").strip()
    assert tree(target) == before


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-directory", "dangling"])
def test_a_link_at_the_tasks_scratch_is_removed_never_followed(
    host: SshHost, tmp_path: Path, dangling: bool
) -> None:
    repo, worktree, url, ahead = layout(tmp_path, host)
    target = elsewhere(tmp_path)
    pointed = target / "missing" if dangling else target / "T1.git"
    scratch = repo / ".git" / "hatch-fetch" / "T1.git"
    scratch.parent.mkdir(mode=0o700)
    scratch.symlink_to(pointed)
    before = tree(target)
    code, out, err = fetch(worktree, url, host, tmp_path / "fetch")
    assert code == 0, err
    assert out.strip() == ahead == git(worktree, "rev-parse", "HEAD").strip()
    assert tree(target) == before
    assert not (target / "missing").exists()
    assert not scratch.is_symlink() and list(scratch.parent.iterdir()) == []


def test_a_file_at_hatch_fetch_fails_saying_so_and_is_left_alone(
    host: SshHost, tmp_path: Path
) -> None:
    repo, worktree, url, ahead = layout(tmp_path, host)
    base = git(worktree, "rev-parse", "HEAD").strip()
    planted = repo / ".git" / "hatch-fetch"
    planted.write_text("not a directory\n")
    before = tree(repo / ".git" / "objects")
    code, out, err = fetch(worktree, url, host, tmp_path / "fetch")
    assert code == 3, (code, out, err)
    assert f"{planted}" in err and "not a directory" in err.lower(), err
    assert planted.read_text() == "not a directory\n"
    assert tree(repo / ".git" / "objects") == before
    unmoved(repo, worktree, base, ahead)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user can reach (the test's tmp_path is private to root)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("acting as another user needs root and setpriv")
    path = Path(tempfile.mkdtemp(prefix="hatch-fetch-attack-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def test_a_hatch_fetch_another_user_can_write_in_is_refused(
    host: SshHost, tmp_path: Path, shared_dir: Path
) -> None:
    """.git/hatch-fetch owned by another user (nobody), writable by them: refused before the
    fetch makes anything in it, even if that user puts a link at the task's scratch just when
    the fetch would make it (a ``mkdir`` first on PATH does that as nobody, once)."""
    repo, worktree, url, ahead = layout(shared_dir, host)  # where nobody can reach it
    base = git(worktree, "rev-parse", "HEAD").strip()
    target = elsewhere(shared_dir)
    theirs = repo / ".git" / "hatch-fetch"
    theirs.mkdir(mode=0o777)
    theirs.chmod(0o777)
    os.chown(theirs, NOBODY, NOBODY)
    os.chown(target, NOBODY, NOBODY)  # a directory of theirs the link points at
    shim = tmp_path / "bin"
    shim.mkdir()
    raced = tmp_path / "raced"
    real = shutil.which("mkdir")
    assert real is not None
    (shim / "mkdir").write_text(
        "#!/bin/bash\n"
        f"if [[ ! -e {raced} ]]; then\n"
        f"  : >{raced}\n"
        f"  setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups -- "
        f"ln -s -- {target} {theirs / 'T1.git'} 2>>{raced} && echo planted >>{raced}\n"
        "fi\n"
        f'exec {real} "$@"\n'
    )
    (shim / "mkdir").chmod(0o755)
    before = tree(target)
    path = f"{shim}{os.pathsep}{os.environ['PATH']}"
    code, out, err = fetch(worktree, url, host, tmp_path / "fetch", path=path)
    assert tree(target) == before, "the fetch wrote where another user's link led it"
    assert code == 7, (code, out, err)
    assert f"{theirs} is not this user's" in err, err
    assert not (theirs / "T1.git").exists()  # refused before making anything in it
    assert not raced.exists()  # (so before its mkdir: the other user had no moment to act)
    unmoved(repo, worktree, base, ahead)
    # the directory gone (as a person would remove it): the fetch makes its own, private
    shutil.rmtree(theirs)
    code, out, err = fetch(worktree, url, host, tmp_path / "again")
    assert code == 0, err
    assert out.strip() == ahead
    assert stat.S_IMODE(theirs.stat().st_mode) == 0o700 and theirs.stat().st_uid == os.geteuid()
    # the other user tries again, now in the fetch's own directory: cannot
    code, out, err = fetch(worktree, url, host, tmp_path / "third", path=path)
    assert code == 0, err
    assert "Permission denied" in raced.read_text() and "planted" not in raced.read_text()
    assert tree(target) == before


def test_a_link_at_the_object_packs_is_refused_and_nothing_outside_changes(
    host: SshHost, tmp_path: Path
) -> None:
    """``.git/objects/pack`` replaced by a link (an agent writes objects: its worktree's commits
    go there): the fetched packs are never moved through it."""
    repo, worktree, url, ahead = layout(tmp_path, host)
    base = git(worktree, "rev-parse", "HEAD").strip()
    target = elsewhere(tmp_path)
    packs = repo / ".git" / "objects" / "pack"
    for item in packs.iterdir():  # git still finds its objects through the link
        shutil.move(str(item), str(target / item.name))
    packs.rmdir()
    packs.symlink_to(target)
    before = tree(target)
    code, out, err = fetch(worktree, url, host, tmp_path / "fetch")
    assert code == 7, (code, out, err)
    assert f"{packs} is a symbolic link" in err
    assert tree(target) == before
    unmoved(repo, worktree, base, ahead)
