"""How a person reaches a run's pane: the project's tmux server here, or, for a run on an SSH
host, ``ssh -t`` to the host's tmux server of the project (the pane found by its window name:
a run's row holds no pane id of another machine)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hatchctl.errors import HostError
from hatchctl.runtime.tmux import Tmux, default_tag

if TYPE_CHECKING:
    from hatchctl.project import Project
    from hatchctl.state.rows import RunRow


def host_socket(socket: str, host_name: str) -> str:
    """The tmux socket of the project on a host: its own name, so that on a loopback host it is
    never the controller's server."""
    return f"{socket}-{host_name}"


def attach_argv(
    project: Project, run: RunRow, *, read_only: bool = False, timeout: float = 10.0
) -> list[str]:
    """The argv that attaches to ``run``'s pane (HostError when it cannot be found)."""
    if not run.remote:
        return Tmux(project.tmux_socket).attach_argv(run.pane_id or "", read_only=read_only)
    from hatchctl.hosts import build_hosts

    host = next((h for h in build_hosts(project) if h.name == run.host), None)
    if host is None:
        raise HostError(f"host {run.host!r} of run {run.id} is not in hatch.toml")
    tag = default_tag(project.tmux_socket)
    tmux = host.tmux(host_socket(project.tmux_socket, host.name), timeout=timeout, tag=tag)
    for pane in tmux.list_panes():
        if pane.window_name == run.window_name and pane.tag == tag and not pane.dead:
            return tmux.attach_argv(pane.pane_id, pane.window_id, read_only=read_only)
    raise HostError(f"no pane of {run.window_name} on host {host.name}")
