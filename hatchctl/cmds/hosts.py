"""`hatchctl hosts`: every host (local first) with its health, probed at once, each bounded,
how many of the project's agents run there now, and whether the supervisor drained it (it kept
failing: ``drained: REASON``, engine/remotehealth.py)."""

from __future__ import annotations

import argparse
import json
import time

from hatchctl.cmds.common import load_project
from hatchctl.engine.placement import live_counts
from hatchctl.engine.remotehealth import META_PREFIX, drained_from_meta
from hatchctl.errors import HatchError
from hatchctl.hosts import build_hosts
from hatchctl.hosts.probe import Health, probe_all, summary
from hatchctl.project import Project


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
        now = time.time()
        drained = {n: drained_from_meta(store.meta(META_PREFIX + n), now) for n in names}
        found = {n: why for n, why in drained.items() if why is not None}
        return dict(live_counts(store.runs(live_only=True))), found
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
