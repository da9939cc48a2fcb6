"""What an agent run may change in the repository's git metadata, and taking it back after.

- ``snapshot``/``tampered``/``restore``: every ref except the task branches
  (``refs/heads/hatch/*``, each moved by its own agent) and the integration branch (moved by
  hatchctl's merges) is recorded before a run and compared after it; a change is
  ``ref_tampering`` and is undone.
- ``seed_shadow``/``take_back``: a sandboxed agent writes its branch into a per-task shadow of
  ``refs/heads/hatch`` (it cannot see or touch any other task's branch); after the run hatchctl
  checks what it wrote (a commit id of an existing commit) and moves the real branch.
- ``repair_links``: the files that tie a worktree to its repository (``<wt>/.git``,
  ``gitdir``, ``commondir``) are agent-writable; they are rewritten before hatchctl runs git in
  that worktree, so a forged link cannot point hatchctl's git at a repository (and a config with
  hooks or an fsmonitor command) of the agent's making.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from hatchctl.errors import CommandError, HatchError, SummaryError
from hatchctl.runtime import proc
from hatchctl.runtime.gitrepo import git_env
from hatchctl.state.atomicfile import write_atomic
from hatchctl.state.summary import read_agent_file

_SHA = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")


def _git(repo: Path, *args: str, timeout: float, check: bool = True) -> proc.Result:
    return proc.run(["git", "-C", str(repo), *args], timeout=timeout, env=git_env(), check=check)


@functools.lru_cache(maxsize=64)
def _dirs(repo: Path, timeout: float) -> tuple[Path, Path]:
    """The repository's git directory and common directory: asked once per process (every
    launch and every stop needs them; they do not change under a running project)."""
    out = _git(
        repo,
        "rev-parse",
        "--path-format=absolute",
        "--git-dir",
        "--git-common-dir",
        timeout=timeout,
    )
    lines = out.stdout.splitlines()
    if len(lines) != 2:
        raise HatchError(f"git rev-parse in {repo} said {out.stdout[:200]!r}")
    return Path(lines[0]), Path(lines[1])


def common_dir(repo: Path, timeout: float) -> Path:
    return _dirs(repo, timeout)[1]


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` by a regular file holding ``text``, atomically (``write_atomic``: a
    rename replaces a link itself, never writes through it; a directory there is removed
    first). Never a moment without the file: a `git worktree prune` (another task's setup) that
    found a worktree's ``gitdir`` missing would delete its whole administrative directory."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    write_atomic(path, text.encode())


def read_small(path: Path, limit: int = 4096) -> str | None:
    """A small file an agent may have written (its shadow branch) or hatchctl wrote: never
    through a link, a regular file, at most ``limit`` bytes; None otherwise."""
    try:
        return read_agent_file(path, "file", limit).decode("ascii", "replace")
    except SummaryError:
        return None


def worktree_gitdir(common: Path, task_id: str) -> Path:
    gitdir = common / "worktrees" / task_id
    if gitdir.is_symlink() or not gitdir.is_dir():
        raise HatchError(f"{gitdir} is not the worktree's git directory")
    return gitdir


def holds(path: Path, text: str) -> bool:
    """Whether ``path`` already is what ``write_private(path, text)`` makes: a regular file (not
    a link, not a FIFO), of one name (no hard link to it elsewhere), ours and private (no group
    or other bits), holding exactly ``text``. Read without following a link or blocking."""
    data = text.encode()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if (
            not stat.S_ISREG(st.st_mode)
            or st.st_nlink != 1
            or st.st_uid != os.geteuid()
            or st.st_mode & 0o077
            or st.st_size != len(data)
        ):
            return False
        return os.read(fd, len(data) + 1) == data
    finally:
        os.close(fd)


def repair_links(common: Path, worktree: Path, task_id: str) -> None:
    """Each link file made what it must be; one that already is exactly that (the usual case:
    git wrote it so at `worktree add`, or the last repair did) is left as it is: no rewrite,
    no fsync (``holds``: the same file ``write_private`` would leave)."""
    gitdir = worktree_gitdir(common, task_id)
    for path, text in (
        (gitdir / "commondir", "../..\n"),
        (gitdir / "gitdir", f"{worktree}/.git\n"),
        (worktree / ".git", f"gitdir: {gitdir}\n"),
    ):
        if not holds(path, text):
            write_private(path, text)
    for name in ("config.worktree",):
        with contextlib.suppress(FileNotFoundError):
            (gitdir / name).unlink()


# -- the shadow of refs/heads/hatch ---------------------------------------------------------
def _seeded(refs: Path) -> Path:
    return refs.parent / "seeded"


def seed_shadow(
    repo: Path,
    common: Path,
    task_id: str,
    refs: Path,
    logs: Path,
    timeout: float,
    tip: str | None = None,
) -> None:
    """Give a sandboxed run a ``refs/heads/hatch`` holding only its own branch. Call
    ``take_back`` first: what an earlier run committed is kept. ``tip``: the branch's commit as
    ``snapshot_with_tip`` read it after ``take_back`` (no git call here); None: asked of git."""
    for d in (refs, logs):
        if d.is_symlink():
            d.unlink()
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(mode=0o700, parents=True)
    if tip is None or not _SHA.fullmatch(tip):
        ref = f"refs/heads/hatch/{task_id}"
        tip = _git(repo, "rev-parse", "--verify", ref, timeout=timeout).stdout.strip()
    write_private(refs / task_id, tip + "\n")
    write_private(_seeded(refs), tip + "\n")
    for d in (common / "refs" / "heads" / "hatch", common / "logs" / "refs" / "heads" / "hatch"):
        d.mkdir(parents=True, exist_ok=True)  # mount points for the sandbox


@dataclass(frozen=True)
class TakeBack:
    moved: tuple[str, str] | None = None  # (old, new) when the branch moved
    problem: str = ""


def take_back(repo: Path, task_id: str, refs: Path, timeout: float) -> TakeBack:
    """Move ``hatch/<ID>`` to what the sandboxed agent committed, if that is a real commit and
    the branch is still where the sandbox was seeded from (a reset since wins)."""
    seeded = read_small(_seeded(refs), 200)
    if seeded is None:
        return TakeBack()  # never sandboxed
    old = seeded.strip()
    text = read_small(refs / task_id, 200)
    if text is None:
        return TakeBack(problem=f"the sandbox's branch file {task_id} is missing or not a file")
    new = text.strip()
    if new == old:
        return TakeBack()
    if not _SHA.fullmatch(new):
        return TakeBack(problem=f"the sandbox's branch holds {new[:60]!r}, not a commit id")
    exists = _git(repo, "cat-file", "-e", f"{new}^{{commit}}", timeout=timeout, check=False)
    if exists.returncode != 0:
        return TakeBack(problem=f"the sandbox's branch points at {new}, which is not a commit")
    ref = f"refs/heads/hatch/{task_id}"
    msg = "hatch: take back sandboxed branch"
    moved = _git(repo, "update-ref", "-m", msg, ref, new, old, timeout=timeout, check=False)
    if moved.returncode != 0:
        return TakeBack(problem=f"{ref} moved since the run started; the sandbox's {new} is kept")
    write_private(_seeded(refs), new + "\n")
    return TakeBack(moved=(old, new))


# -- every other ref -------------------------------------------------------------------------
def snapshot(repo: Path, integration_branch: str, timeout: float) -> dict[str, str]:
    return snapshot_with_tip(repo, integration_branch, None, timeout)[0]


def snapshot_with_tip(
    repo: Path, integration_branch: str, task_id: str | None, timeout: float
) -> tuple[dict[str, str], str | None]:
    """``snapshot``, and the commit of ``hatch/<task_id>`` from the same `git for-each-ref` (what
    `git rev-parse --verify` says of it; None when git lists no such branch)."""
    out = _git(repo, "for-each-ref", "--format=%(refname)%00%(objectname)", timeout=timeout)
    skip = f"refs/heads/{integration_branch}"
    own = f"refs/heads/hatch/{task_id}" if task_id is not None else None
    refs: dict[str, str] = {}
    tip = None
    for line in out.stdout.splitlines():
        name, _, sha = line.partition("\0")
        if name == own:
            tip = sha
        if name.startswith("refs/heads/hatch/") or name == skip:
            continue
        refs[name] = sha
    # what `git symbolic-ref -q HEAD` says, read from the file (one git call less per
    # snapshot): a detached, damaged or linked HEAD is ""
    head = read_small(_dirs(repo, timeout)[0] / "HEAD", 4096) or ""
    target = head.strip().removeprefix("ref: ") if head.startswith("ref: ") else ""
    refs["HEAD"] = "ref: " + target if target.startswith("refs/") else ""
    return refs, tip


def save(path: Path, refs: dict[str, str], sandbox: str) -> None:
    write_private(path, json.dumps({"sandbox": sandbox, "refs": refs}, sort_keys=True))


def load(path: Path) -> tuple[dict[str, str], str] | None:
    """(refs, sandbox mode) as saved before a run; None if missing or damaged."""
    text = read_small(path, 4_000_000)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("refs"), dict):
        return None
    refs = {str(k): str(v) for k, v in data["refs"].items()}
    return refs, str(data.get("sandbox", "none"))


def tampered(before: dict[str, str], after: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Every ref whose value differs: name -> (before, after); '' means absent."""
    names = set(before) | set(after)
    return {
        n: (before.get(n, ""), after.get(n, ""))
        for n in sorted(names)
        if before.get(n, "") != after.get(n, "")
    }


def restore(repo: Path, changes: dict[str, tuple[str, str]], timeout: float) -> list[str]:
    """Put every changed ref back; returns what could not be restored."""
    failed = []
    for name, (old, _new) in changes.items():
        try:
            if name == "HEAD":
                if old.startswith("ref: "):
                    _git(repo, "symbolic-ref", "HEAD", old[5:], timeout=timeout)
            elif old:
                _git(
                    repo,
                    "update-ref",
                    "-m",
                    "hatch: restore tampered ref",
                    name,
                    old,
                    timeout=timeout,
                )
            else:
                _git(repo, "update-ref", "-d", name, timeout=timeout)
        except CommandError as exc:
            failed.append(f"{name}: {exc}")
    return failed
