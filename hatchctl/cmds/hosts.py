"""`hatchctl hosts`: every host (local first) with its health, probed at once, each bounded,
how many of the project's agents run there now, and whether the supervisor drained it (it kept
failing: ``drained: REASON``, engine/remotehealth.py). `hatchctl undrain NAME` ends a drain: through
the running supervisor, else here under its lock."""

from __future__ import annotations

import argparse
import json
import time

from hatchctl.cmds.common import load_project
from hatchctl.cmds.control import send
from hatchctl.engine.placement import live_counts
from hatchctl.engine.remotehealth import META_PREFIX, clear_drain, drained_from_meta, drains
from hatchctl.errors import HatchError
from hatchctl.hosts import build_hosts
from hatchctl.hosts.probe import Health, probe_all, summary
from hatchctl.project import Project
from hatchctl.state.lockfile import SupervisorLock, probe


def _line(h: Health, width: int, active: int, drained: str | None) -> str:
    state = "ok" if h.reachable and not h.error else "unreachable" if not h.reachable else "error"
    state = "drained" if drained is not None and state == "ok" else state
    labels = ",".join(h.labels) or "-"
    where = "" if h.name == "local" else f"{h.address}  "
    text = (
        f"{h.name:<{width}}  {state:<11}  {where}active {active}/{h.max_active}  labels {labels}\n"
        f"{'':<{width}}  {summary(h)}"
    )
    return text + (f"\n{'':<{width}}  drained: {drained}" if drained is not None else "")


def _state(project: Project, names: list[str]) -> tuple[dict[str, int], dict[str, str]]:
    """Live runs per host (engine/placement.py's count) and the drains not over; neither
    before the first supervisor."""
    if not project.paths.db.exists():
        return {}, {}
    store = project.open_store()
    try:
        return dict(live_counts(store.runs(live_only=True))), drains(store, names, time.time())
    finally:
        store.close()


def hosts(args: argparse.Namespace) -> int:
    project = load_project(args)
    found = build_hosts(project)
    results = probe_all(found, timeout=args.timeout)
    active, drained = _state(project, [h.name for h in found])
    if args.json:
        rows = [
            {**h.as_dict(), "active": active.get(h.name, 0), "drained": drained.get(h.name)}
            for h in results
        ]
        print(json.dumps({"hosts": rows}, indent=2, sort_keys=True))
    else:
        width = max(len(h.name) for h in results)
        for h in results:
            print(_line(h, width, active.get(h.name, 0), drained.get(h.name)))
    bad = [h.name for h in results if not h.reachable or h.error]
    if bad:
        raise HatchError(f"{len(bad)} of {len(results)} hosts not usable: {', '.join(bad)}")
    return 0


def undrain(args: argparse.Namespace) -> int:
    project = load_project(args)
    name = args.host
    if name not in {h.name for h in build_hosts(project)[1:]}:
        raise HatchError(f"no host {name!r} in hatch.toml [hosts]")
    if probe(project.paths.supervisor_lock).held:
        ok, result = send(project, "undrain", args={"host": name})
        if not ok:
            raise HatchError(f"undrain failed: {result}")
        print(result)
        return 0
    if not project.paths.db.exists():
        raise HatchError(f"host {name} is not drained")
    lock = SupervisorLock(project.paths.supervisor_lock)
    lock.acquire()  # no supervisor starts meanwhile and reads the drain
    store = project.open_store()
    try:
        raw = store.meta(META_PREFIX + name)
        with store.tx() as tx:
            result = clear_drain(
                tx, name, by="user", drained=drained_from_meta(raw, time.time()) is not None
            )
    finally:
        store.close()
        lock.release()
    print(result)
    return 0
