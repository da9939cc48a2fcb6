"""`hatchctl hosts`: every host (local first) with its health, probed at once, each bounded."""

from __future__ import annotations

import argparse
import json

from hatchctl.cmds.common import load_project
from hatchctl.errors import HatchError
from hatchctl.hosts import build_hosts
from hatchctl.hosts.probe import Health, probe_all, summary


def _line(h: Health, width: int) -> str:
    state = "ok" if h.reachable and not h.error else "unreachable" if not h.reachable else "error"
    labels = ",".join(h.labels) or "-"
    where = "" if h.name == "local" else f"{h.address}  "
    return (
        f"{h.name:<{width}}  {state:<11}  {where}max_active {h.max_active}  labels {labels}\n"
        f"{'':<{width}}  {summary(h)}"
    )


def hosts(args: argparse.Namespace) -> int:
    project = load_project(args)
    found = build_hosts(project)
    results = probe_all(found, timeout=args.timeout)
    if args.json:
        print(json.dumps({"hosts": [h.as_dict() for h in results]}, indent=2, sort_keys=True))
    else:
        width = max(len(h.name) for h in results)
        for h in results:
            print(_line(h, width))
    bad = [h.name for h in results if not h.reachable or h.error]
    if bad:
        raise HatchError(f"{len(bad)} of {len(results)} hosts not usable: {', '.join(bad)}")
    return 0
