"""After a merge, every merged task's behaviour must still hold on the integration branch.

git can merge two tasks' edits without a conflict and still lose one task's behaviour (both
changed the same logic in different lines). So a merge is kept only if the merged task's own
acceptance and the acceptance of every task completed before it (each distinct command once)
pass on the merged integration worktree. The global ``regression`` command runs before this.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hatchctl.runtime.acceptance import AcceptanceResult, Confine, run_acceptance
from hatchctl.state.spec import TaskSpec

Mode = Literal["all", "own", "none"]


@dataclass(frozen=True)
class Check:
    task_id: str
    argv: tuple[str, ...]


@dataclass(frozen=True)
class Failure:
    check: Check
    result: AcceptanceResult


def checks_for(spec: TaskSpec, completed: Iterable[TaskSpec], mode: Mode) -> list[Check]:
    """The merged task's acceptance first, then (mode ``all``) each completed task's, every
    distinct command once, in task id order."""
    if mode == "none":
        return []
    out: list[Check] = []
    seen: set[tuple[str, ...]] = set()
    others = sorted((s for s in completed if s.id != spec.id), key=lambda s: s.id)
    for s in [spec, *(others if mode == "all" else [])]:
        argv = s.acceptance_argv()
        if not argv or tuple(argv) in seen:
            continue
        seen.add(tuple(argv))
        out.append(Check(s.id, tuple(argv)))
    return out


def first_failure(
    checks: list[Check],
    cwd: Path,
    timeout: float,
    *,
    confine: Confine | None,
    parallel: int,
) -> Failure | None:
    """Run the checks (``parallel`` at a time); the first failing one in list order, if any."""
    if not checks:
        return None

    def one(check: Check) -> AcceptanceResult:
        return run_acceptance(list(check.argv), cwd, timeout, confine=confine)

    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="recheck") as pool:
        results = list(pool.map(one, checks))
    for check, result in zip(checks, results, strict=True):
        if not result.passed:
            return Failure(check, result)
    return None


def describe(failure: Failure, merged_id: str) -> str:
    check = failure.check
    whose = "its own acceptance" if check.task_id == merged_id else f"{check.task_id}'s acceptance"
    return (
        f"after merging {merged_id}, {whose} fails on the integration branch (the merge was "
        f"undone): {failure.result.describe()}"
    )
