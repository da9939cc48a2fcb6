"""Read commands: validate, status, events, logs, doctor. They work without a supervisor."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from hatchctl.cmds.common import load_project, start_dir
from hatchctl.config import find_config, load_config
from hatchctl.errors import HatchError
from hatchctl.project import Project
from hatchctl.state import features, metrics
from hatchctl.state.ids import check_task_id
from hatchctl.state.lockfile import probe
from hatchctl.state.plan import plan_dirs
from hatchctl.state.spec import load_specs
from hatchctl.state.statusdoc import status_document
from hatchctl.state.store import Store
from hatchctl.state.sync import specs_unchanged, sync_specs


def validate(args: argparse.Namespace) -> int:
    config_path = find_config(start_dir(args))
    config = load_config(config_path)
    root = config_path.parent
    specs = load_specs(root / config.project.specs_dir)
    for problem in specs.problems:
        print(problem)
    if specs.problems:
        n = len(specs.problems)
        sys.stderr.write(
            f"hatchctl: {n} problem{'s' if n != 1 else ''} in {len(specs.specs)} valid specs\n"
        )
        return 1
    print(f"ok: {config_path} and {len(specs.specs)} specs are valid")
    return 0


def _synced(project: Project) -> Store:
    """The store, with new specs added as pending when no supervisor runs (a running one
    syncs them itself: a client only reads state and writes commands)."""
    store = project.open_store()
    if probe(project.paths.supervisor_lock).held or specs_unchanged(store, project.specs_dir):
        return store
    specs = project.load_specs()
    if specs.ok:
        sync_specs(store, specs.specs)
    else:
        sys.stderr.write(
            f"hatchctl: warning: specs have {len(specs.problems)} problems (run `hatchctl validate`);"
            " showing the stored state\n"
        )
    return store


def status(args: argparse.Namespace) -> int:
    project = load_project(args)
    store = _synced(project)
    doc = status_document(store, project.name, project.paths.supervisor_lock)
    doc["features"] = features.rollup(doc["tasks"])
    doc["plans"] = {
        p.name: p.state() for p in plan_dirs(project.paths.hatch / "plans")
    }  # `hatchctl plan`: held for a person's approval
    if args.json:
        print(json.dumps(doc, indent=2, sort_keys=True))
        return 0
    sup = doc["supervisor"]
    head = f"project {doc['project']}: supervisor " + (
        f"running (pid {sup['pid']})" if sup["running"] else "not running"
    )
    if doc["paused"]:
        head += f", paused ({doc['pause_reason'] or 'by user'})"
    print(head)
    print("  ".join(f"{k} {v}" for k, v in doc["counts"].items()))
    if doc["metrics"]:
        print("usage " + (metrics.short(doc["metrics"]) or "-"))
    for name, f in doc["features"].items():
        print("feature " + features.line(name, f))
    for name, plan in doc["plans"].items():
        what = f"{len(plan.get('specs', []))} spec(s)" if plan.get("specs") else plan["state"]
        hint = f"hatchctl plan --approve {name}" if plan.get("state") == "proposed" else "--list"
        print(f"plan {name}: {plan.get('state')}, {what} ({hint})")
    rows = [
        ("ID", "STATE", "PHASE", "ITER", "STRIKES", "RESTARTS", "USAGE", "FAILURE", "LAST ERROR")
    ]
    limits = project.config.limits
    for t in doc["tasks"]:
        rows.append(
            (
                t["id"],
                t["state"] + (" (held)" if t.get("held") else ""),
                t["phase"] or "-",
                str(t["iteration"]),
                f"{t['strikes']}/{limits.max_strikes}",
                f"{t['restarts']}/{limits.restart.max_restarts}",
                metrics.short(t["metrics"]) or "-",
                t["failure_class"] or "-",
                (t["last_error"] or "-")[:60],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
    return 0


def _print_event(e: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(e.to_json(), sort_keys=True), flush=True)
        return
    doc = e.to_json()
    trans = f"{doc['from'] or ''} -> {doc['to']}" if doc["to"] else ""
    data = json.dumps(doc["data"], sort_keys=True) if doc["data"] else ""
    run = f"run {doc['run_id']}" if doc["run_id"] else ""
    print(
        f"{doc['at']}  #{doc['id']:<5} {doc['task_id'] or '-':<12} {run:<8} {doc['kind']:<24} {trans:<22} {data}",
        flush=True,
    )


def events(args: argparse.Namespace) -> int:
    project = load_project(args)
    task = check_task_id(args.task) if args.task else None
    store = project.open_store()
    last = 0
    for e in store.events(task, limit=args.limit):
        _print_event(e, args.json)
        last = e.id
    while args.follow:
        time.sleep(0.25)
        for e in store.events(task, after=last):
            _print_event(e, args.json)
            last = e.id
    return 0


def logs(args: argparse.Namespace) -> int:
    project = load_project(args)
    task_id = check_task_id(args.task_id)
    store = project.open_store()
    runs = [r for r in store.runs(task_id) if args.role is None or r.role == args.role]
    if not runs:
        raise HatchError(
            f"no agent runs recorded for {task_id}" + (f" ({args.role})" if args.role else "")
        )
    run = runs[-1]
    path = project.paths.inside(project.root / run.log_path)
    if args.raw:
        _raw_logs(path, follow=args.follow)
        return 0
    # What the pane showed (a TUI's redraws rendered, not its escape codes), from the log's tail.
    from hatchctl.runtime.logfollow import LogFollower, StablePrinter  # pyte: only `logs`

    follower = LogFollower(path)
    follower.poll()
    base, lines = follower.snapshot()
    out = sys.stdout
    out.writelines(line + "\n" for line in lines)
    out.flush()
    printer = StablePrinter(base, lines)
    while args.follow:
        time.sleep(0.25)
        update = follower.poll()
        base, lines = follower.snapshot()
        restarted = update is not None and update.keep == 0
        out.writelines(line + "\n" for line in printer.step(base, lines, restarted=restarted))
        out.flush()
    return 0


def _raw_logs(path: Path, *, follow: bool) -> None:
    """The bytes as the pane wrote them (escape codes and all)."""
    out = sys.stdout.buffer
    pos = 0
    while True:
        try:
            with path.open("rb") as fh:
                fh.seek(pos)
                while chunk := fh.read(1 << 20):
                    pos += len(chunk)
                    out.write(chunk)
        except FileNotFoundError:
            pass
        out.flush()
        if not follow:
            return
        time.sleep(0.25)


def doctor(args: argparse.Namespace) -> int:
    from hatchctl.runtime.doctor import run_checks

    try:
        project: Project | None = load_project(args)
    except HatchError as exc:
        project = None
        print(f"[warn] project: {exc}")
    failures = 0
    for check in run_checks(project):
        print(f"[{check.level}] {check.name}: {check.detail}")
        failures += check.level == "fail"
    if project is not None:
        specs = project.load_specs()
        if specs.problems:
            failures += 1
            print(f"[fail] specs: {len(specs.problems)} problems (run `hatchctl validate`)")
        else:
            print(f"[ok] specs: {len(specs.specs)} valid")
    if failures:
        raise HatchError(f"doctor found {failures} problem{'s' if failures != 1 else ''}")
    return 0
