"""A factory's handover summary written by hatchctl from git facts, for agent CLIs that cannot
write one (``Preset.derives_summary``: aider).

When such a factory run exits 0 and its summary file does not exist, hatchctl looks at the
task's branch: the commits since the task's base (``HATCH_BASE_SHA``), their subjects and the
files they change. If at least one of them was committed during this run, it writes a summary
with status ``completed`` claiming exactly those commits and files, marked
``"derived_by": "hatchctl"``, and the run goes on as if the agent had written it: verification
(every claim, the acceptance command, ``loc_cap``) runs exactly as for any summary. Nothing in it
is the agent's word beyond what git records (commit subjects are shown, not trusted); no test
results or metrics are made up. With no commit made during the run there is nothing to derive
and the run ends ``no_summary`` as before. A QA verdict is never derived.

Commits and subjects are written by the agent: git runs as hatchctl's own git calls do (an argv,
a timeout, no hooks or fsmonitor: ``gitrepo.git_env``), output is bounded, and the summary file
is written without following a link planted at its path.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hatchctl import agents
from hatchctl.engine.deps import Deps
from hatchctl.errors import HatchError, SummaryError
from hatchctl.runtime import proc
from hatchctl.runtime.gitrepo import Git, git_env
from hatchctl.state.ids import branch_name
from hatchctl.state.rows import RunRow
from hatchctl.state.summary import Summary

DERIVED_BY = "hatchctl"
MAX_COMMITS = 200  # commits listed (newest first)
MAX_FILES = 2000  # files listed
SUBJECT_CHARS = 200
NOTE_SUBJECTS = 20  # subjects quoted in the handover notes


@dataclass(frozen=True)
class Commit:
    sha: str
    time: int  # committer time, seconds since the epoch
    subject: str


@dataclass(frozen=True)
class Facts:
    """What git says about a task branch since its base."""

    base: str
    branch: str
    commits: tuple[Commit, ...]  # newest first, at most MAX_COMMITS
    files: tuple[str, ...]  # changed between base and branch

    def since(self, started: float) -> list[Commit]:
        """The commits made at or after ``started`` (committer time, whole seconds)."""
        return [c for c in self.commits if c.time >= math.floor(started)]


def git_facts(root: Path, base: str, branch: str, timeout: float) -> Facts:
    """The commits and changed files of ``base..branch`` in the repository at ``root``."""
    out = proc.run(
        [
            "git",
            "-C",
            str(root),
            "log",
            "-z",
            f"--max-count={MAX_COMMITS}",
            "--format=%H%x1f%ct%x1f%s",
            f"{base}..{branch}",
            "--",
        ],
        timeout=timeout,
        env=git_env(),
    ).stdout
    commits = []
    for record in out.split("\0"):
        sha, _, rest = record.strip("\n").partition("\x1f")
        when, _, subject = rest.partition("\x1f")
        if sha and when.isdigit():
            commits.append(Commit(sha, int(when), subject[:SUBJECT_CHARS]))
    files = Git(root, timeout).diff_names(base, branch)[:MAX_FILES]
    return Facts(base, branch, tuple(commits), tuple(files))


def build(run: RunRow, facts: Facts) -> Summary | None:
    """The derived summary of ``run`` from ``facts``; None when the run committed nothing."""
    new = facts.since(run.started_at)
    if not new:
        return None
    lines = [
        f"Derived by hatchctl from git: the agent wrote no summary. {len(facts.commits)} "
        f"commit(s) on {facts.branch} since {facts.base[:12]}, {len(new)} made by this run, "
        f"{len(facts.files)} file(s) changed:",
        *(f"- {c.sha[:12]} {c.subject}" for c in facts.commits[:NOTE_SUBJECTS]),
    ]
    if len(facts.commits) > NOTE_SUBJECTS:
        lines.append(f"- ... and {len(facts.commits) - NOTE_SUBJECTS} more")
    return Summary.model_validate(
        {
            "task_id": run.task_id,
            "role": "factory",
            "iteration": run.iteration,
            "status": "completed",
            "commits": [c.sha for c in new],
            "implementation_files": list(facts.files),
            "handover_notes": "\n".join(lines),
            "derived_by": DERIVED_BY,
            "derived_from": {
                "base": facts.base,
                "branch": facts.branch,
                "commits": len(facts.commits),
                "new_commits": len(new),
            },
        }
    )


def write_summary(path: Path, summary: Summary) -> None:
    """Write ``summary`` to ``path`` atomically: a temporary file beside it renamed over it,
    both inside the directory opened without following a link; a link at ``path`` is replaced,
    never followed."""
    data = (json.dumps(summary.model_dump(mode="json"), indent=2) + "\n").encode("utf-8")
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    tmp = f".{path.name}.hatch-{secrets.token_hex(4)}.tmp"
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, 0o600, dir_fd=dfd)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path.name, src_dir_fd=dfd, dst_dir_fd=dfd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dfd)
        raise
    finally:
        os.close(dfd)


def wanted(deps: Deps, run: RunRow, error: SummaryError) -> bool:
    """Whether hatchctl derives this run's summary: a factory run of a preset that cannot write
    one exited 0, and its summary is missing (not invalid: an invalid one stays the agent's)."""
    if run.role != "factory" or run.exit_code != 0:
        return False
    if not agents.for_agent(deps.project.config.agents.factory).derives_summary:
        return False
    text = str(error)
    return "does not exist" in text or "older than this run" in text


def derive(deps: Deps, run: RunRow, error: SummaryError) -> Summary | None:
    """The run's derived summary, written to its summary file (event ``summary_derived``); None
    when none is wanted or the run committed nothing (the run then fails as before)."""
    if not wanted(deps, run, error):
        return None
    task = deps.store.task(run.task_id)
    if task is None or not task.base_sha:
        return None
    root = deps.project.root
    branch = task.branch or branch_name(task.id)
    try:
        summary = build(run, git_facts(root, task.base_sha, branch, float(deps.limits.git_timeout)))
        if summary is None:
            deps.log.info("summary_not_derived", task_id=run.task_id, run_id=run.id)
            return None
        write_summary(root / run.summary_path, summary)
    except (HatchError, OSError) as exc:
        deps.log.warning(
            "summary_derive_failed", task_id=run.task_id, run_id=run.id, error=str(exc)
        )
        return None
    extra = summary.model_extra or {}
    data: dict[str, Any] = {
        "commits": len(summary.commits),
        "files": len(summary.implementation_files),
        "derived_from": extra.get("derived_from"),
    }
    with deps.store.tx() as tx:
        tx.event("summary_derived", task_id=run.task_id, run_id=run.id, data=data)
    deps.log.info("summary_derived", task_id=run.task_id, run_id=run.id, **data)
    return summary
