"""Where a run goes when it launches: the hosts whose labels include every one of the spec's
``host_labels``, then the one with the most free slots (``max_active`` minus its live runs),
then the lowest 1-minute load average per core (when every host so tied has a sample: see
engine/remotehealth.py), then hatch.toml's order (``local`` first). A host declared lost (past
``[limits] host_grace`` unreachable) gets nothing until it answers again; a drained one (it
kept failing) nothing until its cool-down is over. An SSH host chosen is prepared first (once per
process: its directories, clone and scripts); when that fails the failure counts against it and
the next host is chosen, so a broken host costs no run a restart. No free slot
anywhere: the run waits for the next pass. See docs/scaling.md."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from hatchctl.config import LOCAL_HOST
from hatchctl.errors import HatchError
from hatchctl.hosts.base import Host
from hatchctl.state.rows import RunRow
from hatchctl.state.spec import TaskSpec

if TYPE_CHECKING:
    from hatchctl.engine.deps import Deps


class NoHost(HatchError):
    """No configured host could ever take the run (labels, or an agent that runs here only)."""


def live_counts(runs: Iterable[RunRow]) -> Counter[str]:
    """Live runs per host name (``local`` for runs without a host)."""
    return Counter(run.host or LOCAL_HOST for run in runs)


def eligible(
    hosts: Sequence[Host],
    labels: Collection[str],
    *,
    down: Collection[str] = (),
    remote_ok: bool = True,
) -> list[Host]:
    """The hosts a task asking for ``labels`` may run on, whatever their load."""
    wanted = set(labels)
    return [
        h
        for h in hosts
        if h.name not in down and wanted <= set(h.labels) and (remote_ok or h.name == LOCAL_HOST)
    ]


def choose(
    hosts: Sequence[Host],
    labels: Collection[str],
    live: Mapping[str, int],
    *,
    down: Collection[str] = (),
    loads: Mapping[str, float] | None = None,
    remote_ok: bool = True,
) -> Host | None:
    """The host for a new run, or None when every eligible host is full (or none is)."""
    order = {h.name: i for i, h in enumerate(hosts)}
    free = [
        h
        for h in eligible(hosts, labels, down=down, remote_ok=remote_ok)
        if live.get(h.name, 0) < h.max_active
    ]
    if not free:
        return None
    most = max(h.max_active - live.get(h.name, 0) for h in free)
    tied = [h for h in free if h.max_active - live.get(h.name, 0) == most]
    load = loads or {}
    if len(tied) > 1 and all(h.name in load for h in tied):  # a host not sampled yet: no guess
        return min(tied, key=lambda h: (load[h.name], order[h.name]))
    return min(tied, key=lambda h: order[h.name])


def capacity(hosts: Sequence[Host], *, down: Collection[str] = ()) -> int:
    """Agents that may run at once on every host not lost (the scheduler's max_active)."""
    return sum(h.max_active for h in hosts if h.name not in down)


def for_run(deps: Deps, spec: TaskSpec, role: str) -> Host | None:
    """The host for a new run of ``role`` of ``spec``'s task, None while every eligible host is
    full or lost. An agent reached only through its pane here (Claude's Stop hook, pasted
    prompts) runs only here; one whose sandbox is required runs only where bwrap works (a host
    without it is passed over, and counted against it)."""
    agent = getattr(deps.project.config.agents, role)
    remote_ok = agent.stop == "exit" and agent.prompt_delivery == "argument"
    if not eligible(deps.hosts, spec.host_labels, remote_ok=remote_ok):
        raise NoHost(
            f"no host can run its {role}: host_labels {spec.host_labels} (a host needs every "
            "label; an agent with stop = claude-hook or paste prompts runs only on this machine)"
        )
    live = live_counts(deps.store.runs(live_only=True))
    remote = deps.remote
    left_out = remote.health.excluded(remote.down)  # lost or drained
    loads = remote.health.load_of()
    while True:  # an SSH host that cannot even be prepared is passed over (and counted)
        host = choose(
            deps.hosts, spec.host_labels, live, down=left_out, loads=loads, remote_ok=remote_ok
        )
        if (
            host is None
            or host.name not in remote.hosts
            or remote.usable(remote.hosts[host.name], role)
        ):
            return host
        left_out.add(host.name)
