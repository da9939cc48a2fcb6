"""Process trees of agents: CPU sampling for idle detection and kill escalation.

An agent's processes are found two ways: the descendants of its pane's process, and every process
carrying its ``HATCH_RUN_KEY`` in the environment (which catches ``setsid`` grandchildren that
have left the tree).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field

import psutil

RUN_KEY_ENV = "HATCH_RUN_KEY"
JOB_KEY_ENV = "HATCH_JOB_KEY"  # carried by every process a supervisor's jobs start


def kill_orphaned_jobs(job_key: str) -> int:
    """SIGKILL what a previous (killed) supervisor's jobs left running: scripts, git, tests."""
    procs = [p for p in marked(job_key, JOB_KEY_ENV) if p.pid != os.getpid()]
    _signal_all(procs, signal.SIGKILL)
    _wait_gone(procs, 2.0)
    return len(procs)


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def marked(run_key: str, var: str = RUN_KEY_ENV) -> list[psutil.Process]:
    """Every process whose environment holds ``var=run_key`` (HATCH_RUN_KEY by default)."""
    found = []
    me = os.getpid()
    for p in psutil.process_iter():
        if p.pid == me:
            continue
        try:
            if p.environ().get(var) == run_key:
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    return found


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def alive_since(pid: int | None, started_before: float) -> bool:
    """Alive, and the same process: created no later than ``started_before`` (guards pid reuse)."""
    if not pid:
        return False
    try:
        p = psutil.Process(pid)
        return p.status() != psutil.STATUS_ZOMBIE and p.create_time() <= started_before + 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the whole tree under ``pid`` (0.0 when it is gone)."""
    total = 0.0
    for p in tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            t = p.cpu_times()
            total += t.user + t.system
    return total


@dataclass
class KillReport:
    found: int = 0
    exited_on_term: int = 0
    killed: int = 0
    survivors: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def escalated(self) -> bool:
        return self.killed > 0

    def as_dict(self) -> dict[str, object]:
        return {
            "found": self.found,
            "exited_on_term": self.exited_on_term,
            "sigkilled": self.killed,
            "survivors": self.survivors,
            "seconds": round(self.seconds, 3),
        }


def _signal_all(procs: list[psutil.Process], sig: int) -> None:
    groups = set()
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
            groups.add(os.getpgid(p.pid))
    for pgid in groups:
        if pgid not in (0, 1, os.getpgid(0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            p.send_signal(sig)


def _wait_gone(
    procs: list[psutil.Process], timeout: float
) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """Wait until every process has exited (a zombie counts as exited: it runs no code)."""
    deadline = time.monotonic() + timeout
    left = list(procs)
    while True:
        left = [p for p in left if alive(p.pid) and _same(p)]
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    gone = [p for p in procs if p not in left]
    return gone, left


def _same(p: psutil.Process) -> bool:
    """False when the pid now belongs to another process (pid reuse)."""
    try:
        return p.is_running()
    except psutil.Error:
        return False


def kill_agent(run_key: str, *, grace: float) -> KillReport:
    """SIGTERM to the process groups and processes of the agent, wait ``grace``, SIGKILL what is
    left, then check that nothing of it survives. The agent's processes are those carrying its
    run key in their environment, plus their descendants (a pid alone could have been reused)."""
    start = time.monotonic()
    report = KillReport()
    procs: dict[int, psutil.Process] = {}
    for root in marked(run_key):
        procs.update({p.pid: p for p in tree(root.pid)})
    procs.pop(os.getpid(), None)
    report.found = len(procs)
    if procs:
        _signal_all(list(procs.values()), signal.SIGTERM)
        gone, left = _wait_gone(list(procs.values()), grace)
        report.exited_on_term = len(gone)
        if left:
            _signal_all(left, signal.SIGKILL)
            report.killed = len(left)
            _, left = _wait_gone(left, 2.0)
    # A process may have forked while we were signalling: look again by marker.
    late = [p for p in marked(run_key) if p.pid != os.getpid()]
    if late:
        _signal_all(late, signal.SIGKILL)
        report.killed += len(late)
        _wait_gone(late, 2.0)
    report.survivors = sorted(p.pid for p in marked(run_key) if alive(p.pid))
    report.seconds = time.monotonic() - start
    return report
