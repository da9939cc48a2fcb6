"""No path operation follows a symbolic link a hostile agent planted out of where it belongs (the
scripts alone: test_symlinks_scripts.py).

Every attack here is performed for real: real bash scripts, real git, the real supervisor with
real tmux and the real sim agent (wrapped by a few lines of bash that plant the link, the way a
hostile agent would). Each test checks that a canary directory outside the project is untouched
(same entries, content, modes, nothing mounted over it) and that the task ends in a defined
state with the reason ``unsafe_path``.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from hatchctl.engine import jobs
from hatchctl.project import Project
from hatchctl.runtime.scripts import Scripts, builtin_root
from tests.conftest import git
from tests.integration.conftest import FAST_LIMITS, Projects, drain, kinds, to_toml
from tests.security.symlinkkit import (
    SETTINGS,
    SIM,
    VIEW,
    WORK,
    Outside,
    agent,
    assert_unsafe,
    commit_all,
    replace_view,
    retry,
)


@pytest.mark.usefixtures("copy_view")
def test_factory_replacing_its_view_with_a_link_fails_and_cleanup_removes_only_the_link(
    projects: Projects, outside: Outside
) -> None:
    hostile = agent(f"{SIM}; code=$?", replace_view(outside.dir), "exit $code")
    p = projects.make({"A": WORK}, {"limits": {"max_strikes": 1}, "agents": {"factory": hostile}})
    _, tasks, deps = drain(p)
    assert tasks["A"].state == "failed"
    assert [r.role for r in deps.store.runs("A")] == ["factory"]  # never reached QA
    deps.store.close()
    assert_unsafe(p, "A", f"{VIEW} in the worktree is a symbolic link")
    # the failed task's view is released (only the link itself is removed, never its target)
    assert not (p.paths.worktree("A") / VIEW).exists() or os.path.islink(
        p.paths.worktree("A") / VIEW
    )
    outside.assert_untouched()
    # The agent is replaced by an honest one and the task retried: setup recreates the worktree,
    # removing the planted link (only the link); the task then runs to its merge and cleanup.
    honest = {"project": {"name": p.name, "base_ref": "main"}, "limits": FAST_LIMITS}
    (p.root / "hatch.toml").write_text(to_toml(honest))
    p = Project.find(p.root)
    retry(p, "A")
    code, tasks, deps = drain(p)
    assert code == 0 and tasks["A"].state == "completed", tasks["A"].last_error
    assert "merged" in kinds(deps, "A")
    assert not os.path.lexists(p.paths.worktree("A"))
    outside.assert_untouched()


@pytest.mark.usefixtures("copy_view")
def test_qa_replacing_the_view_after_approving_is_not_merged(
    projects: Projects, outside: Outside
) -> None:
    hostile = agent(f"{SIM}; code=$?", replace_view(outside.dir), "exit $code")
    p = projects.make({"A": WORK}, {"limits": {"max_strikes": 1}, "agents": {"qa": hostile}})
    _, tasks, deps = drain(p)
    assert tasks["A"].state == "failed"
    assert "merged" not in kinds(deps, "A") and "verified" in kinds(deps, "A")
    deps.store.close()
    assert_unsafe(p, "A", f"{VIEW} in the worktree is a symbolic link")
    outside.assert_untouched()
    # the cleanup the supervisor runs (remove_worktree.sh) deletes the link, not its target
    scripts = Scripts(builtin_root(), timeout=60)
    jobs.remove_worktree(jobs.JobEnv(p.root, p.paths, p.config, scripts, p.planning_dir), "A")
    assert not os.path.lexists(p.paths.worktree("A"))
    outside.assert_untouched()


@pytest.mark.usefixtures("copy_view")
def test_factory_committing_a_link_in_place_of_the_view_is_never_merged(
    projects: Projects, outside: Outside
) -> None:
    hostile = agent(replace_view(outside.dir), commit_all("view is a link now"), SIM)
    p = projects.make({"A": WORK}, {"limits": {"max_strikes": 1}, "agents": {"factory": hostile}})
    drain(p)[2].store.close()
    assert git(p.root, "ls-tree", "hatch/A", VIEW).startswith("120000")  # it was committed
    assert_unsafe(p, "A", VIEW)
    assert git(p.root, "ls-tree", "hatch/integration", VIEW) == ""  # and never merged
    outside.assert_untouched()


def test_factory_committing_a_link_leading_outside_fails_verification(
    projects: Projects, outside: Outside
) -> None:
    link = f"ln -s {shlex.quote(str(outside.canary))} docs/evil"
    hostile = agent("mkdir -p docs", link, commit_all("a convenient link"), SIM)
    p = projects.make({"A": WORK}, {"limits": {"max_strikes": 1}, "agents": {"factory": hostile}})
    drain(p)[2].store.close()
    assert_unsafe(p, "A", f"docs/evil is a symbolic link to {str(outside.canary)!r}")
    assert git(p.root, "ls-tree", "hatch/integration", "docs") == ""
    outside.assert_untouched()


def commit_on_main(p: Project, links: dict[str, Path]) -> None:
    """A link that got onto the base branch (merged earlier, or committed by hand)."""
    for rel, target in links.items():
        (p.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (p.root / rel).symlink_to(target)
        git(p.root, "add", "-f", rel)
    git(p.root, "commit", "-q", "-m", "a link at a reserved path")


@pytest.mark.parametrize("method", ["auto", "copy"])
def test_a_view_link_on_the_base_fails_setup_and_is_never_followed(
    projects: Projects, outside: Outside, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    monkeypatch.setenv("HATCH_MOUNT_METHOD", method)  # auto: a bind mount as root
    p = projects.make({"A": WORK})
    commit_on_main(p, {VIEW: outside.dir})
    for attempt in (1, 2):
        # the second time, setup first removes the worktree holding the link (the link only)
        _, tasks, deps = drain(p)
        a = tasks["A"]
        reasons = [e["reason"] for e in a.errors if "reason" in e]
        assert a.state == "failed" and set(reasons) == {"unsafe_path"}
        assert kinds(deps, "A").count("unsafe_path") == len(reasons) >= attempt
        assert "worktree_ready" not in kinds(deps, "A")
        assert deps.store.runs("A") == []  # no agent ever started
        deps.store.close()
        assert_unsafe(p, "A", f"{VIEW} is a symbolic link")
        view = p.paths.worktree("A") / VIEW  # released: at most the link itself, never followed
        assert not view.exists() or os.path.islink(view)
        outside.assert_untouched()
        if attempt == 1:
            retry(p, "A")


@pytest.mark.parametrize("planted", [SETTINGS, ".claude"])
def test_a_claude_settings_link_on_the_base_is_never_written_through(
    projects: Projects, outside: Outside, planted: str
) -> None:
    p = projects.make(
        {"A": WORK},
        {"limits": {"max_strikes": 1}, "agents": {"factory": {"stop": "claude-hook"}}},
    )
    commit_on_main(p, {planted: outside.canary if planted == SETTINGS else outside.dir})
    _, tasks, deps = drain(p)
    assert tasks["A"].state == "failed" and deps.store.runs("A") == []
    deps.store.close()
    assert_unsafe(p, "A", f"unsafe path: {planted} is a symbolic link")
    outside.assert_untouched()
    wt = p.paths.worktree("A")
    assert os.path.islink(wt / planted) and os.readlink(wt / planted) in (
        str(outside.canary),
        str(outside.dir),
    )


def test_an_honest_project_still_runs_with_links_inside_it(projects: Projects) -> None:
    p = projects.make({"A": WORK}, {"agents": {"factory": {"stop": "claude-hook"}}})
    commit_on_main(p, {"docs/readme-link": Path("../README.md")})
    code, tasks, deps = drain(p)
    deps.store.close()
    assert code == 0 and tasks["A"].state == "completed", tasks["A"].last_error
