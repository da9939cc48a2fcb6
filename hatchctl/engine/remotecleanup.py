"""A task's worktrees on the SSH hosts its runs used, removed once the task is done with them
(merged, forgotten, cleaned): ``git/host_remove_worktree.sh`` run there over the master
connection (a link at the worktree is removed, never followed; the host's clone keeps the
task's branch). Blocking and bounded (``script_timeout`` per host): meant for a job thread, so it
never touches the store; the caller names the hosts (the ``host`` of the task's runs)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from hatchctl.errors import HatchError
from hatchctl.runtime.gitrepo import SAFE_GIT_CONFIG

if TYPE_CHECKING:
    from hatchctl.engine.remote import RemoteRuns


def remove_worktrees(remote: RemoteRuns, task_id: str, hosts: Iterable[str]) -> list[str]:
    """Remove ``task_id``'s worktree on each of ``hosts``; the hosts it was removed from (a
    host gone from hatch.toml is skipped; one that fails is logged, ``remote_worktree_kept``,
    and left: its worktree stays under its root until the next cleanup)."""
    removed = []
    worktree = remote.deps.project.paths.worktree(task_id)
    for name in sorted(set(hosts)):
        host = remote.hosts.get(name)
        if host is None:
            continue
        try:
            remote.prepare(host)  # the script is there (once per process)
            script = remote.hatch_dir(host) / "scripts" / "git" / "host_remove_worktree.sh"
            repo, there = remote.hatch_dir(host) / "repo.git", remote.on_host(host, worktree)
            safe = [f"{k}={v}" for k, v in SAFE_GIT_CONFIG.items()]
            argv = ["env", *safe, "bash", str(script), str(repo), str(there), task_id]
            host.run(argv, timeout=float(remote.deps.limits.script_timeout))
        except HatchError as exc:
            remote.log.warning(
                "remote_worktree_kept", task_id=task_id, host=name, error=str(exc)[:300]
            )
            continue
        removed.append(name)
        remote.log.info("remote_worktree_removed", task_id=task_id, host=name)
    return removed
