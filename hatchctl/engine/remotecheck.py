"""The monitor's checks of a run on an SSH host (the local ones read psutil and the log's size,
which say nothing about another machine).

A reported stop is collected (engine/remotecollect.py) before anything else and recorded at
once; its branch and log are brought back before it is acted on (``settle``, off the loop: the
loop is woken when they are here); after that the run is handled as a local one. While it
runs: its run timeout and idle timeout as locally; its pane looked up in the host's pane list
(listed in a thread, one call per host per second at most: a frozen host never holds the loop;
a listing that times out counts as the host not answering); a pane gone without a stop is
``vanished`` (or
``never_started``), restarted by policy. A host that does not answer is waited for: the link
is retried (every call opens a new master connection when the old one died) and the watcher
reconnects by itself, so a live agent is simply found again, same run, same attempt. Past
``[limits] host_grace`` the run ends as ``host_lost`` with no strike and no restart counted,
its task goes back to its role at once, and placement leaves the host out until it answers
again. A fetch of the branch that times out is the host's fault (HostUnreachable), never the
agent's.

Idleness is the local rule (engine/activity.py): the size of the log on the host (listed by the
host's watcher every second), else the CPU of the pane's process tree there, sampled while the
log is quiet in one command per host per round, in a thread (the loop takes a round's result on
a later pass and never waits for it; a host that does not answer gives no sample). The screen
check of a quiet agent (a prompt it waits at, a known failure) reads the host's pane, found by
its window name in the host's pane list and captured there, never this machine's tmux server;
the end of the local copy of its log when the host does not answer (engine/remotesample.py).
The capture runs in a thread, as the CPU rounds do: the check acts on the pass after it lands.
A Notification (the agent waits for the user) written on the host is reported by its watcher
and read off the loop (engine/remotesignals.py), then recorded as a local one.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from hatchctl.engine import observe, remotecollect, runend
from hatchctl.engine.deps import Deps
from hatchctl.errors import HostUnreachable
from hatchctl.state.rows import RunRow
from hatchctl.state.store import Tx

if TYPE_CHECKING:
    from hatchctl.engine.monitor import Monitor

UNREACHABLE_RETRY = 2.0  # seconds between tries to bring a stopped run's branch back
GONE_WAIT = 1.0  # seconds a run's pane may be gone before its stop is read over ssh


def settle(deps: Deps, run: RunRow) -> bool:
    """Before a stopped remote run is acted on: its branch fetched and its log copied
    (remotecollect.bring_back, in threads: never waited for here). False while they run (the
    supervisor is woken when they are done) or while its host does not answer (tried again at
    most every UNREACHABLE_RETRY s); past ``[limits] host_grace`` the run ends ``host_lost``."""
    remote, now = deps.remote, time.monotonic()
    failing = remote.results.failing
    since, last = failing.get(run.id, (now, 0.0))
    if run.id not in remote.results.pending and now - last < UNREACHABLE_RETRY:
        return False
    try:
        if not remotecollect.bring_back(remote, run):
            return False
    except HostUnreachable as exc:
        failing[run.id] = (since, now)
        deps.log.warning("remote_fetch_deferred", run_id=run.id, error=str(exc)[:300])
        if now - since >= deps.limits.host_grace:
            failing.pop(run.id, None)
            host_lost(deps, run, now - since)
        return False
    failing.pop(run.id, None)
    return True


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
        run = check_waiting(monitor, run)
        monitor._check_idle(run, now, started)
        return
    if _stop_on_its_way(deps, run, now):
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


def check_waiting(monitor: Monitor, run: RunRow) -> RunRow:
    """A Notification file (``<stop>.wait``) the run's host's watcher reported, once read off
    the loop (engine/remotesignals.py): checked and recorded as a local one (its run's token,
    else ``forged_signal``; event ``agent_waiting``). Returns the run as it is now."""
    deps = monitor.deps
    got = deps.remote.waits.take(run)
    if got is None or not observe.wait_is_new(run, got[0]):
        return run
    said = observe.wait_message(deps, run, got[1])
    if isinstance(said, bool):  # not whole, or forged (recorded)
        return run
    return observe.mark_waiting(deps, run, got[0], said, monitor._log_size(run))


def _stop_on_its_way(deps: Deps, run: RunRow, now: float) -> bool:
    """The pane is gone and the host's stream is up: the stop its wrapper wrote just before is
    on its way with its content (no ssh call for it); waited for up to GONE_WAIT s."""
    watch, gone = deps.remote.watches.get(run.host or ""), deps.remote.results.gone
    if watch is None or not watch.connected.is_set():
        return False
    if now - gone.setdefault(run.id, now) < GONE_WAIT:
        return True
    gone.pop(run.id, None)
    return False


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

    runend.end_run(deps, run, "crashed", "host_lost", data={"detail": detail}, then=requeue)
    deps.log.warning("host_lost", task_id=run.task_id, run_id=run.id, host=host)
