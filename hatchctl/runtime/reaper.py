"""``python -I -m hatchctl.runtime.reaper [--grace SECONDS] -- AGENT_ARGV...``: kill means every
descendant.

Start it with ``-I`` (or at least ``-P``): it runs outside the sandbox in the agent's worktree,
and plain ``python -m`` would import a worktree's own ``hatchctl/`` or ``os.py`` first. A launch
starts it cheaper still (engine/confinement.py reaper_prefix: ``-I -S -c``, no site, no runpy).

run_agent.sh runs the agent through this small parent. It makes itself a child subreaper
(``prctl(PR_SET_CHILD_SUBREAPER)``), so a grandchild that double-forks, clears its environment
(losing ``HATCH_RUN_KEY``) and calls ``setsid`` is re-parented to the reaper instead of init, and
stays a descendant the supervisor can find. Then:

* the agent is started as a plain child: same session and process group, inherited stdin, stdout
  and stderr, so a TUI agent keeps its controlling terminal and stays interactive in its pane;
* every orphan re-parented to the reaper is reaped;
* when the agent exits, whatever it left behind is killed (SIGTERM, ``--grace``, SIGKILL) and the
  reaper exits with the agent's status (128 + N when signal N killed it);
* SIGTERM or SIGHUP to the reaper kills the whole subtree the same way (its SIGKILL comes
  ``BACKSTOP`` seconds after the grace, leaving the supervisor's escalation the first go), then
  it exits with the agent's status (128 + the signal's number when the agent outlived it);
* other signals (SIGINT, SIGQUIT, SIGWINCH, SIGTSTP, SIGCONT, SIGUSR1, ...) are forwarded to the
  agent when a process sent them with kill(2). The terminal's own signals (Ctrl-C, a resize) go
  to the whole foreground process group, the agent included, so they are not sent twice; they are
  only forwarded if the agent moved to a process group of its own. A kill(2) of the reaper's whole
  process group reaches the agent directly as well as through the reaper (documented limitation).

Exit codes: the agent's own; 2 usage; 126 the agent cannot be executed; 127 it is not found.
Descendants are read from /proc (no psutil: the reaper lives as long as the agent, so it is kept
small); on systems without /proc psutil is imported when it is needed.

Standard library only, Python >= 3.8: on an SSH host, where hatchctl is not installed, this
file's code is copied beside the scripts and run by ``python3 -I -S FILE``
(engine/remotesandbox.py reaper_source, reaper_file).
"""

from __future__ import annotations

import os
import sys
import time

# What the reaper imports is paid again by every agent launch (20 launches: 20 starts), so it
# imports little: signal's C module without the module that wraps it in enums (``enum`` is
# a third of the reaper's imports); ``typing``, ``contextlib`` and ``math`` not at all.
TYPE_CHECKING = False  # typing's own constant would import typing
if TYPE_CHECKING:  # (the same functions and constants: signal.py re-exports _signal's)
    import signal
    from collections.abc import Iterable
else:
    try:
        import _signal as signal
    except ImportError:  # not CPython
        import signal

PR_SET_CHILD_SUBREAPER = 36
DEFAULT_GRACE = 5.0
KILL_TIMEOUT = 5.0  # after SIGKILL, give up waiting for processes stuck in the kernel
# Killed from outside (SIGTERM, SIGHUP), the reaper escalates to SIGKILL this much later than
# its grace: the supervisor's kill escalation, started at the same time with the same grace,
# does the SIGKILL itself and measures it (its report says what it had to SIGKILL); the
# reaper's SIGKILL is the backstop for a kill without one (tmux kill-pane, a manual kill).
BACKSTOP = 1.0
USAGE = "usage: python -I -m hatchctl.runtime.reaper [--grace SECONDS] -- AGENT_ARGV..."

KILLERS = {signal.SIGTERM, signal.SIGHUP}
FORWARDED = {
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGWINCH,
    signal.SIGTSTP,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGCONT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGALRM,
}
WAITED = {signal.SIGCHLD, *KILLERS, *FORWARDED}


