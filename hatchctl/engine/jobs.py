"""Blocking work done off the supervisor's loop (in worker threads): set up a task's worktree,
verify a factory's claims, merge approved work. Jobs never touch the store; they return results
the supervisor applies in one transaction. Every job is idempotent, so a supervisor killed
mid-job simply runs it again.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shlex
import stat
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hatchctl.config import HatchConfig
from hatchctl.engine import recheck
from hatchctl.engine.verify import Verdict, unsafe_path, verify_factory
from hatchctl.errors import HatchError, ScriptError, SummaryError, UnsafePath
from hatchctl.runtime import proc
from hatchctl.runtime.acceptance import Confine, run_acceptance
from hatchctl.runtime.gitrepo import Git
from hatchctl.runtime.scripts import Scripts
from hatchctl.state.ids import branch_name
from hatchctl.state.paths import ProjectPaths
from hatchctl.state.spec import TaskSpec
from hatchctl.state.summary import load_summary

_SHA = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")
VIEW = "project-state-readonly"  # the read-only planning view inside a task's worktree
INTEGRATION_DIR = "_integration"  # never a valid task id: ids start with a letter or digit
MERGE_CONFLICT_EXIT = 10
UNSAFE_PATH_EXIT = 7  # hatch_scripts/lib.sh: a symbolic link where a plain path was expected
SETTINGS = ".claude/settings.local.json"


TIP_TTL = 1.0  # seconds a read of the integration tip serves the setups that follow it


@dataclass
class TipCache:
    """The integration tip the last ``ensure_integration`` read, for the setups started in the
    same second (a launch of 20 agents ran the script, a bash and a git, 20 times in a row under
    the lock for one answer). Only with ``integration_lock`` held; a merge clears it, and a tip
    moved outside hatchctl is seen at the latest ``TIP_TTL`` later (a task started then begins
    from the tip of a moment before, as it would have had it started a moment earlier)."""

    tip: str = ""
    at: float = 0.0

    def fresh(self) -> str:
        return self.tip if self.tip and time.monotonic() - self.at < TIP_TTL else ""

    def keep(self, tip: str) -> str:
        self.tip, self.at = tip, time.monotonic()
        return tip

    def clear(self) -> None:
        self.tip = ""


@dataclass(frozen=True)
class JobEnv:
    root: Path
    paths: ProjectPaths
    config: HatchConfig
    scripts: Scripts
    planning_dir: Path
    # wraps the agent-written code hatchctl runs (acceptance, regression) in a sandbox
    confine: Confine | None = None
    # the integration worktree is shared: creating it and merging into it happen one at a time
    integration_lock: threading.Lock = field(default_factory=threading.Lock, compare=False)
    tips: TipCache = field(default_factory=TipCache, compare=False)

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


def _run_script(env: JobEnv, name: str, *args: str) -> proc.Result:
    """A script of a task's setup; its "unsafe path" exit (a link an agent put there) is an
    UnsafePath naming the path, not an infrastructure failure."""
    try:
        return env.scripts.run(name, *args)
    except ScriptError as exc:
        if exc.returncode == UNSAFE_PATH_EXIT:
            raise UnsafePath(_last_line(exc.output) or str(exc)) from None
        raise


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO planted there fails at once (ENXIO) instead of blocking the job forever
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _open_no_follow(name: str | Path, shown: str, *, last: bool, dir_fd: int | None) -> int:
    try:
        if last:
            return os.open(name, _FILE_FLAGS, 0o600, dir_fd=dir_fd)
        if dir_fd is not None:
            with contextlib.suppress(FileExistsError):  # mkdir never follows a link either
                os.mkdir(name, dir_fd=dir_fd)
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENXIO, errno.EISDIR):
            kind = "regular file" if last else "directory"
            raise UnsafePath(
                f"unsafe path: {shown} is a symbolic link or not a {kind} (not followed)"
            ) from None
        raise HatchError(f"cannot write {shown}: {exc.strerror}") from None


def write_no_follow(root: Path, rel: str, text: str) -> None:
    """Write ``root/rel`` (mode 0o600), creating missing directories, without following a
    symbolic link at ``root`` or any component of ``rel`` (each is opened with O_NOFOLLOW,
    relative to its parent's descriptor). A link, or anything but a directory or a regular file
    of its own where one is expected, is UnsafePath and nothing is written."""
    parts = rel.split("/")
    fd = _open_no_follow(root, str(root), last=False, dir_fd=None)
    try:
        for i, name in enumerate(parts):
            shown = "/".join(parts[: i + 1])
            new_fd = _open_no_follow(name, shown, last=i == len(parts) - 1, dir_fd=fd)
            os.close(fd)
            fd = new_fd
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
            raise UnsafePath(f"unsafe path: {rel} is not a regular file of its own (not written)")
        os.ftruncate(fd, 0)
        os.fchmod(fd, 0o600)
        data = text.encode("utf-8")
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)


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


# Claude Code hooks: Stop (the turn ended: a .stop with the transcript's path), Notification (it
# waits for the user), PermissionRequest (the same at once, where Notification comes seconds
# later; the hook prints nothing: no decision) and UserPromptSubmit (a paste was taken)
CLAUDE_HOOKS: dict[str, tuple[str, ...]] = {
    "Stop": ("agent/stop_hook.sh",),
    "Notification": ("agent/signal_hook.sh", "wait"),
    "PermissionRequest": ("agent/signal_hook.sh", "wait"),
    "UserPromptSubmit": ("agent/signal_hook.sh", "submitted"),
}


def claude_settings(scripts: Scripts, events: Iterable[str] = tuple(CLAUDE_HOOKS)) -> str:
    """``.claude/settings.local.json`` running hatchctl's hook scripts on ``events``."""

    def hook(script: str, *args: str) -> list[dict[str, object]]:
        command = shlex.join(["bash", str(scripts.path(script)), *args])
        entry = {"type": "command", "command": command, "timeout": 30}
        return [{"matcher": "", "hooks": [entry]}]

    return json.dumps({"hooks": {e: hook(*CLAUDE_HOOKS[e]) for e in events}}, indent=2)


def _worktree(env: JobEnv, spec: TaskSpec, *, reset: bool) -> tuple[str, str]:
    """The task's worktree (fresh from the integration tip with ``reset``, else from its own
    branch), its read-only planning view and hook settings. Returns (commit, mount method)."""
    worktree = env.paths.worktree(spec.id)
    with env.integration_lock:  # the tip, read where no merge moves it meanwhile
        tip = env.tips.fresh() or env.tips.keep(ensure_integration(env))
    # outside the lock: the jobs of different tasks run concurrently; the scripts serialize
    # git's own worktree add/prune/remove on the repository (lib.sh lock_worktrees: git is not
    # safe running them at once)
    out = _run_script(
        env,
        "git/create_worktree.sh",
        *(["--reset"] if reset else []),
        str(env.root),
        str(worktree),
        spec.id,
        tip if _SHA.fullmatch(tip) else env.config.project.integration_branch,
    )
    method = mount_view(env, spec.id)
    agents = env.config.agents
    if "claude-hook" in (agents.factory.stop, agents.qa.stop):
        write_no_follow(worktree, SETTINGS, claude_settings(env.scripts))
    return _last_line(out.stdout), method


def mount_view(env: JobEnv, task_id: str) -> str:
    """The read-only planning view in the task's worktree; returns how it was made."""
    out = _run_script(
        env,
        "mount/mount_readonly.sh",
        str(env.planning_dir),
        str(env.paths.worktree(task_id) / VIEW),
    )
    return _last_line(out.stdout) or "unknown"


def restore(env: JobEnv, spec: TaskSpec) -> str:
    """A worktree deleted under its task: recreated from the task's branch (its committed work
    is kept; what was not committed is gone with the directory). Returns its commit."""
    head, _ = _worktree(env, spec, reset=False)
    return head


def setup(env: JobEnv, spec: TaskSpec) -> SetupResult:
    """Worktree from the integration tip, read-only planning view, hook settings, fast path."""
    worktree = env.paths.worktree(spec.id)
    base, method = _worktree(env, spec, reset=True)
    result = SetupResult(base, str(worktree), method, "none")
    argv = spec.acceptance_argv()
    if argv:
        acc = run_acceptance(argv, worktree, env.config.limits.test_timeout, confine=env.confine)
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
        confine=env.confine,
    )


