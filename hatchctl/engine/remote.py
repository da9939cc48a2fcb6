"""Runs on SSH hosts: launch, watch, collect, kill, adopt. See docs/scaling.md.

The controller stays the truth. On a host, the project lives under ``ROOT/<project>-<key>/``
(SshHost.map_path): ``.hatch/repo.git`` a bare clone, ``tasks/<ID>.git`` each task's own
repository (its objects borrowed from the clone), ``.hatch/scripts`` the scripts, and every
``.hatch/`` path of a run (worktree, prompt, exchange directory, log, tickets) at the same place
relative to it as on the controller.

Launch (engine/remotelaunch.py, in a job as a local pane is opened): the task's branch is
pushed to the clone (push_to_host.sh, git over the host's master connection), host_worktree.sh
makes the task's own repository and worktree there, the spec, prompt and handover are copied,
and the wrapper run_agent.sh starts in the host's own tmux server (``<socket>-<host>``) waiting
for its ticket, written last by the loop, as locally; the agent under bwrap there when
``[agents.<role>] sandbox`` and the host allow (engine/remotesandbox.py).

Completion: the host's watcher stream (engine/remotewatch.py) reports the run's ``.stop`` with
its content and the summary's (remoteship.py; else read over ssh): written here, the stop is
recorded at once; the task's branch is fetched back (fetch_from_host.sh) and the rest of the log
copied meanwhile, waited for before the verification uses them (engine/remotecollect.py): from
there the run is handled as a local one (verification, QA, merge on the controller).

Logs: while a run lives, its log on the host is copied to its local log as it grows (the
watcher lists the sizes once a second; remotefiles.LogMirror appends what is new, bounded), so
``hatchctl logs`` and the control room's live tail show a remote agent's output as it runs.

Activity: a quiet run's process tree CPU is sampled on its host and its screen captured there
(engine/remotesample.py), as a local run's are here.

Everything from the host is untrusted: paths are derived from the run's row, never from what
the host prints; sizes are bounded; the stop file must carry the run's token.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from hatchctl.engine import (
    remoteadopt,
    remotecollect,
    remotefiles,
    remotesample,
    remotesandbox,
    remotesignals,
)
from hatchctl.engine.remotefiles import LogMirror
from hatchctl.engine.remotehealth import HostHealth
from hatchctl.engine.remotewatch import HostWatch
from hatchctl.errors import HatchError, HostError, HostUnreachable, TmuxServerDead
from hatchctl.hosts import build_hosts
from hatchctl.hosts.attach import host_socket
from hatchctl.hosts.ssh import SshHost
from hatchctl.runtime import psinfo
from hatchctl.runtime.tmux import AGENT_SESSION, Pane, Tmux
from hatchctl.state.rows import RunRow

if TYPE_CHECKING:
    from hatchctl.engine.deps import Deps

HOST_SCRIPTS = (
    "lib.sh",
    "agent/run_agent.sh",
    "git/host_worktree.sh",
    "git/host_remove_worktree.sh",
)
PANES_MAX_AGE = 1.0  # seconds a host's pane list serves the monitor
UNREACHABLE_RETRY = 2.0  # seconds between probes of a host that did not answer


class RemoteRuns:
    """The SSH hosts of one supervisor (or client) and what it knows about them."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.hosts: dict[str, SshHost] = {
            h.name: h for h in build_hosts(deps.project) if isinstance(h, SshHost)
        }
        self.ready: set[str] = set()
        self.down: set[str] = set()  # declared lost: nothing is placed there until it answers
        self.unreachable_since: dict[str, float] = {}
        self._probe_at: dict[str, float] = {}
        self._listing: dict[str, _Listing] = {}  # host -> its pane listing under way
        self._generation: dict[str, int] = {}  # host -> forget_panes calls (stale listings)
        self._panes: dict[str, dict[str, Pane]] = {}
        self.results = remotecollect.Results()  # stops collected, branches fetched
        self.watches: dict[str, HostWatch] = {}
        self.mirrors = {n: LogMirror(h, timeout=self._timeout()) for n, h in self.hosts.items()}
        self.sink: queue.Queue[tuple[str, str]] = queue.Queue()
        self.log = deps.log.bind(component="remote")
        self.health = HostHealth(deps, self.hosts)  # drains and load (engine/remotehealth.py)
        self.sandboxes = remotesandbox.HostSandboxes(self)  # bwrap there (remotesandbox.py)
        # one launch at a time opens its pane on a host (its tmux server, clone and worktrees
        # are shared): engine/remotelaunch.py
        self.opening = {name: threading.Lock() for name in self.hosts}
        self.samples = remotesample.CpuSamples(self)  # its agents' CPU (remotesample.py)
        self.screens = remotesample.Screens(self)  # off the loop too: the panes' screens, and
        self.waits = remotesignals.WaitReads(self)  # the hosts' Notification files

    # -- layout ----------------------------------------------------------------------------
    def host(self, run: RunRow) -> SshHost:
        host = self.hosts.get(run.host or "")
        if host is None:
            raise HostError(f"run {run.id} is on host {run.host!r}, no longer in hatch.toml")
        return host

    def base(self, host: SshHost) -> PurePosixPath:
        return host.project_root_on_host(self.deps.project.root)

    def on_host(self, host: SshHost, path: Path) -> PurePosixPath:
        return host.map_path(self.deps.project.root, path)

    def hatch_dir(self, host: SshHost) -> PurePosixPath:
        return self.base(host) / ".hatch"

    def tmux(self, host: SshHost) -> Tmux:
        """The host's tmux server of this project: its own socket name (on a loopback host the
        controller's server is a different one)."""
        deps = self.deps
        socket = host_socket(deps.tmux.socket, host.name)
        return host.tmux(socket, timeout=float(deps.limits.tmux_timeout), tag=deps.tmux.tag)

    def git_env(self, host: SshHost) -> dict[str, str]:
        return {"GIT_SSH_COMMAND": host.git_ssh_command(), "GIT_TERMINAL_PROMPT": "0"}

    def _timeout(self) -> float:
        return float(self.deps.limits.script_timeout)

    def sh(self, host: SshHost, script: str, *args: str, input_text: str | None = None) -> int:
        return remotefiles.sh(host, script, *args, timeout=self._timeout(), input_text=input_text)

    def put(self, host: SshHost, path: PurePosixPath, text: str, mode: str = "600") -> None:
        remotefiles.put(host, path, text, timeout=self._timeout(), mode=mode)

    def read(
        self, host: SshHost, path: PurePosixPath, limit: int, *, end: bool = False
    ) -> tuple[float, str] | None:
        return remotefiles.read(host, path, limit, timeout=self._timeout(), end=end)

    def prepare(self, host: SshHost) -> None:
        """The project's directories, bare clone and scripts on the host (once per process)."""
        if host.name in self.ready:
            return
        if self.sh(host, remotefiles.PREPARE, str(self.base(host))) != 0:
            raise HostError(f"host {host.name}: cannot prepare {self.base(host)}")
        scripts = self.deps.scripts
        for name in HOST_SCRIPTS:
            text = (scripts.root / name).read_text(encoding="utf-8")
            self.put(host, self.hatch_dir(host) / "scripts" / name, text, "700")
        reaper = remotesandbox.reaper_source()  # (runtime/reaper.py: hosts have no hatchctl)
        self.put(host, remotesandbox.reaper_file(self, host), reaper, "600")
        self.ready.add(host.name)
        self.sandboxes.forget(host.name)  # asked again: the host may be another machine now
        self.log.info("host_prepared", host=host.name, base=str(self.base(host)))

    def usable(self, host: SshHost, role: str | None = None) -> bool:
        """``host`` prepared (and able to make the sandbox ``role``'s agent requires), or its
        failure counted against it (engine/remotehealth.py, remotesandbox.py)."""
        return self.health.usable(host, self.sandboxes.preparer(role))

    # -- tickets ---------------------------------------------------------------------------
    def cancel_ticket(self, host: SshHost, run_id: int) -> bool:
        """Make sure the run never starts on the host; False when its agent claimed it."""
        return (
            self.sh(host, remotefiles.CANCEL, str(self.hatch_dir(host) / "runs" / str(run_id))) == 0
        )

    def claimed(self, host: SshHost, run_id: int) -> bool:
        path = self.hatch_dir(host) / "runs" / f"{run_id}.claimed"
        return self.read(host, path, 4096) is not None

    # -- liveness --------------------------------------------------------------------------
    def panes(self, host: SshHost, now: float, *, wait: bool = True) -> dict[str, Pane] | None:
        """This project's live panes on the host by window name (cached for PANES_MAX_AGE),
        None while the host does not answer (``unreachable_since`` says since when). With
        ``wait`` False (the monitor, on the loop) the listing is made in a thread: the last
        one is served meanwhile (None before the first), and the loop is woken when it is
        done; a frozen host never holds the loop for ``tmux_timeout``."""
        listing = self._listing.get(host.name)
        if listing is not None:
            if listing.is_alive() and not wait:
                return None if host.name in self.unreachable_since else self._panes.get(host.name)
            listing.join()
            self._listing.pop(host.name, None)
            if listing.generation == self._generation.get(host.name, 0):
                return self._listed(host, listing.started, listing.result)
            # begun before forget_panes (a pane opened since): dropped, listed again below
        if host.name in self.unreachable_since:
            if now - self._probe_at.get(host.name, 0.0) < UNREACHABLE_RETRY:
                return None
        elif host.name in self._panes and now - self._probe_at.get(host.name, 0.0) < PANES_MAX_AGE:
            return self._panes[host.name]
        self._probe_at[host.name] = now
        if wait:
            return self._listed(host, now, _list_panes(self.tmux(host)))
        generation = self._generation.get(host.name, 0)
        self._listing[host.name] = _Listing(self.tmux(host), now, self.sink, host.name, generation)
        return None if host.name in self.unreachable_since else self._panes.get(host.name)

    def _listed(
        self, host: SshHost, now: float, listed: list[Pane] | HostUnreachable
    ) -> dict[str, Pane] | None:
        """A listing of the host's panes taken into account (on the loop): its live panes, or
        None when the host did not answer (then unreachable since ``now``)."""
        tmux = self.tmux(host)
        if isinstance(listed, HostUnreachable):
            if host.name not in self.unreachable_since:
                self.unreachable_since[host.name] = now
                self.log.warning("host_unreachable", host=host.name, error=str(listed)[:300])
                self.health.failed(host.name, f"unreachable: {listed}")
            self._panes.pop(host.name, None)
            self.ready.discard(host.name)  # prepared again when it answers (it may be new)
            return None
        panes = {
            p.window_name: p
            for p in listed
            if p.tag == tmux.tag and p.session == AGENT_SESSION and not p.dead
        }
        if self.unreachable_since.pop(host.name, None) is not None or host.name in self.down:
            self.log.info("host_reachable", host=host.name)
            if host.name in self.down:  # its runs ended host_lost: what still runs there goes
                self.down.discard(host.name)
                self.close_strays(tmux, panes)
        self._panes[host.name] = panes
        return panes

    def close_strays(self, tmux: Tmux, panes: dict[str, Pane]) -> None:
        """Close the host's panes of runs that are not live (e.g. ended host_lost while the
        host was away: they must not work beside their task's next run)."""
        live = {r.window_name for r in self.deps.store.runs(live_only=True)}
        for name in [n for n in panes if n != "home" and n not in live]:
            tmux.kill_pane(panes.pop(name).pane_id)

    def forget_panes(self, host: SshHost) -> None:
        """The next look at the host's panes lists them again (a listing under way, begun
        before a pane opened or closed, is not taken)."""
        self._generation[host.name] = self._generation.get(host.name, 0) + 1
        self._panes.pop(host.name, None)

    def pane(self, run: RunRow) -> Pane | None:
        """The run's pane in its host's pane list as last read (its pane id and pid there)."""
        return self._panes.get(run.host or "", {}).get(run.window_name)

    def pane_alive(self, run: RunRow, now: float) -> bool | None:
        """Whether the run's pane lives on its host (as last listed: the listing is made off the
        loop); None when the host does not answer, or before its first listing."""
        panes = self.panes(self.host(run), now, wait=False)
        return None if panes is None else run.window_name in panes

    # -- completion ------------------------------------------------------------------------
    def io_rel(self, run: RunRow) -> str:
        io = self.deps.project.paths.io.relative_to(self.deps.project.root)
        return str(PurePosixPath(run.stop_path).relative_to(io.as_posix()))

    def stop_reported(self, run: RunRow) -> bool:
        """The host's watcher listed a stop file of this run not collected yet."""
        watch = self.watches.get(run.host or "")
        if watch is None:
            return False
        mtime = watch.reported(self.io_rel(run))
        return mtime is not None and f"{float(mtime):.6f}" != self.results.collected.get(run.id)

    def log_size(self, run: RunRow) -> int | None:
        """The size of the run's log on its host, as its watcher last listed it."""
        watch = self.watches.get(run.host or "")
        if watch is None:
            return None
        logs = self.deps.project.paths.logs.relative_to(self.deps.project.root)
        return watch.log_size(str(PurePosixPath(run.log_path).relative_to(logs.as_posix())))

    def collect(self, run: RunRow) -> bool:
        """Write the local summary and stop of the run's stop on its host; its branch and log
        follow (engine/remotecollect.py). False when the host has no new stop file for it."""
        return remotecollect.collect(self, run)

    def _log_where(self, host: SshHost, run: RunRow) -> tuple[str, PurePosixPath, Path]:
        """(path relative to .hatch/logs, on the host, here) of the run's log."""
        here = self.deps.project.root / run.log_path
        rel = here.relative_to(self.deps.project.paths.logs).as_posix()
        return rel, self.on_host(host, here), here

    def follow_log(self, host: SshHost, run: RunRow) -> None:
        """Copy the run's log here as it grows on the host (launch, adoption)."""
        self.mirrors[host.name].follow(*self._log_where(host, run))

    def mirror_log(self, host: SshHost, run: RunRow) -> None:
        """The rest of the run's log on the host (bounded), appended to its local log."""
        self.mirrors[host.name].finish(*self._log_where(host, run))

    # -- ending ----------------------------------------------------------------------------
    def kill(self, run: RunRow) -> psinfo.KillReport:
        """Close the run's window on its host (tmux hangs up its processes). A host that does
        not answer is left as it is (its panes are closed when it answers again: reconcile)."""
        report = psinfo.KillReport()
        host = self.hosts.get(run.host or "")
        if host is None or host.name in self.down:
            return report
        start = time.monotonic()
        try:
            self.cancel_ticket(host, run.id)
            tmux = self.tmux(host)
            for pane in tmux.list_panes():
                if pane.window_name == run.window_name and pane.tag == tmux.tag:
                    report.found += 1
                    tmux.kill_pane(pane.pane_id)
            self.mirror_log(host, run)
        except TmuxServerDead:
            pass
        except HatchError as exc:
            self.log.warning("remote_kill_failed", run_id=run.id, host=host.name, error=str(exc))
        self._panes.pop(host.name, None)
        report.seconds = time.monotonic() - start
        self.deps.log.info("run_killed", task_id=run.task_id, run_id=run.id, host=host.name)
        return report

    # -- adoption and watchers ---------------------------------------------------------------
    def reconcile(self) -> tuple[list[int], list[int]]:
        """See engine/remoteadopt.py."""
        return remoteadopt.reconcile(self)

    def watch(self, host: SshHost) -> HostWatch:
        watch = self.watches.get(host.name)
        if watch is None:
            paths = self.deps.project.paths
            watch = HostWatch(
                host,
                self.hatch_dir(host),
                self.sink,
                mirror=self.mirrors[host.name],
                local_io=paths.io,
            )
            watch.start()
            self.watches[host.name] = watch
        return watch

    def attach(self, sink: queue.Queue[tuple[str, str]]) -> None:
        """Watchers started from now on wake the supervisor through ``sink``; the drains a
        previous supervisor left are kept, and the hosts' load is sampled from now on."""
        self.sink = sink
        self.health.load_drains()
        if self.hosts:  # no thread at all in a project without SSH hosts
            self.health.start()

    def shutdown(self, *, kill_servers: bool) -> None:
        """Stop the watchers; with ``kill_servers`` (nothing runs any more) also the hosts'
        tmux servers of this project; close every master connection."""
        touched = self.ready | set(self.watches)
        self.health.stop()
        self.samples.close()
        self.screens.close()
        self.waits.close()
        for watch in self.watches.values():
            watch.stop()
        self.watches.clear()
        for host in self.hosts.values():
            if kill_servers and host.name in touched and host.name not in self.unreachable_since:
                with contextlib.suppress(HatchError):
                    self.tmux(host).kill_server()
            with contextlib.suppress(HatchError, OSError):
                host.close()


def _list_panes(tmux: Tmux) -> list[Pane] | HostUnreachable:
    """The host's panes (none when its tmux server is not running), or why it did not answer
    (its link down, or tmux there timed out: a frozen host)."""
    try:
        return tmux.list_panes()
    except TmuxServerDead:
        return []
    except HostUnreachable as exc:
        return exc
    except HatchError as exc:
        return HostUnreachable(str(exc))


class _Listing(threading.Thread):
    """One listing of a host's panes (bounded by the host's tmux timeout), in a thread; the
    supervisor woken (``("remote", HOST)``) when it is done."""

    def __init__(
        self,
        tmux: Tmux,
        started: float,
        sink: queue.Queue[tuple[str, str]],
        host: str,
        generation: int,
    ) -> None:
        super().__init__(name=f"hatch-panes-{host}", daemon=True)
        self.tmux, self.started, self.sink, self.host = tmux, started, sink, host
        self.generation = generation
        self.result: list[Pane] | HostUnreachable = []
        self.start()

    def run(self) -> None:
        self.result = _list_panes(self.tmux)
        self.sink.put(("remote", self.host))
