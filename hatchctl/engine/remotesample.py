"""What the monitor looks at on a host besides a run's log size: its pane's screen and its
process tree's CPU, the same checks a local run gets (engine/activity.py, engine/observe.py).

Screen: the run's pane is found by its window name in the host's pane list (the one the
monitor reads each second, engine/remote.py) and captured by the host's tmux over the master
connection, never by the row's pane id on this machine's tmux server (a host's pane ids are
its own: ``%3`` there is another agent here). The loop never waits for it: the capture runs in
a thread (one at a time per run, bounded by ``[limits] tmux_timeout``), wakes the loop when it
lands, and the check that asked for it (a stall's screen check, a printing agent's known
failure) acts on that later pass. When the host does not answer, the end of the local copy of
its log is read instead, and a stall's screen is captured again (at most every RETRY s) until
the host answers.

CPU: in rounds, one per host at a time and at most one every ``every`` seconds, each covering
every quiet run there: a thread runs one command on the host, ``grep`` printing every
``/proc/<pid>/stat`` (and ``/proc/uptime``, the host's clock), each line after the name of its
file; it is parsed here with psinfo's parser and each run's tree is summed from the pane's pid
the pane list gives. The loop never waits for it: a round's samples are taken on a later pass.
A host that does not answer gives no sample (neither idle nor busy). The host is read as
untrusted: its output is bounded; a record counts only under its own file's name (the pid the
kernel gives), so a process cannot pass for another one by putting a newline and a pid in its
name.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from hatchctl.engine.flights import Flights
from hatchctl.errors import HatchError
from hatchctl.runtime import psinfo
from hatchctl.state.rows import RunRow

if TYPE_CHECKING:
    from hatchctl.engine.remote import RemoteRuns
    from hatchctl.hosts.ssh import SshHost
    from hatchctl.runtime.tmux import Tmux

SCREEN_LINES = 60
MAX_AGE = 5.0  # seconds a landed capture serves the check that asked for it
RETRY = 2.0  # seconds before a run's capture that failed is tried again
TABLE_LIMIT = 8 * 1024 * 1024  # bytes of a host's process table read in one round
# the host's clock ticks, then /proc/uptime and every /proc/<pid>/stat, each line prefixed by
# its file's name (-H; -a: a name with bytes that are not text is still printed as text)
TABLE_SCRIPT = (
    f"getconf CLK_TCK; cd /proc && LC_ALL=C grep -aH '' uptime [0-9]*/stat | head -c {TABLE_LIMIT}"
)

Table = dict[int, tuple[int, float]]  # pid -> (ppid, CPU seconds), as psinfo's


@dataclass(frozen=True)
class Capture:
    """A run's pane as captured on its host: ``text`` None when the host did not answer in
    time or the pane is not listed there (then ``settled``: it is gone, or its host's pane list
    is not read: the local copy of the log is all there is; not settled: looked at again)."""

    text: str | None
    settled: bool
    at: float = 0.0  # time.monotonic() when it landed


class Screens:
    """Host panes captured off the loop (see the module): one capture at a time per run, in a
    thread bounded by ``[limits] tmux_timeout``; ``look`` takes a capture landed since the
    last look (a later pass), else starts one and says "not yet". A capture that failed is not
    tried again for the run before RETRY seconds."""

    def __init__(self, remote: RemoteRuns) -> None:
        self.remote = remote
        self.lock = threading.Lock()
        self.flights: Flights[int] = Flights("screen")  # run id -> its capture under way
        self.landed: dict[int, Capture] = {}
        self.failed_at: dict[int, float] = {}  # run id -> when its last capture failed

    def look(self, run: RunRow) -> Capture | None:
        """The run's screen landed since the last look (at most MAX_AGE old), else None: a
        capture is under way (started now when none runs)."""
        now = time.monotonic()
        with self.lock:
            got = self.landed.pop(run.id, None)
            if got is not None and now - got.at <= MAX_AGE:
                return got
            if now - self.failed_at.get(run.id, -1e9) < RETRY:
                return None
        if not self.flights.idle(run.id):
            return None
        pane = self.remote.pane(run)  # the pane list as last read (on the loop)
        if pane is None:
            return Capture(None, settled=True, at=now)
        host = self.remote.host(run)
        tmux = self.remote.tmux(host)
        self.flights.start(run.id, partial(self._capture, run.id, host.name, tmux, pane.pane_id))
        return None

    def _capture(self, run_id: int, host: str, tmux: Tmux, pane_id: str) -> None:
        try:
            text: str | None = tmux.capture(pane_id, SCREEN_LINES)
        except HatchError as exc:  # unreachable, timed out, the pane gone meanwhile
            self.remote.log.info("host_screen_unread", host=host, error=str(exc)[:300])
            text = None
        with self.lock:
            if self.flights.closed:
                return
            self.landed[run_id] = Capture(text, text is not None, time.monotonic())
            if text is None:
                self.failed_at[run_id] = time.monotonic()
            else:
                self.failed_at.pop(run_id, None)
        self.remote.sink.put(("remote", host))  # the check that asked acts on the next pass

    def close(self) -> None:
        """No capture from now on; the ones under way waited for (bounded by their timeout)."""
        self.flights.close()


def parse_table(out: bytes) -> tuple[float, Table] | None:
    """(the host's uptime, its process table) from TABLE_SCRIPT's output; None when it is not
    whole (cut at TABLE_LIMIT, or no clock)."""
    if len(out) >= TABLE_LIMIT:
        return None
    lines = out.split(b"\n")
    tick = 100.0  # Linux's USER_HZ everywhere but on a few old architectures
    if lines[0].isdigit() and int(lines[0]) > 0:
        tick, lines = float(lines[0]), lines[1:]
    uptime: float | None = None
    table: Table = {}
    twice: set[int] = set()
    for line in lines:
        name, sep, record = line.partition(b":")  # "uptime" or "<pid>/stat"
        if not sep:
            continue
        if name == b"uptime":
            try:
                uptime = float(record.split()[0])
            except (IndexError, ValueError):
                return None
            continue
        pid = name.removesuffix(b"/stat")
        if pid == name or not pid.isdigit() or not record.startswith(pid + b" ("):
            continue  # a piece of a name with a newline in it, continued on its own line
        parsed = psinfo.parse_stat(record, tick)
        if parsed is None:
            continue
        if int(pid) in table:
            twice.add(int(pid))
        table[int(pid)] = parsed
    for pid_ in twice:  # two records under one file's name: trust neither
        table.pop(pid_)
    return None if uptime is None else (uptime, table)


@dataclass(frozen=True)
class Sample:
    pid: int  # the pane's pid on the host
    cpu: float  # CPU seconds of its process tree
    clock: float  # the host's uptime when it was read


class CpuSamples:
    """The CPU of quiet runs on each host, sampled in rounds off the loop (see the module)."""

    def __init__(self, remote: RemoteRuns) -> None:
        self.remote = remote
        self.lock = threading.Lock()
        self.quiet: dict[str, dict[int, tuple[int, float]]] = {}  # host -> run -> (pid, seen)
        self.latest: dict[int, Sample] = {}  # run id -> its newest sample, not taken yet
        self.rounds: Flights[str] = Flights("cpu")  # host -> its round under way
        self.started: dict[str, float] = {}  # host -> when its last round started

    def want(self, run: RunRow, now: float, every: float) -> None:
        """``run`` is quiet: its pane's tree is sampled in its host's next round, started now
        when none runs there and the last one started ``every`` seconds ago or more."""
        pane = self.remote.pane(run)
        if pane is None:
            return
        host = self.remote.host(run)
        with self.lock:
            quiet = self.quiet.setdefault(host.name, {})
            quiet[run.id] = (pane.pid, now)
            if not self.rounds.idle(host.name) or now - self.started.get(host.name, -1e9) < every:
                return
            for run_id in [r for r, (_, seen) in quiet.items() if now - seen > 2 * every + 1]:
                del quiet[run_id]  # no longer quiet, or ended
                self.latest.pop(run_id, None)
            pids = {run_id: pid for run_id, (pid, _) in quiet.items()}
            if self.rounds.start(host.name, partial(self._round, host, pids)):
                self.started[host.name] = now

    def forget(self, run: RunRow) -> None:
        """``run`` is active (or gone): left out of the next rounds."""
        with self.lock:
            self.quiet.get(run.host or "", {}).pop(run.id, None)
            self.latest.pop(run.id, None)

    def take(self, run_id: int) -> Sample | None:
        """The run's sample of a round finished since the last call, if any."""
        with self.lock:
            return self.latest.pop(run_id, None)

    def _round(self, host: SshHost, pids: dict[int, int]) -> None:
        timeout = float(self.remote.deps.limits.tmux_timeout)
        try:
            code, out = host.run_bytes(["sh", "-c", TABLE_SCRIPT], timeout=timeout)
        except HatchError as exc:  # no sample: the pane list says whether the host is there
            self.remote.log.info("host_cpu_unread", host=host.name, error=str(exc)[:300])
            return
        parsed = parse_table(out) if code == 0 else None
        if parsed is None:
            self.remote.log.info("host_cpu_unread", host=host.name, exit=code, size=len(out))
            return
        clock, table = parsed
        children = psinfo.children_of(table)
        found = {
            run_id: Sample(pid, psinfo.tree_seconds(table, children, pid), clock)
            for run_id, pid in pids.items()
            if pid in table
        }
        with self.lock:
            if not self.rounds.closed:
                self.latest.update(found)

    def close(self) -> None:
        """No round from now on; the ones under way waited for (bounded by their timeout)."""
        self.rounds.close()