def release_view(env: JobEnv, task_id: str) -> None:
    """A failed task keeps its worktree for inspection, but not its read-only planning view: a
    mount must not outlive the agents (it would make `rm -rf` of the project fail)."""
    view = env.paths.worktree(task_id) / "project-state-readonly"
    if view.is_symlink() or view.exists():
        env.scripts.run("mount/unmount.sh", str(view))


def remove_worktree(env: JobEnv, task_id: str) -> None:
    env.scripts.run("git/remove_worktree.sh", str(env.root), str(env.paths.worktree(task_id)))


def merge(env: JobEnv, spec: TaskSpec, completed: Sequence[TaskSpec] = ()) -> MergeResult:
    """Merge hatch/<ID> into the integration branch; run the regression command, then the
    acceptance of this task and of every ``completed`` one (``recheck``); clean up. Checked
    again first: QA ran in the same worktree after the factory's verification."""
    branch = branch_name(spec.id)
    git = Git(env.root, env.config.limits.git_timeout)
    base = git.merge_base(env.config.project.integration_branch, branch)
    unsafe = unsafe_path(git, env.paths.worktree(spec.id), base, branch)
    if unsafe is not None:
        return MergeResult(False, failure_class="agent", reason="unsafe_path", detail=unsafe)
    with env.integration_lock:
        env.tips.clear()  # the merge moves the tip (or undoes a move): the next setup reads it
        try:
            result = _merge_locked(env, spec, completed)
        finally:
            env.tips.clear()
    if result.ok:
        remove_worktree(env, spec.id)
    return result


def _merge_locked(env: JobEnv, spec: TaskSpec, completed: Sequence[TaskSpec]) -> MergeResult:
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
        acc = run_acceptance(argv, wt, env.config.limits.test_timeout, confine=env.confine)
        if not acc.passed:
            env.scripts.run("git/undo_merge.sh", str(wt), before)
            cls = "timeout" if acc.timed_out else "regression"
            return MergeResult(
                False,
                failure_class=cls,
                reason="regression_failed",
                detail=f"regression run on the integration branch: {acc.describe()}",
            )
    project = env.config.project
    checks = recheck.checks_for(spec, completed, project.recheck)
    if checks and merged != before:
        lost = recheck.first_failure(
            checks,
            wt,
            env.config.limits.test_timeout,
            confine=env.confine,
            parallel=project.recheck_parallel,
        )
        if lost is not None:
            env.scripts.run("git/undo_merge.sh", str(wt), before)
            own = lost.check.task_id == spec.id
            return MergeResult(
                False,
                failure_class="timeout" if lost.result.timed_out else "regression",
                reason="acceptance_failed_after_merge" if own else "behaviour_lost",
                detail=recheck.describe(lost, spec.id),
            )
    return MergeResult(True, merged_sha=merged)