def set_child_subreaper() -> bool:
    """Orphaned descendants are re-parented to this process instead of init (Linux >= 3.4)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _children_map() -> dict[int, list[int]]:
    """ppid -> pids of the live (non-zombie) processes, from one pass over /proc."""
    kids: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return _children_map_psutil()
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()  # the name in (...) may hold anything
        if len(fields) < 2 or fields[0] in (b"Z", b"X"):
            continue
        kids.setdefault(int(fields[1]), []).append(int(name))
    return kids


def _children_map_psutil() -> dict[int, list[int]]:
    import psutil

    kids: dict[int, list[int]] = {}
    for p in psutil.process_iter(["ppid", "status"]):
        if p.info["status"] != psutil.STATUS_ZOMBIE and p.info["ppid"] is not None:
            kids.setdefault(p.info["ppid"], []).append(p.pid)
    return kids


def descendants(root: int) -> list[int]:
    """Every live process whose parent chain leads to ``root`` (``root`` excluded)."""
    kids = _children_map()
    found: list[int] = []
    todo = [root]
    seen = {root}
    while todo:
        for pid in kids.get(todo.pop(), []):
            if pid not in seen:
                seen.add(pid)
                found.append(pid)
                todo.append(pid)
    return found


def _send(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):  # (no contextlib: see the imports)
            continue


class Reaper:
    def __init__(self, argv: list[str], grace: float) -> None:
        self.argv = argv
        self.grace = grace
        self.me = os.getpid()
        self.agent = 0
        self.status: int | None = None  # the agent's exit code once it was reaped

    def spawn(self, mask: Iterable[int]) -> int | None:
        """Start the agent; None when it started, else the exit code to leave with."""
        try:
            self.agent = os.posix_spawnp(
                self.argv[0],
                self.argv,
                os.environ,
                setsigmask=mask,  # the signal mask we were started with, not our blocked one
                setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),  # ignored by Python at start-up
            )
        except FileNotFoundError:
            print(f"reaper: {self.argv[0]}: command not found", file=sys.stderr, flush=True)
            return 127
        except OSError as exc:
            print(f"reaper: {self.argv[0]}: {exc.strerror}", file=sys.stderr, flush=True)
            return 126
        return None

    def reap(self) -> None:
        """Collect every exited child: the agent and the orphans re-parented to us."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.agent and self.status is None:  # (no waitstatus_to_exitcode: 3.8)
                signalled = os.WIFSIGNALED(status)
                self.status = 128 + os.WTERMSIG(status) if signalled else os.WEXITSTATUS(status)

    def forward(self, info: signal.struct_siginfo) -> None:
        sent_by_a_process = info.si_code <= 0  # SI_USER, SI_QUEUE, SI_TKILL: kill(2) and co.
        if sent_by_a_process and info.si_pid == self.agent:
            return  # the agent signalling its parent: do not echo it back
        if not sent_by_a_process:  # the terminal's: the foreground group, agent included, got it
            try:
                if os.getpgid(self.agent) == os.getpgrp():
                    return
            except ProcessLookupError:
                return
        _send([self.agent], info.si_signo)

    def kill_all(self, grace: float) -> None:
        """SIGTERM (and SIGCONT, for stopped ones) to every descendant, reaping while waiting up
        to ``grace``; then SIGKILL until none is left. Descendants forked meanwhile are
        signalled too."""
        signalled: set[int] = set()
        deadline = time.monotonic() + grace
        while True:
            self.reap()
            left = descendants(self.me)
            if not left:
                return
            new = [p for p in left if p not in signalled]
            _send(new, signal.SIGTERM)
            _send(new, signal.SIGCONT)
            signalled.update(new)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            signal.sigtimedwait({signal.SIGCHLD}, min(remaining, 0.05))
        deadline = time.monotonic() + KILL_TIMEOUT
        while time.monotonic() < deadline:
            _send(left, signal.SIGKILL)
            signal.sigtimedwait({signal.SIGCHLD}, 0.02)
            self.reap()
            left = descendants(self.me)
            if not left:
                return

    def run(self) -> int:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, WAITED)
        set_child_subreaper()
        failed = self.spawn(mask)
        if failed is not None:
            return failed
        while True:
            info = signal.sigwaitinfo(WAITED)
            sig = info.si_signo
            if sig == signal.SIGCHLD:
                self.reap()
                if self.status is not None:
                    self.kill_all(self.grace)
                    return self.status
            elif sig in KILLERS:
                self.kill_all(self.grace + BACKSTOP)
                self.reap()
                return self.status if self.status is not None else 128 + sig
            else:
                self.forward(info)


def parse(args: list[str]) -> tuple[float, list[str]] | str:
    """(grace, agent argv), or an error message."""
    grace = DEFAULT_GRACE
    i = 0
    while i < len(args) and args[i] != "--":
        arg = args[i]
        if arg == "--grace" and i + 1 < len(args):
            value, i = args[i + 1], i + 2
        elif arg.startswith("--grace="):
            value, i = arg.partition("=")[2], i + 1
        else:
            return f"unexpected argument {arg!r}"
        try:
            grace = float(value)
        except ValueError:
            return f"--grace wants a number of seconds, not {value!r}"
        if not 0 <= grace < float("inf"):  # (NaN compares false)
            return f"--grace wants a number of seconds, not {value!r}"
    argv = args[i + 1 :]
    if not argv:
        return "no agent command after --"
    return grace, argv


def main(args: list[str] | None = None) -> int:
    parsed = parse(sys.argv[1:] if args is None else args)
    if isinstance(parsed, str):
        print(f"reaper: {parsed}\n{USAGE}", file=sys.stderr, flush=True)
        return 2
    grace, argv = parsed
    return Reaper(argv, grace).run()


if __name__ == "__main__":
    sys.exit(main())
