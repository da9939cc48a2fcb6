"""``hatchctl run`` and ``hatchctl demo``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hatchctl.cmds.common import build_deps, load_project
from hatchctl.demo import EXPECTED, write_demo
from hatchctl.engine.jobs import INTEGRATION_DIR
from hatchctl.engine.progress import Reporter
from hatchctl.engine.supervisor import Supervisor
from hatchctl.project import Project
from hatchctl.runtime.acceptance import run_acceptance
from hatchctl.state.rows import TaskRow


def _table(tasks: list[TaskRow], expected: dict[str, str] | None = None) -> str:
    rows = [["ID", "STATE", "ITER", "STRIKES", "RESTARTS", "OUTCOME"]]
    if expected is not None:
        rows[0].insert(2, "EXPECTED")
    for t in tasks:
        outcome = t.last_error or ("ok" if t.state == "completed" else "-")
        row = [t.id, t.state, str(t.iteration), str(t.strikes), str(t.restarts), outcome[:70]]
        if expected is not None:
            want = expected.get(t.id, "?")
            row.insert(2, want + ("" if want == t.state else "  <-- MISMATCH"))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1] for r in rows
    )


def run_supervisor(project: Project, *, until_drained: bool) -> tuple[int, list[TaskRow]]:
    deps = build_deps(project)
    reporter = Reporter(deps.store, start_after=deps.store.last_event_id())
    supervisor = Supervisor(deps, until_drained=until_drained, on_pass=reporter.update)
    code = supervisor.run()
    reporter.update()
    return code, deps.store.tasks()


def run(args: argparse.Namespace) -> int:
    project = load_project(args)
    code, tasks = run_supervisor(project, until_drained=args.until_drained)
    print(_table(tasks))
    return code


def demo(args: argparse.Namespace) -> int:
    root = (args.dir or Path("demo-project")).resolve()
    if not args.keep or not (root / "hatch.toml").exists():
        write_demo(root)
    project = load_project(argparse.Namespace(directory=root))
    headless = args.headless or not sys.stdout.isatty()
    if not headless:
        from hatchctl.cmds.ui import run_ui

        return run_ui(project, read_only=False)
    print(f"hatchctl demo in {root} (headless; `hatchctl -C {root} status` shows the state)")
    _, tasks = run_supervisor(project, until_drained=True)
    states = {t.id: t.state for t in tasks}
    print()
    print(_table(tasks, EXPECTED))
    ok = all(states.get(k) == v for k, v in EXPECTED.items())
    integ = project.paths.worktrees / INTEGRATION_DIR
    tests = (
        run_acceptance(["python3", "-m", "unittest", "-q"], integ, 120) if integ.is_dir() else None
    )
    print()
    print(
        f"integration branch {project.config.project.integration_branch}: demo tests "
        + (
            "pass"
            if tests and tests.passed
            else f"FAIL ({tests.describe() if tests else 'no worktree'})"
        )
    )
    print(
        "demo: every task reached its expected end state"
        if ok
        else "demo: MISMATCH (see the table)"
    )
    return 0 if ok and tests is not None and tests.passed else 1
