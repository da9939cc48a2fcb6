"""Process trees of agents: CPU sampling for idle detection and kill escalation.

An agent's processes are those carrying its ``HATCH_RUN_KEY`` in the environment and every
descendant of each. The agent runs under hatchctl.runtime.reaper, a child subreaper (which has
the key itself), so a grandchild that double-forks, clears its environment and calls ``setsid``
is re-parented to the reaper and is still a descendant. What a kill leaves alive is measured:
processes are identified by (pid, create time), never by a pid alone.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import time
from collections.abc import Callable, Iterable
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
    """Every process whose environment holds ``var=run_key`` (HATCH_RUN_KEY by default). One
    pass over /proc reading each environment as bytes (psutil's ``environ()`` parses every
    process's into a dict: a kill at 20 agents on a busy machine spent ~20 ms there)."""
    needle = b"\0" + f"{var}={run_key}".encode() + b"\0"
    me = os.getpid()
    found: list[psutil.Process] = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return found
    for name in names:
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = b"\0" + f.read()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if needle in env or env.endswith(needle[:-1]):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                found.append(psutil.Process(int(name)))
    return found


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def alive_since(pid: int | None, started_before: float) -> bool:
    """Alive, and the same process: created no later than ``started_before`` (guards pid reuse).
    Asked of every live run on every monitor pass: one read of ``/proc/<pid>/stat`` (its state
    and start time, as psutil reads them, which reads the file twice and more)."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc here (or not readable): psutil's own way
        try:
            p = psutil.Process(pid)
            return p.status() != psutil.STATUS_ZOMBIE and p.create_time() <= started_before + 1.0
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False
    fields = raw[raw.rfind(b")") + 2 :].split()  # after the name, which may hold anything
    if len(fields) < 20 or fields[0] in (b"Z", b"X"):
        return False
    return _boot_time() + int(fields[19]) / _TICK <= started_before + 1.0


@functools.cache
def _boot_time() -> float:
    return float(psutil.boot_time())


_TICK = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0


def parse_stat(raw: bytes, tick: float = _TICK) -> tuple[int, float] | None:
    """(ppid, user + system CPU seconds) from the text of one ``/proc/<pid>/stat`` (of this
    machine, or read on a host: ``tick`` is its clock ticks per second); None when it is not
    one. The command name may hold spaces and parentheses: fields are counted after its last
    ')'."""
    end = raw.rfind(b")")
    if end < 0:
        return None
    fields = raw[end + 2 :].split()
    if len(fields) < 13:
        return None
    try:  # after the name: state, ppid, ... utime (11), stime (12)
        return int(fields[1]), (int(fields[11]) + int(fields[12])) / tick
    except ValueError:
        return None


def children_of(table: dict[int, tuple[int, float]]) -> dict[int, list[int]]:
    """ppid -> its children, from a table of ``_proc_table``'s shape."""
    children: dict[int, list[int]] = {}
    for child, (ppid, _cpu) in table.items():
        children.setdefault(ppid, []).append(child)
    return children


def tree_seconds(
    table: dict[int, tuple[int, float]], children: dict[int, list[int]], pid: int
) -> float:
    """The CPU seconds of ``pid`` and every descendant of it in ``table`` (0 when it is not
    there)."""
    total, stack, seen = 0.0, [pid], set()
    while stack:
        p = stack.pop()
        if p in seen or p not in table:
            continue
        seen.add(p)
        total += table[p][1]
        stack.extend(children.get(p, ()))
    return total


def _proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (ppid, user + system CPU seconds) for every process, from one pass over /proc
    (one read of /proc/<pid>/stat each)."""
    table: dict[int, tuple[int, float]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return table
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                raw = f.read(4096)
        except OSError:
            continue  # gone meanwhile
        parsed = parse_stat(raw)
        if parsed is not None:
            table[int(name)] = parsed
    return table


def cpu_seconds_many(pids: Iterable[int]) -> dict[int, float]:
    """``cpu_seconds`` for several process trees at once: one pass over /proc for all of them
    (psutil's children() scans /proc once per tree: at 50 agents, 50 scans per sample)."""
    table = CpuTable(max_age=float("inf"))
    return {pid: table.seconds(pid) for pid in set(pids)}


class CpuTable:
    """``cpu_seconds`` for any number of trees from one /proc pass, reused for ``max_age``
    seconds: a supervisor pass over 50 quiet agents reads /proc once, not 50 times."""

    def __init__(self, max_age: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self.clock = clock
        self._at: float | None = None
        self._table: dict[int, tuple[int, float]] = {}
        self._children: dict[int, list[int]] = {}

    def seconds(self, pid: int) -> float:
        now = self.clock()
        if self._at is None or now - self._at > self.max_age:
            self._table = _proc_table()
            self._children = children_of(self._table)
            self._at = now
        return tree_seconds(self._table, self._children, pid)


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
    _signal_each(procs, sig)


def _signal_each(procs: list[psutil.Process], sig: int) -> None:
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            p.send_signal(sig)  # psutil refuses a pid that now belongs to another process


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


Ident = tuple[int, float]  # (pid, create_time): a process, not just a pid that may be reused


def _ident(p: psutil.Process) -> Ident | None:
    try:
        return (p.pid, p.create_time())
    except psutil.Error:
        return None


def still_running(procs: Iterable[Ident]) -> list[int]:
    """The pids of ``procs`` that are still running: a process with the same pid AND the same
    create time exists and is not a zombie. A reused pid or a zombie is not a survivor; a
    process we are not allowed to inspect is counted as one (it cannot be shown to be gone)."""
    found = []
    for pid, created in procs:
        try:
            p = psutil.Process(pid)
            if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                found.append(pid)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        except psutil.AccessDenied:
            found.append(pid)
    return sorted(set(found))


def agent_processes(run_key: str) -> dict[Ident, psutil.Process]:
    """The processes carrying ``HATCH_RUN_KEY=run_key`` and every descendant of each, from one
    pass over the process table. The descendants include the orphans re-parented to the run's
    reaper (hatchctl.runtime.reaper, a child subreaper): a grandchild that ran ``env -i setsid``
    lost the marker but not its place in the tree. The caller itself is never included."""
    me = os.getpid()
    kids: dict[int, list[psutil.Process]] = {}
    roots: list[psutil.Process] = []
    for p in psutil.process_iter(["ppid", "environ"]):
        if p.pid == me:
            continue
        ppid = p.info["ppid"]
        if ppid is not None:
            kids.setdefault(ppid, []).append(p)
        env = p.info["environ"]
        if env is not None and env.get(RUN_KEY_ENV) == run_key:
            roots.append(p)
    found: dict[Ident, psutil.Process] = {}
    todo = list(roots)
    while todo:
        p = todo.pop()
        ident = _ident(p)
        if ident is None or ident in found:
            continue
        found[ident] = p
        todo.extend(kids.get(p.pid, []))
    return found


def kill_agent(run_key: str, *, grace: float, settle: float = 2.0) -> KillReport:
    """Kill every process of the agent and report what was measured to survive.

    The agent's processes are those carrying its run key in their environment and all their
    descendants (see ``agent_processes``), each recorded as (pid, create time). SIGTERM (and
    SIGCONT, so stopped ones act on it) to them and their process groups, wait up to ``grace``,
    then freeze what is left with SIGSTOP, looking again until no new process appears (a frozen
    process cannot fork), and SIGKILL the lot; again while new ones turn up, for up to ``settle``
    seconds (what was frozen is killed even when that time is up: a slow machine never leaves a
    stopped process behind). ``survivors`` is measured afterwards: the recorded processes still
    running (same pid and create time, not a zombie)."""
    start = time.monotonic()
    report = KillReport()
    record = agent_processes(run_key)
    first = list(record.values())
    if first:
        _signal_all(first, signal.SIGTERM)
        _signal_each(first, signal.SIGCONT)
        gone, _ = _wait_gone(first, grace)
        report.exited_on_term = len(gone)
    deadline = time.monotonic() + settle
    killed: set[Ident] = set()
    while True:
        frozen: dict[Ident, psutil.Process] = {}
        for _ in range(20):  # SIGSTOP until a look finds nothing new (forks of the last moment)
            new = {
                i: p
                for i, p in {**record, **agent_processes(run_key)}.items()
                if i not in frozen and i[0] in still_running([i])
            }
            if not new:
                break
            _signal_each(list(new.values()), signal.SIGSTOP)
            frozen.update(new)
            record.update(new)
        if not frozen:
            break
        _signal_all(list(frozen.values()), signal.SIGKILL)  # never left frozen, even late
        killed.update(frozen)
        _wait_gone(list(frozen.values()), max(0.0, deadline - time.monotonic()))
        if time.monotonic() >= deadline:
            break
    report.found = len(record)
    report.killed = len(killed)
    report.survivors = still_running(record)
    report.seconds = time.monotonic() - start
    return report
