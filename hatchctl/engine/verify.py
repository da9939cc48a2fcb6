"""Trust, then verify: every claim of a factory summary is checked against the repository."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from hatchctl.runtime.acceptance import Confine, run_acceptance
from hatchctl.runtime.gitrepo import SYMLINK_MODE, Git
from hatchctl.state.spec import TaskSpec
from hatchctl.state.summary import Summary


@dataclass(frozen=True)
class Verdict:
    ok: bool
    failure_class: str | None = None
    reason: str | None = None  # stable snake_case: unverified_claim, acceptance_failed, ...
    detail: str = ""
    checks: dict[str, object] = field(default_factory=dict)


def _fail(cls: str, reason: str, detail: str, checks: dict[str, object]) -> Verdict:
    return Verdict(False, cls, reason, detail, checks)


# Paths hatchctl manages inside a worktree (and .hatch/, its runtime): a branch never changes them.
RESERVED = ("project-state-readonly", ".claude/settings.local.json", ".hatch")
# In the worktree, parents first: a link there would redirect hatchctl's own chmod, rm or write.
RESERVED_IN_WORKTREE = ("project-state-readonly", ".claude", ".claude/settings.local.json")
MAX_LINK_HOPS = 40  # like the kernel's limit: more is a loop


def is_reserved(path: str) -> bool:
    """``path`` is a reserved path, inside one, or a parent of one (``.claude`` as a file)."""
    return any(path == r or path.startswith(r + "/") or r.startswith(path + "/") for r in RESERVED)


def reserved_link(worktree: Path) -> str | None:
    """The first reserved path of the worktree that is a symbolic link (lstat: never followed)."""
    for rel in RESERVED_IN_WORKTREE:
        try:
            mode = os.lstat(worktree / rel).st_mode
        except OSError:
            continue
        if stat.S_ISLNK(mode):
            return rel
    return None


def _link_problem(git: Git, links: dict[str, str], path: str) -> str | None:
    """Resolve ``path`` inside ref's tree as the kernel would (every link on the way, ``..``
    applied after a link's target): why it is unsafe, or None."""
    todo = path.split("/")
    stack: list[str] = []
    hops = 0
    while todo:
        part = todo.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not stack:
                return "outside the repository"
            stack.pop()
            continue
        stack.append(part)
        blob = links.get("/".join(stack))
        if blob is None:
            continue
        hops += 1
        if hops > MAX_LINK_HOPS:
            return "a loop of links"
        target = git.blob_text(blob)
        if target.startswith("/"):
            return "outside the repository"
        stack.pop()
        todo = target.split("/") + todo
    if stack and is_reserved("/".join(stack)):
        return "into a path reserved for hatchctl"
    return None


def unsafe_change(git: Git, base: str, ref: str) -> str | None:
    """The first path base..ref adds or changes at a reserved path, or a symbolic link it adds
    that points outside the repository; None if there is none. Read from git, never the disk."""
    links: dict[str, str] | None = None
    for entry in git.diff_raw(base, ref):
        if entry.status == "D":
            continue
        if is_reserved(entry.path):
            return f"{entry.path} is reserved for hatchctl and must not be committed"
        if entry.new_mode == SYMLINK_MODE:
            links = git.tree_links(ref) if links is None else links
            problem = _link_problem(git, links, entry.path)
            if problem is not None:
                target = git.blob_text(entry.new_blob)[:200]
                return f"{entry.path} is a symbolic link to {target!r}: {problem}"
    return None


def unsafe_path(git: Git, worktree: Path, base: str, ref: str) -> str | None:
    """Why this work must not be verified or merged (a link at a reserved path of the worktree,
    or an unsafe change on the branch), or None."""
    link = reserved_link(worktree)
    if link is not None:
        return f"{link} in the worktree is a symbolic link (an agent replaced it)"
    return unsafe_change(git, base, ref)


def verify_factory(
    summary: Summary,
    *,
    spec: TaskSpec,
    worktree: Path,
    branch: str,
    base_sha: str,
    git_timeout: float,
    test_timeout: float,
    confine: Confine | None = None,
) -> Verdict:
    checks: dict[str, object] = {}
    if summary.status != "completed":
        return _fail(
            "code",
            f"factory_{summary.status}",
            f"the factory reported status {summary.status!r}: {summary.handover_notes[:200]}",
            checks,
        )
    git = Git(worktree, git_timeout)
    unsafe = unsafe_path(git, worktree, base_sha, branch)
    if unsafe is not None:
        return _fail("agent", "unsafe_path", unsafe, checks)
    dirty = git.dirty_files()
    if dirty:
        return _fail(
            "agent",
            "unverified_claim",
            f"uncommitted changes would be lost by the merge: {', '.join(dirty[:5])}",
            checks,
        )
    for sha in summary.commits:
        if not git.commit_exists(sha):
            return _fail(
                "agent", "unverified_claim", f"claimed commit {sha} does not exist", checks
            )
        if not git.is_ancestor(sha, branch):
            return _fail(
                "agent", "unverified_claim", f"claimed commit {sha} is not on {branch}", checks
            )
    checks["commits"] = len(summary.commits)
    changed = set(git.diff_names(base_sha, branch))
    checks["diff_files"] = sorted(changed)
    if not changed:
        return _fail(
            "agent",
            "unverified_claim",
            f"the summary claims completion but {branch} has no changes",
            checks,
        )
    for f in summary.implementation_files:
        if f not in changed:
            return _fail(
                "agent",
                "unverified_claim",
                f"claimed file {f} is not in the diff of {branch}",
                checks,
            )
    loc = git.diff_loc(base_sha, branch)
    checks["loc"] = loc
    if spec.loc_cap is not None and loc > spec.loc_cap:
        return _fail(
            "code",
            "loc_cap_exceeded",
            f"the diff changes {loc} lines; the cap is {spec.loc_cap}",
            checks,
        )
    argv = spec.acceptance_argv()
    if argv:
        result = run_acceptance(argv, worktree, test_timeout, confine=confine)
        checks["acceptance_seconds"] = round(result.seconds, 3)
        if result.timed_out:
            return _fail("timeout", "acceptance_timeout", result.describe(), checks)
        if not result.passed:
            return _fail("code", "acceptance_failed", result.describe(), checks)
    return Verdict(True, checks=checks)
