"""``hatchctl run`` and ``hatchctl demo``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hatchctl.cmds.common import build_deps, load_project
from hatchctl.demo import EXPECTED, PACE_INTERACTIVE, narration, write_demo
from hatchctl.engine.jobs import INTEGRATION_DIR
from hatchctl.engine.progress import Reporter
from hatchctl.engine.supervisor import Supervisor
from hatchctl.errors import HatchError
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


def run_supervisor(
    project: Project, *, until_drained: bool, time_limit: float | None = None
) -> tuple[int, list[TaskRow]]:
    """The supervisor in the foreground: plain progress lines, plus a progress bar on a terminal."""
    deps = build_deps(project)
    start = deps.store.last_event_id()
    if not sys.stdout.isatty():
        reporter = Reporter(deps.store, start_after=start)
        code = Supervisor(
            deps, until_drained=until_drained, on_pass=reporter.update, time_limit=time_limit
        ).run()
        reporter.update()
        return code, deps.store.tasks()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
    ) as progress:
        bar = progress.add_task(project.name, total=1)
        reporter = Reporter(deps.store, progress.console.print, start_after=start)

        def on_pass() -> None:
            reporter.update()
            tasks = deps.store.tasks()
            done = sum(t.state in ("completed", "failed", "blocked") for t in tasks)
            active = sum(t.state == "active" for t in tasks)
            progress.update(
                bar,
                total=max(len(tasks), 1),
                completed=done,
                description=f"{project.name}: {active} active",
            )

        code = Supervisor(
            deps, until_drained=until_drained, on_pass=on_pass, time_limit=time_limit
        ).run()
        on_pass()
    return code, deps.store.tasks()


def _paused_check(project: Project, *, until_drained: bool, resume: bool) -> None:
    """A paused project never drains: say so instead of exiting at once as if it had."""
    store = project.open_store()
    try:
        if store.meta("paused") != "1":
            return
        if (store.meta("pause_reason") or "").startswith("disk_full"):
            return  # the supervisor lifts its own disk_full pause once space is back
        if resume:
            with store.tx() as tx:
                tx.set_meta("paused", "0")
                tx.set_meta("pause_reason", "")
                tx.event("resumed", data={"by": "run --resume"})
            return
        if until_drained:
            reason = store.meta("pause_reason") or "by the user"
            raise HatchError(
                f"the project is paused ({reason}); nothing would start: "
                "`hatchctl run --until-drained --resume` resumes it first"
            )
    finally:
        store.close()


def run(args: argparse.Namespace) -> int:
    project = load_project(args)
    _paused_check(project, until_drained=args.until_drained, resume=args.resume)
    code, tasks = run_supervisor(
        project, until_drained=args.until_drained, time_limit=args.max_time
    )
    print(_table(tasks))
    return code


def demo(args: argparse.Namespace) -> int:
    root = (args.dir or Path("demo-project")).resolve()
    headless = args.headless or not sys.stdout.isatty()
    pace = getattr(args, "pace", None)
    if pace is None:
        pace = 0.0 if headless else PACE_INTERACTIVE
    if not args.keep or not (root / "hatch.toml").exists():
        write_demo(root, pace=pace)
    project = load_project(argparse.Namespace(directory=root))
    print("What to watch for:")
    print("\n".join("  " + line for line in narration()))
    if not headless:
        from hatchctl.cmds.ui import run_ui

        code = run_ui(project, read_only=False)
        store = project.open_store()
        try:
            tasks = store.tasks()
        finally:
            store.close()
        print(_table(tasks, EXPECTED))
        left = [t.id for t in tasks if t.state not in ("completed", "failed", "blocked")]
        print(
            f"still running: {', '.join(left)} (`hatchctl -C {root} down` stops it)"
            if left
            else "demo: every task reached its expected end state"
            if all(t.state == EXPECTED.get(t.id, t.state) for t in tasks)
            else "demo: MISMATCH (see the table)"
        )
        return code
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
