"""A task's worktrees on the SSH hosts its runs used, removed once the task is done with them
(merged, forgotten, cleaned): ``git/host_remove_worktree.sh`` run there over the master
connection (a link at the worktree is removed, never followed; the task's own repository there,
``tasks/<ID>.git``, keeps its branch). Blocking and bounded (``script_timeout`` per host): meant
for a job thread, so it never touches the store; the caller names the hosts (the ``host`` of the
task's runs)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from hatchctl.engine import remotefiles
from hatchctl.errors import HatchError

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
            hatch = remote.hatch_dir(host)
            there = [str(hatch / "repo.git"), str(remote.on_host(host, worktree)), task_id]
            timeout = float(remote.deps.limits.script_timeout)
            remotefiles.script(host, hatch, "git/host_remove_worktree.sh", *there, timeout=timeout)
        except HatchError as exc:
            remote.log.warning(
                "remote_worktree_kept", task_id=task_id, host=name, error=str(exc)[:300]
            )
            continue
        removed.append(name)
        remote.log.info("remote_worktree_removed", task_id=task_id, host=name)
    return removed
