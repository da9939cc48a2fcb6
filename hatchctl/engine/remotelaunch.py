"""A launch on an SSH host, in the two steps of a local one (engine/launching.py), so that the
supervisor's loop never waits for the host while it opens a pane there (a stop written
meanwhile is handled at once):

``open_pane`` (a job's thread, one at a time per host; no store write): the task's branch
pushed to the clone there (push_to_host.sh over the master connection), its own repository and
worktree made (host_worktree.sh), the spec, prompt and handover copied, the exchange directory
made, and the wrapper run_agent.sh started in the host's tmux server, waiting for its ticket
(then it runs the agent in bwrap where the run is sandboxed, else under the reaper where the
host has python3 for it: remotesandbox.py).

``finish`` (the loop): the host's watcher and the log's mirror in place, then the ticket written
there (the wrapper starts the agent) and the run ``running``; a run ended meanwhile (a kill,
``down``) gets no ticket and its pane is closed.

``mode`` (the loop, before the job): the project prepared there and the sandbox the run gets
(both probed once per host, then known).
"""

from __future__ import annotations

import contextlib
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hatchctl.engine import launcher, remotefiles
from hatchctl.errors import HatchError, HostError
from hatchctl.hosts.ssh import SshHost
from hatchctl.state.rows import RunRow

if TYPE_CHECKING:
    from hatchctl.engine.remote import RemoteRuns


def mode(remote: RemoteRuns, host: SshHost, role: str) -> str:
    """The project ready on the host and the sandbox of a ``role`` run there (``bwrap`` or
    ``none``); HostError when it cannot be (remotesandbox.HostSandboxes.mode)."""
    remote.prepare(host)
    return remote.sandboxes.mode(host, role)


def open_pane(remote: RemoteRuns, p: launcher.Pending, sandbox: str) -> launcher.Opened:
    """Everything of the launch that talks to the host, up to the wrapper waiting for its ticket
    (see the module's docstring). Touches no store; a failure is LaunchFailed."""
    assert p.host is not None
    try:
        with remote.opening[p.host.name]:  # one at a time per host (its tmux server, its git)
            return _open(remote, p.host, p, sandbox)
    except HatchError as exc:
        raise launcher.LaunchFailed(
            f"could not launch {p.run.window_name} on host {p.host.name}: {exc}"
        ) from None


def _open(remote: RemoteRuns, host: SshHost, p: launcher.Pending, sandbox: str) -> launcher.Opened:
    deps, paths, root = remote.deps, remote.deps.project.paths, remote.deps.project.root
    run, task, spec, timeout = p.run, p.task, p.spec, float(deps.limits.script_timeout)
    remote.prepare(host)  # (done by placement already: a no-op)
    hatch = remote.hatch_dir(host)
    url = host.git_url(hatch / "repo.git")
    deps.scripts.run("git/push_to_host.sh", str(root), url, task.id, env=remote.git_env(host))
    worktree = paths.worktree(task.id)
    there = [str(hatch / "repo.git"), str(remote.on_host(host, worktree)), task.id]
    remotefiles.script(host, hatch, "git/host_worktree.sh", *there, timeout=timeout)
    spec_file = Path(spec.path) if Path(spec.path).is_absolute() else root / spec.path
    copies = [spec_file, p.prompt, p.delivered] + ([p.handover] if p.handover else [])
    copied = [local for local in dict.fromkeys(copies) if local.is_file()]
    for local in copied:
        remote.put(host, remote.on_host(host, local), local.read_text(encoding="utf-8"))
    stop = paths.stop_file(task.id, run.role, run.iteration, run.attempt)
    # its exchange directory made now (the wrapper writes the stop there; the host's watcher
    # is in place before the ticket), the last attempt's stop removed, sandbox_writable made
    extra = remote.sandboxes.writable(host, run.role) if sandbox == "bwrap" else []
    fresh = 'umask 077 && mkdir -p -- "${1%/*}" "${@:2}" && rm -f -- "$1"'
    where_stop = str(remote.on_host(host, stop))
    host.run(["bash", "-c", fresh, "hatch-io", where_stop, *map(str, extra)], timeout=timeout)
    agent = getattr(deps.project.config.agents, run.role)

    def where(path: Path) -> Path:
        return Path(remote.on_host(host, path))

    env = {
        **launcher.run_env(
            deps, run, task, spec, where, files=(worktree, p.prompt, p.delivered, p.handover)
        ),
        **remote.sandboxes.env(host, run, sandbox),  # HATCH_SANDBOX, e.g. IS_SANDBOX=1
        **agent.env,
    }
    box = remote.sandboxes.argv(host, run, copied, extra) if sandbox == "bwrap" else []
    # as locally: every descendant dies with the run (bwrap's pid namespace, else the reaper)
    reaper = remote.sandboxes.reaper(host) if not box else []
    tmux = remote.tmux(host)
    tmux.ensure_server(Path(remote.base(host)))
    log = paths.run_log(task.id, run.role, run.iteration, run.attempt)
    wrapper = hatch / "scripts" / "agent" / "run_agent.sh"
    pane = tmux.new_window(
        run.window_name,
        ["bash", str(wrapper), *reaper, *box, *agent.command],
        cwd=where(worktree),
        env=env,
        index=run.id,
        pipe=f"exec cat >> {shlex.quote(str(where(log)))}",
    )
    return launcher.Opened(pane.pane_id, None, sandbox)


def finish(remote: RemoteRuns, p: launcher.Pending, opened: launcher.Opened) -> RunRow | None:
    """The watcher and log mirror in place, the ticket written there, the run ``running`` (the
    loop's thread); None, its pane closed, when the run ended while its pane opened. HostError
    (its pane closed) when the ticket cannot be written."""
    host, run, deps = p.host, p.run, remote.deps
    assert host is not None
    tmux = remote.tmux(host)
    current = deps.store.run(run.id)
    if current is None or current.state != "starting":
        with contextlib.suppress(HatchError):
            tmux.kill_pane(opened.pane_id)
        return None
    remote.watch(host)
    remote.follow_log(host, run)
    ticket = f"run_id={run.id} task={p.task.id} role={run.role}"
    where_ticket = str(remote.hatch_dir(host) / "runs" / str(run.id))
    if remote.sh(host, remotefiles.TICKET, where_ticket, ticket) != 0:
        with contextlib.suppress(HatchError):
            tmux.kill_pane(opened.pane_id)
        raise HostError(f"host {host.name}: launch {run.id} was cancelled")
    remote.forget_panes(host)
    # no pane id nor pid in the row: those name this machine's panes and processes (a
    # message or an attach by pane id would reach a local pane); the host's window is
    # found by its name
    data: dict[str, Any] = {"host": host.name, "host_pane_id": opened.pane_id}
    data["sandbox"] = opened.mode
    # under bwrap its pid namespace, not the reaper; None: not known (probed anew meanwhile)
    reaper = False if opened.mode == "bwrap" else remote.sandboxes.reaped(host, run.role)
    if reaper is not None:
        data["reaper"] = reaper
    return launcher.running(deps, run, None, None, data)
