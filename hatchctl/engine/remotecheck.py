"""The monitor's checks of a run on an SSH host (the local ones read psutil and the log's size,
which say nothing about another machine).

A reported stop is collected (engine/remote.py) before anything else; after that the run is
handled as a local one. While it runs: its run timeout and idle timeout as locally; its pane
looked up in the host's pane list (one call per host per second at most); a pane gone without
a stop is ``vanished`` (or ``never_started``), restarted by policy. A host that does not answer is
waited for: the link is retried (every call opens a new master connection when the old one
died) and the watcher reconnects by itself, so a live agent is simply found again, same run,
same attempt. Past ``[limits] host_grace`` the run ends as ``host_lost`` with no strike and no
restart counted, its task goes back to its role at once, and placement leaves the host out
until it answers again.

Idleness is the local rule on the size of the log on the host (listed by the host's watcher
every second): no CPU sample, and no screen check (the local log is a copy that follows the
host's about once a second).
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING

from hatchctl.engine import launcher, remotesandbox
from hatchctl.engine.deps import Deps
from hatchctl.errors import HatchError, HostUnreachable, ScriptError
from hatchctl.state.rows import RunRow
from hatchctl.state.snapshot import write_atomic
from hatchctl.state.store import Tx
from hatchctl.state.summary import MAX_AGENT_FILE

if TYPE_CHECKING:
    from hatchctl.engine.monitor import Monitor
    from hatchctl.engine.remote import RemoteRuns

STOP_LIMIT = 64 * 1024


def collect_reported(deps: Deps, run: RunRow) -> None:
    """Bring back a stop the host's watcher reported; a link down meanwhile: next pass."""
    if deps.remote.stop_reported(run):
        try:
            deps.remote.collect(run)
        except HostUnreachable as exc:
            deps.log.warning("remote_collect_deferred", run_id=run.id, error=str(exc)[:300])


def check_active(monitor: Monitor, run: RunRow, now: float) -> None:
    deps, lim = monitor.deps, monitor.deps.limits
    started = run.running_at or run.started_at
    if monitor.past_run_timeout(run, now, started):
        return
    remote = deps.remote
    alive = remote.pane_alive(run, now)
    if alive is None:
        since = remote.unreachable_since.get(run.host or "", now)
        if now - since >= lim.host_grace:
            host_lost(deps, run, now - since)
        return
    if alive:  # no output for idle_timeout: as locally (the size is the watcher's)
        monitor._check_idle(run, now, started)
        return
    try:
        remote.collect(run)  # the wrapper writes .stop just before its pane closes
        sig = monitor._stop_signature(run)
        stopped = sig is not None and sig != run.stop_seen
        claimed = stopped or remote.claimed(remote.host(run), run.id)
    except HostUnreachable:
        return  # the pane list was read, then the link dropped: the grace period applies
    if stopped and sig is not None:
        monitor.on_stop(run, sig)
        return
    reason = "vanished" if claimed else "never_started"
    detail = f"the agent's pane on host {run.host} is gone and it wrote no .stop file"
    monitor.restart(run, reason, detail)


def host_lost(deps: Deps, run: RunRow, seconds: float) -> None:
    """The run's host has not answered for ``seconds``: the run ends (no strike, no restart
    counted) and its task takes the same role again, placed elsewhere."""
    host = run.host or ""
    deps.remote.down.add(host)
    detail = f"host {host} unreachable for {seconds:.1f}s"

    def requeue(tx: Tx) -> None:
        tx.update_task(
            run.task_id,
            phase="backoff",
            resume_phase=run.role,
            next_retry_at=tx.now,
            pane_id=None,
            last_error=f"host_lost: {detail}",
        )
        tx.event("host_lost", task_id=run.task_id, run_id=run.id, data={"host": host})

    launcher.end_run(deps, run, "crashed", "host_lost", data={"detail": detail}, then=requeue)
    deps.log.warning("host_lost", task_id=run.task_id, run_id=run.id, host=host)


def collect(remote: RemoteRuns, run: RunRow) -> bool:
    """Bring a stopped run's results back: the stop file and the summary (bounded reads of
    regular files, the summary's mtime kept), the task's branch fetched into the local worktree
    (while the summary and the rest of the log are read), the local ``.stop`` written last.
    False when the host has no new stop file for it."""
    deps, root = remote.deps, remote.deps.project.root
    host = remote.host(run)
    local_stop = root / run.stop_path
    start = time.monotonic()
    got = remote.read(host, remote.on_host(host, local_stop), STOP_LIMIT)
    if got is None:
        return False
    mtime, stop_text = got
    key = f"{mtime:.6f}"
    if remote.collected.get(run.id) == key and local_stop.exists():
        return False
    ms = {"stop": time.monotonic() - start}
    fetch = _Fetch(remote, run)
    fetch.start()
    try:
        local_summary = root / run.summary_path
        summary = remote.read(host, remote.on_host(host, local_summary), MAX_AGENT_FILE + 1)
        ms["summary"] = time.monotonic() - start - sum(ms.values())
        remote.mirror_log(host, run)
        ms["log"] = time.monotonic() - start - sum(ms.values())
    finally:
        fetch.join()
    ms["fetch"] = fetch.seconds
    if isinstance(fetch.error, ScriptError):
        if not host.master_alive():  # the link, not the repository: again next pass
            raise HostUnreachable(f"host {host.name}: fetching {fetch.url} failed") from None
        # the host's branch is gone or broken (the agent's doing): the stop goes on, and
        # the verification finds the commits it claims missing
        with deps.store.tx() as tx:
            tx.event(
                "remote_fetch_failed",
                task_id=run.task_id,
                run_id=run.id,
                data={"host": host.name, "error": str(fetch.error)[-500:]},
            )
    elif fetch.error is not None:
        raise fetch.error
    local_stop.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if summary is not None:
        write_atomic(local_summary, summary[1].encode())
        os.utime(local_summary, (summary[0], summary[0]))
    write_atomic(local_stop, stop_text.encode())  # last: the run is stopped from here on
    remote.collected[run.id] = key
    with remote.deps.store.tx() as tx:
        tx.event(
            "remote_stop_collected",
            task_id=run.task_id,
            run_id=run.id,
            data={
                "host": host.name,
                "summary": summary is not None,
                "ms": {k: round(v * 1000, 1) for k, v in ms.items()},  # the time each part took
            },
        )
    return True


class _Fetch(threading.Thread):
    """fetch_from_host.sh (a git fetch over the host's master connection into the task's
    worktree) beside the other copies of a collect: its own process, waited for."""

    def __init__(self, remote: RemoteRuns, run: RunRow) -> None:
        super().__init__(name=f"fetch-{run.id}", daemon=True)
        self.remote, self.run_row = remote, run
        host = remote.host(run)
        # the task's own repository there: the one its agent could write (remotesandbox.py)
        self.url = host.git_url(remotesandbox.task_repo(remote, host, run.task_id))
        self.env = remote.git_env(host)
        self.error: HatchError | None = None
        self.seconds = 0.0

    def run(self) -> None:
        start = time.monotonic()
        deps, task_id = self.remote.deps, self.run_row.task_id
        worktree = deps.project.paths.worktree(task_id)
        try:
            deps.scripts.run(
                "git/fetch_from_host.sh", str(worktree), self.url, task_id, env=self.env
            )
        except HatchError as exc:
            self.error = exc
        self.seconds = time.monotonic() - start
