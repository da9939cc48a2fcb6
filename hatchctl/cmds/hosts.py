"""`hatchctl hosts`: every host (local first) with its health, probed at once, each bounded,
and how many of the project's agents run there now."""

from __future__ import annotations

import argparse
import json

from hatchctl.cmds.common import load_project
from hatchctl.engine.placement import live_counts
from hatchctl.errors import HatchError
from hatchctl.hosts import build_hosts
from hatchctl.hosts.probe import Health, probe_all, summary
from hatchctl.project import Project


def _line(h: Health, width: int, active: int) -> str:
    state = "ok" if h.reachable and not h.error else "unreachable" if not h.reachable else "error"
    labels = ",".join(h.labels) or "-"
    where = "" if h.name == "local" else f"{h.address}  "
    return (
        f"{h.name:<{width}}  {state:<11}  {where}active {active}/{h.max_active}  labels {labels}\n"
        f"{'':<{width}}  {summary(h)}"
    )


def _active(project: Project) -> dict[str, int]:
    """Live runs per host (engine/placement.py's count); none before the first supervisor."""
    if not project.paths.db.exists():
        return {}
    store = project.open_store()
    try:
        return dict(live_counts(store.runs(live_only=True)))
    finally:
        store.close()


def hosts(args: argparse.Namespace) -> int:
    project = load_project(args)
    found = build_hosts(project)
    results = probe_all(found, timeout=args.timeout)
    active = _active(project)
    if args.json:
        rows = [{**h.as_dict(), "active": active.get(h.name, 0)} for h in results]
        print(json.dumps({"hosts": rows}, indent=2, sort_keys=True))
    else:
        width = max(len(h.name) for h in results)
        for h in results:
            print(_line(h, width, active.get(h.name, 0)))
    bad = [h.name for h in results if not h.reachable or h.error]
    if bad:
        raise HatchError(f"{len(bad)} of {len(results)} hosts not usable: {', '.join(bad)}")
    return 0
