"""Trust, then verify: every claim of a factory summary is checked against the repository."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hatchctl.runtime.acceptance import run_acceptance
from hatchctl.runtime.gitrepo import Git
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


def verify_factory(
    summary: Summary,
    *,
    spec: TaskSpec,
    worktree: Path,
    branch: str,
    base_sha: str,
    git_timeout: float,
    test_timeout: float,
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
        result = run_acceptance(argv, worktree, test_timeout)
        checks["acceptance_seconds"] = round(result.seconds, 3)
        if result.timed_out:
            return _fail("timeout", "acceptance_timeout", result.describe(), checks)
        if not result.passed:
            return _fail("code", "acceptance_failed", result.describe(), checks)
    return Verdict(True, checks=checks)
