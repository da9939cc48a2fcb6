"""Bringing a stopped remote run's results back, in two steps (as a local stop: the stop is
recorded first, then acted on).

``collect`` (before the stop is recorded): the stop file and the run's summary, as the host's
watcher shipped them on its stream (engine/remoteship.py: no call to the host at all) or, for
anything the stream did not carry whole, read over ssh (bounded reads of regular files); the
summary's mtime is put into this machine's clock from its age by the host's clock, so a host
whose clock is off does not make it look older than the run. The local summary, then the local
``.stop`` are written.

``bring_back`` (engine/remotecheck.settle, before anything uses the branch: monitor.after_stop,
right after the stop is recorded): starts the branch fetch (fetch_from_host.sh) and the copy of
the rest of the log in the background (``Pending``), once per stop collected, and never waits.
False while they run (started after the record: their threads took the interpreter from the
loop while it wrote and recorded the stop, ~1.5-3 ms of a host's stop latency): when
both are done, ``Pending`` puts the run's stop path on the supervisor's queue (``remote.sink``),
which checks the run again, as a stop file written then would. A host that does not answer (the
fetch timed out, or failed with the master connection gone) raises HostUnreachable (again next
pass); a fetch that failed with the link up (the agent broke its branch) is an event, and the
verification finds the commits it claims missing.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hatchctl.engine import remotefiles, remotesandbox
from hatchctl.engine.remoteship import SUMMARY_LIMIT, Shipped
from hatchctl.errors import CommandTimeout, HatchError, HostUnreachable, ScriptError
from hatchctl.hosts.ssh import SshHost
from hatchctl.state.rows import RunRow
from hatchctl.state.snapshot import write_atomic

if TYPE_CHECKING:
    from hatchctl.engine.remote import RemoteRuns


FETCH_RETRY = (0.2, 1.0)  # seconds before fetching again after git failed with the link up
GIT_FAILED = 3  # fetch_from_host.sh's exit code when git failed


@dataclass
class Results:
    """What one supervisor collected and brought back, by run id (in memory: a new supervisor
    fetches a stopped run's branch once more)."""

    collected: dict[int, str] = field(default_factory=dict)  # the stop's host mtime collected
    pending: dict[int, Pending] = field(default_factory=dict)  # fetch and log copy under way
    done: set[int] = field(default_factory=set)  # brought back since the last stop collected
    failing: dict[int, tuple[float, float]] = field(default_factory=dict)  # since, last try
    gone: dict[int, float] = field(default_factory=dict)  # its pane first seen gone


def collect(remote: RemoteRuns, run: RunRow) -> bool:
    """Write the local summary and ``.stop`` of the host's stop (see the module's docstring);
    False when the host has no new stop file for it."""
    root, results = remote.deps.project.root, remote.results
    host = remote.host(run)
    local_stop = root / run.stop_path
    start, began = time.monotonic(), time.time()
    shipped = _shipped_stop(remote, host, run)
    watch = remote.watches.get(host.name)
    queued = None if watch is None else watch.queued.take(remote.io_rel(run))
    if shipped is not None:
        mtime, stop_text = float(shipped.mtime), shipped.text()
    else:
        got = remote.read(host, remote.on_host(host, local_stop), remotefiles.STOP_LIMIT)
        if got is None:
            return False
        mtime, stop_text = got
    key = f"{mtime:.6f}"
    if results.collected.get(run.id) == key and local_stop.exists():
        return False
    ms = {"stop": time.monotonic() - start}
    local_summary = root / run.summary_path
    summary: tuple[float, str] | None = None
    if shipped is not None and shipped.summary is not None:
        summary = shipped.summary.mtime_here(), shipped.summary.text()
    elif shipped is None or not shipped.no_summary:  # not on the stream: asked
        there = remote.on_host(host, local_summary)
        timeout = float(remote.deps.limits.script_timeout)
        got_summary = remotefiles.read_stamped(host, there, SUMMARY_LIMIT + 1, timeout=timeout)
        summary = None if got_summary is None else (got_summary[1], got_summary[2])
    ms["summary"] = time.monotonic() - start - ms["stop"]
    wait(remote, run.id)  # the last stop's fetch, if any: one at a time per worktree
    # the fetch and log copy of this stop start once it is recorded (settle -> bring_back): their
    # threads started here took the interpreter from the loop while it recorded the stop
    results.done.discard(run.id)
    local_stop.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if summary is not None:
        write_copy(local_summary, summary[1].encode())
        os.utime(local_summary, (summary[0], summary[0]))
    write_copy(local_stop, stop_text.encode())  # last: the run is stopped from here on
    ms["write"] = time.monotonic() - start - sum(ms.values())  # (the last fetch waited for)
    results.collected[run.id] = key
    results.gone.pop(run.id, None)
    # when the stop went through each step (time.time(); "there": the host's clock when its
    # watcher shipped it): the parts of its latency (bench/bench_remote_stop.py)
    at = {"queued": queued, "collect": began}
    if shipped is not None:
        at.update(there=shipped.there, read=shipped.received)
    with remote.deps.store.tx() as tx:
        tx.event(
            "remote_stop_collected",
            task_id=run.task_id,
            run_id=run.id,
            data={
                "host": host.name,
                "summary": summary is not None,
                "via": "stream" if shipped is not None else "ssh",
                "ms": {k: round(v * 1000, 1) for k, v in ms.items()},  # the time each part took
                "at": {k: None if v is None else round(v, 6) for k, v in at.items()},
            },
        )
    return True


def write_copy(path: Path, data: bytes) -> None:
    """Write the local copy of a host's file as snapshot.write_atomic does (a temp file of
    this thread's own, 0600, never through a link; a rename) but without its fsync (3-5 ms
    each, on the way to the run's ``stopped``): the host keeps the original, and a supervisor
    started after a crash collects the stop again (``Results`` is in memory)."""
    write_atomic(path, data, durable=False)


def _shipped_stop(remote: RemoteRuns, host: SshHost, run: RunRow) -> Shipped | None:
    """The run's stop as the host's stream shipped it, when it is the one last listed."""
    watch = remote.watches.get(host.name)
    if watch is None:
        return None
    rel = remote.io_rel(run)
    shipped = watch.shipments.take(rel)
    if shipped is None or shipped.mtime != watch.reported(rel):
        return None
    return shipped


def wait(remote: RemoteRuns, run_id: int) -> None:
    pending = remote.results.pending.pop(run_id, None)
    if pending is not None:
        pending.join()


def bring_back(remote: RemoteRuns, run: RunRow) -> bool:
    """The run's branch fetched and the rest of its log copied, once per stop collected (see
    the module's docstring): False while under way (never waits); HostUnreachable when the host
    does not answer."""
    results = remote.results
    pending = results.pending.get(run.id)
    if pending is None:
        if run.id in results.done:
            return True
        pending = results.pending[run.id] = Pending(remote, run)
    if not pending.done():
        return False
    del results.pending[run.id]
    host = remote.host(run)
    error = pending.fetch_error
    if isinstance(error, CommandTimeout) or (
        isinstance(error, ScriptError) and error.returncode is None  # (scripts.run's timeout)
    ):  # a link that hangs: the host's fault, never the agent's (its branch is not broken)
        raise HostUnreachable(f"host {host.name}: fetching {pending.url}: {error}") from None
    if isinstance(error, ScriptError):
        if not host.master_alive():  # the link, not the repository: again next pass
            raise HostUnreachable(f"host {host.name}: fetching {pending.url} failed") from None
        # the host's branch is gone or broken (the agent's doing): the stop goes on, and
        # the verification finds the commits it claims missing
        with remote.deps.store.tx() as tx:
            tx.event(
                "remote_fetch_failed",
                task_id=run.task_id,
                run_id=run.id,
                data={"host": host.name, "error": str(error)[-500:]},
            )
    elif error is not None:
        raise error
    if pending.log_error is not None:
        raise pending.log_error
    results.done.add(run.id)
    remote.log.info(
        "remote_results_fetched",
        run_id=run.id,
        host=host.name,
        fetch_ms=round(pending.seconds["fetch"] * 1000, 1),
        log_ms=round(pending.seconds["log"] * 1000, 1),
    )
    return True


class Pending:
    """fetch_from_host.sh (a git fetch over the host's master connection into the task's
    worktree) and the copy of the rest of the run's log, each in its own thread, started at
    once; when both are done, the run's stop path is put on ``remote.sink`` (the supervisor's
    queue: ``bring_back`` is asked again)."""

    def __init__(self, remote: RemoteRuns, run: RunRow) -> None:
        self.remote, self.run_row = remote, run
        host = remote.host(run)
        # the task's own repository there: the one its agent could write (remotesandbox.py)
        self.url = host.git_url(remotesandbox.task_repo(remote, host, run.task_id))
        self.env = remote.git_env(host)
        self.fetch_error: HatchError | None = None
        self.log_error: HostUnreachable | None = None
        self.seconds = {"fetch": 0.0, "log": 0.0}
        self.wake = ("stop", str(remote.deps.project.root / run.stop_path))
        self._left = 2  # threads still running
        self._lock = threading.Lock()
        self._done = threading.Event()
        self.threads = [
            threading.Thread(target=self._fetch, name=f"fetch-{run.id}", daemon=True),
            threading.Thread(target=self._log, name=f"log-{run.id}", daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join()

    def done(self) -> bool:
        return self._done.is_set()

    def _ended(self) -> None:
        with self._lock:
            self._left -= 1
            if self._left:
                return
        self._done.set()
        self.remote.sink.put(self.wake)  # the supervisor checks the run again now

    def _fetch(self) -> None:
        start = time.monotonic()
        try:
            for pause in (*FETCH_RETRY, None):
                self.fetch_error = self._fetch_once()
                if pause is None or not self._worth_again(self.fetch_error):
                    break
                time.sleep(pause)
        except Exception as exc:  # (a bug) ended all the same: the run is not left waiting
            self.fetch_error = HatchError(f"fetch_from_host.sh: {exc!r}")
        finally:
            self.seconds["fetch"] = time.monotonic() - start
            self._ended()

    def _fetch_once(self) -> HatchError | None:
        deps, task_id = self.remote.deps, self.run_row.task_id
        worktree = deps.project.paths.worktree(task_id)
        try:
            deps.scripts.run(
                "git/fetch_from_host.sh", str(worktree), self.url, task_id, env=self.env
            )
        except HatchError as exc:
            return exc
        return None

    def _worth_again(self, error: HatchError | None) -> bool:
        """git failed (exit 3) with the link up: maybe a moment of this repository's own, so it
        is tried again before the agent's branch is doubted (another task's worktree half made
        here no longer is one: fetch_from_host.sh fetches into a scratch repository)."""
        if not isinstance(error, ScriptError) or error.returncode != GIT_FAILED:
            return False
        return self.remote.host(self.run_row).master_alive()

    def _log(self) -> None:
        start = time.monotonic()
        remote = self.remote
        try:
            remote.mirror_log(remote.host(self.run_row), self.run_row)
        except HostUnreachable as exc:
            self.log_error = exc
        finally:
            self.seconds["log"] = time.monotonic() - start
            self._ended()
