"""The integration tip read once for a burst of setups (engine/jobs.py TipCache): real scripts,
real git, real mounts. Setups started together share one read; a merge is never missed."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from hatchctl.engine import jobs
from hatchctl.runtime.scripts import Scripts, builtin_root
from tests.conftest import git
from tests.integration.conftest import Projects


class CountingScripts(Scripts):
    """The real scripts, each run also noted by name."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ran: list[str] = []

    def run(self, name: str, *args: str, **kwargs: Any) -> Any:
        self.ran.append(name)
        return super().run(name, *args, **kwargs)


def tip(root: Path, branch: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(root), "rev-parse", f"refs/heads/{branch}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return out.stdout.strip()


def test_setups_share_one_tip_read_and_a_merge_is_never_missed(projects: Projects) -> None:
    p = projects.make({"A": {}, "B": {}, "C": {}})
    specs = p.load_specs().specs
    scripts = CountingScripts(builtin_root(), timeout=60)
    env = jobs.JobEnv(p.root, p.paths, p.config, scripts, p.planning_dir)
    branch = p.config.project.integration_branch

    a = jobs.setup(env, specs["A"])
    b = jobs.setup(env, specs["B"])
    first = tip(p.root, branch)
    assert a.base_sha == b.base_sha == first
    assert scripts.ran.count("git/ensure_integration.sh") == 1  # B took A's read

    # A's work merged: the tip moves, and the next setup starts from it (not the cached one)
    wt = p.paths.worktree("A")
    (wt / "work.txt").write_text("done\n")
    git(wt, "add", "work.txt")
    git(wt, "commit", "-q", "-m", "A's work")
    merged = jobs.merge(env, specs["A"])
    assert merged.ok, merged.detail
    moved = tip(p.root, branch)
    assert moved != first and merged.merged_sha == moved
    c = jobs.setup(env, specs["C"])
    assert c.base_sha == moved
    assert (p.paths.worktree("C") / "work.txt").read_text() == "done\n"
