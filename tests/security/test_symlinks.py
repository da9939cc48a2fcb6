"""No path operation follows a symbolic link out of where it belongs.

Every attack here is performed for real: real bash scripts, real git, the real supervisor with
real tmux and the real sim agent (wrapped by a few lines of bash that plant the link, the way a
hostile agent would). Each test checks that a canary directory outside the project is untouched
(same entries, content, modes, nothing mounted over it) and that the task ends in a defined
state with the reason ``unsafe_path``.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hatchctl.cmds.common import build_deps
from hatchctl.engine import jobs
from hatchctl.engine.commands import Commands
from hatchctl.engine.verify import Verdict, unsafe_change, verify_factory
from hatchctl.project import Project
from hatchctl.runtime.gitrepo import Git
from hatchctl.runtime.scripts import Scripts, builtin_root, mounts_under
from hatchctl.state.spec import TaskSpec
from hatchctl.state.summary import Summary
from hatchctl.state.sync import sync_specs
from tests.conftest import git
from tests.integration.conftest import FAST_LIMITS, Projects, drain, hatchctl_here, kinds, to_toml
from tests.integration.test_scripts import script

SCRIPTS = builtin_root()
VIEW = "project-state-readonly"
SETTINGS = ".claude/settings.local.json"
CANARY = "canary: must survive\n"
# Modes that both `chmod -R a-w` (the copy) and `chmod -R u+w` (its removal) would change.
DIR_MODE, FILE_MODE = 0o570, 0o460


@pytest.fixture
def projects(tmp_path: Path) -> Iterator[Projects]:
    ps = Projects(tmp_path)
    yield ps
    ps.cleanup()


@dataclass(frozen=True)
class Outside:
    """A directory outside every project, with a canary file: the target of every link."""

    dir: Path

    @property
    def canary(self) -> Path:
        return self.dir / "canary.txt"

    def assert_untouched(self) -> None:
        assert sorted(os.listdir(self.dir)) == ["canary.txt"]
        assert self.canary.read_text() == CANARY
        assert self.canary.stat().st_mode & 0o7777 == FILE_MODE
        assert self.dir.stat().st_mode & 0o7777 == DIR_MODE
        assert mounts_under(self.dir) == []


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Outside]:
    out = Outside(tmp_path / "outside")
    out.dir.mkdir()
    out.canary.write_text(CANARY)
    out.canary.chmod(FILE_MODE)
    out.dir.chmod(DIR_MODE)
    out.assert_untouched()
    yield out
    out.dir.chmod(0o700)  # so that pytest can remove it


def new_worktree(repo: Path, task: str = "T") -> Path:
    wt = repo / ".hatch" / "worktrees" / task
    out = script("git/create_worktree.sh", str(repo), str(wt), task, "main")
    assert out.returncode == 0, out.stderr
    return wt


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


# -- whole tasks: the supervisor, tmux, the sim agent -----------------------------------------
SIM = 'hatchctl sim-agent "$@"'
WORK = {"sim": {"files": {"work.txt": "done\n"}}}


def agent(*lines: str) -> dict[str, list[str]]:
    """An agent command: bash running these lines (the prompt is passed on to the sim agent)."""
    return {"command": ["bash", "-c", "\n".join(lines), "hostile-agent"]}


def replace_view(target: Path) -> str:
    """What a hostile agent does to the read-only view of its worktree (a copy: its own files)."""
    return (
        f'v="$HATCH_WORKTREE/{VIEW}"; chmod -R u+w "$v"; rm -rf "$v"; '
        f'ln -s {shlex.quote(str(target))} "$v"'
    )


def commit_all(message: str) -> str:
    return (
        "git -c user.name=hostile -c user.email=hostile@invalid add -f -A && "
        f"git -c user.name=hostile -c user.email=hostile@invalid commit -q -m {shlex.quote(message)}"
    )


def status_text(p: Project) -> str:
    """`hatchctl status`, read-only: run in this process (hatchctl_here)."""
    out = hatchctl_here("-C", str(p.root), "status")
    assert out.returncode in (0, 1), out.stderr
    return out.stdout


def retry(p: Project, task_id: str) -> None:
    deps = build_deps(p)
    try:
        sync_specs(deps.store, p.load_specs().specs)
        assert "pending again" in Commands(deps, lambda: None, lambda: None).retry(task_id)
    finally:
        deps.store.close()


def assert_unsafe(p: Project, task_id: str, named: str) -> None:
    """The task failed for the agent's unsafe path, in the store and in `hatchctl status`."""
    deps = build_deps(p)
    try:
        task = deps.store.task(task_id)
        assert task is not None
        assert (task.state, task.failure_class) == ("failed", "agent")
        assert task.errors and task.errors[-1]["reason"] == "unsafe_path"
        assert named in task.errors[-1]["detail"]
        assert (task.last_error or "").startswith("unsafe_path: ")
    finally:
        deps.store.close()
    line = next(ln for ln in status_text(p).splitlines() if ln.startswith(task_id + " "))
    assert "failed" in line and "unsafe_path" in line, line


@pytest.fixture
def copy_view(monkeypatch: pytest.MonkeyPatch) -> None:
    """The read-only copy (what a machine without bind mounts uses): the agent owns its files,
    so it can replace the view; a read-only bind mount would stop it before hatchctl is even
    asked to follow anything."""
    monkeypatch.setenv("HATCH_MOUNT_METHOD", "copy")


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
