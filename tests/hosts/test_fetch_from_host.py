"""hatch_scripts/git/fetch_from_host.sh against real git over the loopback sshd:

- a fetch while another task's ``git worktree add`` is half done (its entry under
  .git/worktrees with the null HEAD git writes first, the worktree lock held, as
  create_worktree.sh holds it) brings the branch back at once instead of failing with
  ``fatal: bad object worktrees/X/HEAD`` (it never waits for that lock);
- a host that hangs during the fetch holds no lock meanwhile, and the next try after it
  answers brings the branch back.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import psutil

from hatchctl.hosts.ssh import SshHost
from hatchctl.runtime.scripts import scripts_root
from tests.conftest import git
from tests.hosts.sshd import SshServer
from tests.hosts.test_remote_loop import frozen

NULL = "0" * 40


def wait_until(what: str, ok: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not ok():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {timeout:g}s: {what}"
        time.sleep(0.02)


def layout(tmp_path: Path, host: SshHost) -> tuple[Path, Path, str, str]:
    """The project here with task T1's worktree, and T1's repository on the host one commit
    ahead: (repo, worktree, url, the host's commit)."""
    repo, worktree = tmp_path / "project", tmp_path / "project" / ".hatch" / "worktrees" / "T1"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("here\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "worktree", "add", "-q", "-b", "hatch/T1", str(worktree))
    there = tmp_path / "remote" / "T1.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(there)], check=True)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "-b", "hatch/T1", str(there), str(clone)], check=True)
    (clone / "work.txt").write_text("done on the host\n")
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", "work")
    git(clone, "push", "-q", "origin", "hatch/T1")
    ahead = git(clone, "rev-parse", "HEAD").strip()
    host.run(["true"], timeout=30)  # the master connection up
    return repo, worktree, host.git_url(PurePosixPath(there)), ahead


def half_made_worktree(repo: Path) -> Path:
    """What `git worktree add` has written when it is half done: the entry, HEAD null."""
    entry = repo / ".git" / "worktrees" / "X"
    entry.mkdir(parents=True)
    (entry / "HEAD").write_text(NULL + "\n")
    (entry / "commondir").write_text("../..\n")
    (entry / "gitdir").write_text(str(repo / ".hatch" / "worktrees" / "X" / ".git") + "\n")
    return entry


@contextlib.contextmanager
def worktree_lock(repo: Path, *, wait: bool = True) -> Iterator[bool]:
    """lib.sh's lock_worktrees: flock(2) on REPO/.hatch. Yields whether it was taken."""
    fd = os.open(repo / ".hatch", os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


class Fetch:
    """fetch_from_host.sh running, its output in files (an ssh master holds a session's pipes
    until the host answers: a pipe would keep the test waiting after the kill)."""

    def __init__(self, worktree: Path, url: str, host: SshHost, out: Path) -> None:
        script = scripts_root() / "git" / "fetch_from_host.sh"
        env = {**os.environ, "GIT_SSH_COMMAND": host.git_ssh_command(), "HATCH_LOCK_TIMEOUT": "60"}
        self.out, self.err = out.with_suffix(".out"), out.with_suffix(".err")
        with self.out.open("w") as fo, self.err.open("w") as fe:
            self.proc = subprocess.Popen(
                ["bash", str(script), str(worktree), url, "T1"],
                stdout=fo,
                stderr=fe,
                env=env,
                start_new_session=True,
            )
        self.pid = self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def result(self, timeout: float = 60.0) -> tuple[int, str, str]:
        code = self.proc.wait(timeout=timeout)
        return code, self.out.read_text(), self.err.read_text()

    def end(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, 9)
        self.proc.wait(timeout=30)


def talking(proc: Fetch) -> bool:
    """git's ssh to the host runs under the script."""
    with contextlib.suppress(psutil.Error):
        return any(c.name() == "ssh" for c in psutil.Process(proc.pid).children(recursive=True))
    return False


def test_a_fetch_while_a_worktree_add_is_half_done_brings_the_branch_back(
    host: SshHost, tmp_path: Path
) -> None:
    repo, worktree, url, ahead = layout(tmp_path, host)
    with worktree_lock(repo):  # another task's create_worktree.sh, in its `worktree add`
        entry = half_made_worktree(repo)
        proc = Fetch(worktree, url, host, tmp_path / "fetch")
        try:
            code, out, err = proc.result()
        finally:
            proc.end()
    assert code == 0, err
    assert out.strip() == ahead
    assert git(worktree, "rev-parse", "HEAD").strip() == ahead
    assert (worktree / "work.txt").read_text() == "done on the host\n"
    assert git(repo, "cat-file", "-t", ahead) == "commit"  # its objects are the repository's
    assert not any((repo / ".git" / "hatch-fetch").iterdir())  # its scratch removed
    assert git(repo, "for-each-ref", "--format=%(refname)") == "\n".join(
        ["refs/heads/hatch/T1", "refs/heads/main"]
    )  # no ref made but the branch moved
    shutil.rmtree(entry)  # (the other task's add, done)
    assert git(repo, "fsck", "--connectivity-only", "--no-dangling") == ""


def test_a_host_that_hangs_during_the_fetch_holds_no_lock(
    host: SshHost, sshd: SshServer, tmp_path: Path
) -> None:
    repo, worktree, url, ahead = layout(tmp_path, host)
    scratch = repo / ".git" / "hatch-fetch" / "T1.git"
    with frozen(sshd):
        proc = Fetch(worktree, url, host, tmp_path / "hung")
        try:
            wait_until("git's ssh to the host under way", lambda: talking(proc))
            assert (scratch / "HEAD").exists()
            with worktree_lock(repo, wait=False) as taken:  # a setup job meanwhile
                assert taken, "the fetch holds the worktree lock while the host hangs"
            assert proc.poll() is None
        finally:
            proc.end()
    proc = Fetch(worktree, url, host, tmp_path / "again")  # the host answers: brought back
    try:
        code, _, err = proc.result()
    finally:
        proc.end()
    assert code == 0, err
    assert git(worktree, "rev-parse", "HEAD").strip() == ahead
