"""A task's worktree on a host removed there (engine/remotecleanup.py, the loopback sshd): the
task's own repository there keeps the branch, and the worktree is made again from it; a link
inside the worktree, or at its place, is removed and never followed."""

from __future__ import annotations

from pathlib import Path

from hatchctl.cmds.common import build_deps
from hatchctl.engine import remotecleanup
from hatchctl.hosts.base import project_dir_name
from hatchctl.runtime.gitrepo import SAFE_GIT_CONFIG
from tests.conftest import git
from tests.hosts.sshd import SshServer
from tests.hosts.test_remote_run import host_config, remote_root
from tests.integration.conftest import Projects, projects

__all__ = ["projects", "remote_root"]  # the fixtures


def test_a_tasks_worktree_on_its_host_is_removed_and_its_branch_kept(
    projects: Projects, sshd: SshServer, remote_root: Path, tmp_path: Path
) -> None:
    project = projects.make({}, config=host_config(sshd, remote_root))
    git(project.root, "branch", "hatch/T-1", "main")
    deps = build_deps(project)
    remote = deps.remote
    host = remote.hosts["loop"]
    try:
        remote.prepare(host)  # then as a launch does: push, then the worktree made there
        url = host.git_url(remote.hatch_dir(host) / "repo.git")
        deps.scripts.run(
            "git/push_to_host.sh", str(project.root), url, "T-1", env=remote.git_env(host)
        )
        script = remote.hatch_dir(host) / "scripts" / "git" / "host_worktree.sh"
        there = remote_root / project_dir_name(project.root) / ".hatch"
        safe = [f"{k}={v}" for k, v in SAFE_GIT_CONFIG.items()]
        argv = ["env", *safe, "bash", str(script), str(there / "repo.git")]
        host.run([*argv, str(there / "worktrees" / "T-1"), "T-1"], timeout=30)
        outside = tmp_path / "outside"
        outside.mkdir()
        (outside / "keep.txt").write_text("not the worktree's\n")
        (there / "worktrees" / "T-1" / "escape").symlink_to(outside)  # an agent's doing
        (there / "worktrees" / "T-2").symlink_to(outside)  # another task's worktree: a link
        remote.health.sample(["loop"])  # its load per core, as the load thread takes it
        assert remote.health.loads["loop"] >= 0  # the 1-minute load per core there
        removed = remotecleanup.remove_worktrees(remote, "T-1", ["loop", "not-in-hatch-toml"])
        assert removed == ["loop"]
        assert not (there / "worktrees" / "T-1").exists()
        assert remotecleanup.remove_worktrees(remote, "T-1", ["loop"]) == ["loop"]  # gone: ok
        assert remotecleanup.remove_worktrees(remote, "T-2", ["loop"]) == ["loop"]
        assert not (there / "worktrees" / "T-2").is_symlink()
        assert (outside / "keep.txt").read_text() == "not the worktree's\n"  # never followed
        own = there / "tasks" / "T-1.git"  # the task's own repository there, kept
        assert git(own, "rev-parse", "hatch/T-1") == git(project.root, "rev-parse", "main")
        assert not (own / "index").exists()  # it described the worktree removed
        clone = there / "repo.git"
        assert git(clone, "worktree", "list", "--porcelain").count("worktree ") == 1  # bare only
        # made again at the branch (a later run of the task there)
        host.run([*argv, str(there / "worktrees" / "T-1"), "T-1"], timeout=30)
        assert git(there / "worktrees" / "T-1", "rev-parse", "HEAD") == git(
            own, "rev-parse", "HEAD"
        )
        assert git(there / "worktrees" / "T-1", "status", "--porcelain") == ""
    finally:
        remote.shutdown(kill_servers=False)
        deps.store.close()
