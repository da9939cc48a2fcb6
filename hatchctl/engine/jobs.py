"""Blocking work done off the supervisor's loop (in worker threads): set up a task's worktree,
verify a factory's claims, merge approved work. Jobs never touch the store; they return results
the supervisor applies in one transaction. Every job is idempotent, so a supervisor killed
mid-job simply runs it again.
"""

from __future__ import annotations

import json
import shlex
import threading
from dataclasses import dataclass, field
from pathlib import Path

from hatchctl.config import HatchConfig
from hatchctl.engine.verify import Verdict, verify_factory
from hatchctl.errors import ScriptError, SummaryError
from hatchctl.runtime.acceptance import run_acceptance
from hatchctl.runtime.scripts import Scripts
from hatchctl.state.ids import branch_name
from hatchctl.state.paths import ProjectPaths
from hatchctl.state.spec import TaskSpec
from hatchctl.state.summary import load_summary

INTEGRATION_DIR = "_integration"  # never a valid task id: ids start with a letter or digit
MERGE_CONFLICT_EXIT = 10


@dataclass(frozen=True)
class JobEnv:
    root: Path
    paths: ProjectPaths
    config: HatchConfig
    scripts: Scripts
    planning_dir: Path
    # the integration worktree is shared: creating it and merging into it happen one at a time
    integration_lock: threading.Lock = field(default_factory=threading.Lock, compare=False)

    @property
    def integration_worktree(self) -> Path:
        return self.paths.worktrees / INTEGRATION_DIR


@dataclass
class SetupResult:
    base_sha: str
    worktree: str
    mount_method: str
    fast_path: str  # "none" | "passed" | "red_violation"
    detail: str = ""
    data: dict[str, object] = field(default_factory=dict)


@dataclass
class MergeResult:
    ok: bool
    merged_sha: str = ""
    failure_class: str | None = None
    reason: str | None = None
    detail: str = ""


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else ""


def ensure_integration(env: JobEnv) -> str:
    """Call with ``env.integration_lock`` held."""
    p = env.config.project
    out = env.scripts.run(
        "git/ensure_integration.sh",
        str(env.root),
        str(env.integration_worktree),
        p.integration_branch,
        p.base_ref,
    )
    return _last_line(out.stdout)


def claude_settings(env: JobEnv) -> str:
    hook = env.scripts.path("agent/stop_hook.sh")
    return json.dumps(
        {
            "hooks": {
                "Stop": [
                    {
                        "matcher": "",
                        "hooks": [
                            {
                                "type": "command",
                                "command": f"bash {shlex.quote(str(hook))}",
                                "timeout": 30,
                            }
                        ],
                    }
                ]
            }
        },
        indent=2,
    )


def setup(env: JobEnv, spec: TaskSpec) -> SetupResult:
    """Worktree from the integration tip, read-only planning view, hook settings, fast path."""
    worktree = env.paths.worktree(spec.id)
    with env.integration_lock:
        ensure_integration(env)
        out = env.scripts.run(
            "git/create_worktree.sh",
            "--reset",
            str(env.root),
            str(worktree),
            spec.id,
            env.config.project.integration_branch,
        )
    base = _last_line(out.stdout)
    mount = env.scripts.run(
        "mount/mount_readonly.sh", str(env.planning_dir), str(worktree / "project-state-readonly")
    )
    method = _last_line(mount.stdout) or "unknown"
    agents = env.config.agents
    if "claude-hook" in (agents.factory.stop, agents.qa.stop):
        settings = worktree / ".claude" / "settings.local.json"
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text(claude_settings(env), encoding="utf-8")
    result = SetupResult(base, str(worktree), method, "none")
    argv = spec.acceptance_argv()
    if argv:
        acc = run_acceptance(argv, worktree, env.config.limits.test_timeout)
        result.data["acceptance_before"] = acc.describe() if not acc.passed else "passed"
        if acc.passed:
            result.fast_path = "red_violation" if spec.tdd else "passed"
            result.detail = (
                "tdd: the acceptance command already passes before the factory started"
                if spec.tdd
                else "the acceptance command already passes: nothing to do"
            )
    return result


def verify(env: JobEnv, spec: TaskSpec, iteration: int, base_sha: str) -> Verdict:
    path = env.paths.summary_file(spec.id, "factory", iteration)
    try:
        summary = load_summary(path, task_id=spec.id, role="factory", iteration=iteration)
    except SummaryError as exc:
        return Verdict(False, "agent", "bad_summary", str(exc))
    lim = env.config.limits
    return verify_factory(
        summary,
        spec=spec,
        worktree=env.paths.worktree(spec.id),
        branch=branch_name(spec.id),
        base_sha=base_sha,
        git_timeout=lim.git_timeout,
        test_timeout=lim.test_timeout,
    )


def remove_worktree(env: JobEnv, task_id: str) -> None:
    env.scripts.run("git/remove_worktree.sh", str(env.root), str(env.paths.worktree(task_id)))


def merge(env: JobEnv, spec: TaskSpec) -> MergeResult:
    """Merge hatch/<ID> into the integration branch; run the regression command; clean up."""
    with env.integration_lock:
        result = _merge_locked(env, spec)
    if result.ok:
        remove_worktree(env, spec.id)
    return result


def _merge_locked(env: JobEnv, spec: TaskSpec) -> MergeResult:
    before = ensure_integration(env)
    wt = env.integration_worktree
    try:
        out = env.scripts.run("git/merge_branch.sh", str(wt), branch_name(spec.id))
    except ScriptError as exc:
        if exc.returncode == MERGE_CONFLICT_EXIT:
            return MergeResult(
                False,
                failure_class="merge_conflict",
                reason="merge_conflict",
                detail=f"merging {branch_name(spec.id)} conflicts: {_last_line(exc.output)}",
            )
        raise
    merged = _last_line(out.stdout)
    regression = env.config.project.regression
    argv = shlex.split(regression) if isinstance(regression, str) else list(regression)
    if argv and merged != before:
        acc = run_acceptance(argv, wt, env.config.limits.test_timeout)
        if not acc.passed:
            env.scripts.run("git/undo_merge.sh", str(wt), before)
            cls = "timeout" if acc.timed_out else "regression"
            return MergeResult(
                False,
                failure_class=cls,
                reason="regression_failed",
                detail=f"regression run on the integration branch: {acc.describe()}",
            )
    return MergeResult(True, merged_sha=merged)
