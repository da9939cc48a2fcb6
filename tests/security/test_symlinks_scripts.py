"""No path operation of the scripts or of verification follows a symbolic link out of where it
belongs (the whole tasks: test_symlinks_agents.py).

Every attack here is performed for real: real bash scripts, real git, the real supervisor with
real tmux and the real sim agent (wrapped by a few lines of bash that plant the link, the way a
hostile agent would). Each test checks that a canary directory outside the project is untouched
(same entries, content, modes, nothing mounted over it) and that the task ends in a defined
state with the reason ``unsafe_path``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hatchctl.engine.verify import Verdict, unsafe_change, verify_factory
from hatchctl.runtime.gitrepo import Git
from hatchctl.state.spec import TaskSpec
from hatchctl.state.summary import Summary
from tests.conftest import git
from tests.integration.test_scripts import script
from tests.security.symlinkkit import (
    SETTINGS,
    VIEW,
    Outside,
    new_worktree,
)


# -- the scripts -------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["auto", "copy"])
@pytest.mark.parametrize("where", ["view", "dangling", "parent", "inside"])
def test_mount_refuses_a_link_at_or_in_the_view(
    repo: Path, outside: Outside, tmp_path: Path, method: str, where: str
) -> None:
    planning = tmp_path / "planning"
    planning.mkdir()
    (planning / "PLAN.md").write_text("the plan\n")
    wt = new_worktree(repo)
    target = wt / VIEW
    if where == "view":
        target.symlink_to(outside.dir)
    elif where == "dangling":
        target.symlink_to(outside.dir / "new")
    elif where == "parent":  # the worktree path itself leads outside
        wt = tmp_path / "wt-link"
        wt.symlink_to(outside.dir)
        target = wt / VIEW
    else:  # a real view directory holding a link: cp -a would copy through it
        target.mkdir()
        (target / "specs").symlink_to(outside.dir)
        (planning / "specs").mkdir()
        (planning / "specs" / "X.md").write_text("x\n")
    for dry in ([], ["--dry-run"]):
        out = script(
            "mount/mount_readonly.sh",
            *dry,
            str(planning),
            str(target),
            env={"HATCH_MOUNT_METHOD": method},
        )
        assert out.returncode == 7, out.stderr
        assert "unsafe path:" in out.stderr and "symbolic link" in out.stderr
        assert out.stdout == ""
    outside.assert_untouched()
    assert not (outside.dir / "new").exists()


def test_unmount_removes_a_link_in_place_of_the_view_never_its_target(
    repo: Path, outside: Outside
) -> None:
    wt = new_worktree(repo)
    (wt / VIEW).symlink_to(outside.dir)
    dry = script("mount/unmount.sh", "--dry-run", str(wt / VIEW))
    assert dry.returncode == 0, dry.stderr
    assert (wt / VIEW).is_symlink() and "+ rm -f --" in dry.stderr
    out = script("mount/unmount.sh", str(wt / VIEW))
    assert out.returncode == 0, out.stderr
    assert "symbolic link: removing the link only" in out.stderr
    assert not os.path.lexists(wt / VIEW)
    outside.assert_untouched()
    link_parent = wt / "via"
    link_parent.symlink_to(outside.dir)
    refused = script("mount/unmount.sh", str(link_parent / "canary.txt"))
    assert refused.returncode == 7 and "via is a symbolic link" in refused.stderr
    outside.assert_untouched()


def test_remove_worktree_removes_links_only(repo: Path, outside: Outside) -> None:
    wt = new_worktree(repo)
    (wt / VIEW).symlink_to(outside.dir)
    out = script("git/remove_worktree.sh", str(repo), str(wt))
    assert out.returncode == 0, out.stderr
    assert not os.path.lexists(wt)
    outside.assert_untouched()
    # a link where the worktree itself should be: the link goes, its target stays
    wt.symlink_to(outside.dir)
    out = script("git/remove_worktree.sh", str(repo), str(wt))
    assert out.returncode == 0, out.stderr
    assert not os.path.lexists(wt)
    outside.assert_untouched()


def test_create_worktree_refuses_a_link_at_the_worktree_path(repo: Path, outside: Outside) -> None:
    wt = repo / ".hatch" / "worktrees" / "T"
    wt.parent.mkdir(parents=True)
    wt.symlink_to(outside.dir)
    out = script("git/create_worktree.sh", "--reset", str(repo), str(wt), "T", "main")
    assert out.returncode == 7 and "unsafe path:" in out.stderr, out.stderr
    assert wt.is_symlink()
    outside.assert_untouched()


# -- verification reads links from git, never the disk ------------------------------------------
@pytest.mark.parametrize(
    ("links", "files", "named", "why"),
    [
        ({"docs/evil": "/etc/passwd"}, {}, "docs/evil", "outside the repository"),
        ({"docs/up": "../../x"}, {}, "docs/up", "outside the repository"),
        # sub/a is the root itself (fine); sub/b goes through it and one level up
        ({"sub/a": "..", "sub/b": "a/.."}, {}, "sub/b", "outside the repository"),
        ({"l1": "l2", "l2": "l1"}, {}, "l1", "a loop of links"),
        ({"db": ".hatch/hatch.db"}, {}, "db", "reserved for hatchctl"),
        ({}, {SETTINGS: "{}"}, SETTINGS, "reserved for hatchctl"),
        ({}, {".hatch/x": "x"}, ".hatch/x", "reserved for hatchctl"),
        ({}, {f"{VIEW}/notes.md": "x"}, f"{VIEW}/notes.md", "reserved for hatchctl"),
        ({VIEW: "/tmp"}, {}, VIEW, "symbolic link"),
        ({".claude": "/tmp"}, {}, ".claude", "symbolic link"),
    ],
)
def test_verification_refuses_unsafe_paths_on_the_branch(
    repo: Path, links: dict[str, str], files: dict[str, str], named: str, why: str
) -> None:
    base = git(repo, "rev-parse", "main")
    wt = new_worktree(repo)
    (wt / "ok.txt").write_text("work\n")
    for rel, content in files.items():
        (wt / rel).parent.mkdir(parents=True, exist_ok=True)
        (wt / rel).write_text(content)
    for rel, target in links.items():
        (wt / rel).parent.mkdir(parents=True, exist_ok=True)
        (wt / rel).symlink_to(target)
    git(wt, "add", "-f", "-A")
    git(wt, "commit", "-q", "-m", "work")
    verdict = verify(wt, base)
    assert (verdict.ok, verdict.failure_class, verdict.reason) == (False, "agent", "unsafe_path")
    assert named in verdict.detail and why in verdict.detail, verdict.detail
    # the branch alone (read from git objects, not the disk) is refused as well
    for rel in [*links, *files]:
        os.unlink(wt / rel)
    detail = unsafe_change(Git(wt), base, "hatch/T")
    assert detail is not None and named in detail


def test_links_that_stay_inside_the_repository_are_fine(repo: Path) -> None:
    base = git(repo, "rev-parse", "main")
    wt = new_worktree(repo)
    (wt / "sub").mkdir()
    (wt / "link").symlink_to("README.md")
    (wt / "sub" / "up").symlink_to("../README.md")
    (wt / "sub" / "here").symlink_to(".")
    (wt / "sub" / "dangling").symlink_to("not-yet-there")
    git(wt, "add", "-A")
    git(wt, "commit", "-q", "-m", "links")
    verdict = verify(wt, base)
    assert verdict.ok, verdict.detail


def verify(wt: Path, base: str) -> Verdict:
    commits = git(wt, "rev-list", f"{base}..HEAD").split()
    summary = Summary(task_id="T", role="factory", iteration=1, status="completed", commits=commits)
    return verify_factory(
        summary,
        spec=TaskSpec(id="T", title="T"),
        worktree=wt,
        branch="hatch/T",
        base_sha=base,
        git_timeout=30,
        test_timeout=30,
    )
