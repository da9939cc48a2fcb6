"""A supervisor starting: the live runs on each SSH host against the host's pane list, as
engine/reconcile.py does for this machine's panes. A live agent is adopted (same run, same
attempt; its log copied here again as it grows, from what the last supervisor copied); an
unclaimed launch is cancelled there and relaunched; a pane of a run that is not
live is closed. A host that does not answer is left to the monitor (its grace period)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hatchctl.engine import lifecycle
from hatchctl.errors import HatchError
from hatchctl.hosts.ssh import SshHost
from hatchctl.state.rows import RunRow

if TYPE_CHECKING:
    from hatchctl.engine.remote import RemoteRuns


def reconcile(remote: RemoteRuns) -> tuple[list[int], list[int]]:
    """Returns (adopted, cancelled) run ids."""
    adopted: list[int] = []
    cancelled: list[int] = []
    live = [r for r in remote.deps.store.runs(live_only=True) if r.remote]
    for name in sorted({r.host or "" for r in live}):
        host = remote.hosts.get(name)
        if host is None:
            continue
        runs = [r for r in live if r.host == name]
        try:
            _host(remote, host, runs, adopted, cancelled)
        except HatchError as exc:
            remote.log.warning("host_reconcile_failed", host=name, error=str(exc)[:300])
    return adopted, cancelled


def _host(
    remote: RemoteRuns, host: SshHost, runs: list[RunRow], adopted: list[int], cancelled: list[int]
) -> None:
    store = remote.deps.store
    panes = remote.panes(host, remote.deps.clock())
    if panes is None:
        return
    remote.watch(host)
    tmux = remote.tmux(host)
    for run in runs:
        pane = panes.get(run.window_name)
        if run.state == "starting" and remote.cancel_ticket(host, run.id):
            if pane is not None:
                tmux.kill_pane(pane.pane_id)
            with store.tx() as tx:
                lifecycle.launch_interrupted(tx, run.id)
            cancelled.append(run.id)
        elif run.state == "starting":
            with store.tx() as tx:
                tx.transition_run(
                    run.id,
                    "starting",
                    "running",
                    running_at=run.started_at,
                    last_activity_at=tx.now,
                    data={"note": "adopted a launch on host " + host.name},
                )
            adopted.append(run.id)
            remote.follow_log(host, run)
        elif pane is not None:
            adopted.append(run.id)
            remote.follow_log(host, run)
    remote.close_strays(tmux, dict(panes))  # a pane outliving its run
    remote.forget_panes(host)
