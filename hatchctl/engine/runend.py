"""Ending agent runs: a launch ticket cancelled (so the run never starts), a run killed (every
process of its tree, then its pane), and its end recorded with what a kill left alive. The
ticket protocol is launcher.py's: whichever of "cancelled" and "claimed" comes first wins."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

from hatchctl.engine import observe
from hatchctl.engine.deps import Deps
from hatchctl.errors import TmuxError
from hatchctl.runtime import psinfo
from hatchctl.state.rows import RunRow
from hatchctl.state.store import Tx
from hatchctl.state.transitions import RUN_LIVE


def cancel_ticket(deps: Deps, run_id: int) -> bool:
    """Make sure run ``run_id`` never starts. False when the agent already claimed the ticket."""
    paths = deps.project.paths
    cancelled = paths.cancelled(run_id)
    try:
        os.replace(paths.ticket(run_id), cancelled)
        return True
    except FileNotFoundError:
        if paths.claimed(run_id).exists():
            return False
        cancelled.write_text("cancelled before the ticket was written\n")
        return not paths.claimed(run_id).exists()


def claimed(deps: Deps, run_id: int) -> bool:
    return deps.project.paths.claimed(run_id).exists()


def kill(deps: Deps, run: RunRow) -> psinfo.KillReport:
    """Kill escalation: SIGTERM to the process group(s), grace, SIGKILL, check for survivors;
    then close the pane. Safe to call on an already dead run. A run on an SSH host: its
    window there is closed (engine/remote.py)."""
    if run.remote:
        return deps.remote.kill(run)
    cancel_ticket(deps, run.id)
    report = psinfo.kill_agent(deps.run_key(run.id), grace=deps.limits.kill_grace)
    with contextlib.suppress(TmuxError):
        for pane in deps.tmux.list_panes():  # pane ids restart with a new server: match the name
            if pane.window_name == run.window_name and pane.tag == deps.tmux.tag:
                deps.tmux.kill_pane(pane.pane_id)
    deps.log.info("run_killed", task_id=run.task_id, run_id=run.id, **report.as_dict())
    return report


def reap(deps: Deps, run: RunRow) -> psinfo.KillReport | None:
    """An exited local run's processes still alive beside its wrapper (which is about to exit)
    are killed: the kill's report, or None when none was left. Never touches the store (the
    supervisor runs it in a job; the run stays ``stopped`` until its result is applied)."""
    alive = psinfo.marked(deps.run_key(run.id))
    if [p for p in alive if p.pid != run.pane_pid]:
        return kill(deps, run)
    return None


def end_run(
    deps: Deps,
    run: RunRow,
    to_state: str,
    reason: str,
    *,
    data: dict[str, Any] | None = None,
    then: Callable[[Tx], object] | None = None,
) -> psinfo.KillReport:
    """Kill what is left of a run, then record its end (and ``then``, e.g. a strike) in one
    transaction. A run that already ended meanwhile is left as it is."""
    report = kill(deps, run)
    with deps.store.tx() as tx:
        current = tx.run(run.id)
        if current is not None and current.state in RUN_LIVE:
            tx.transition_run(
                run.id,
                current.state,
                to_state,
                ended_at=current.ended_at or tx.now,
                reason=reason,
                data={**(data or {}), "kill": report.as_dict()},
            )
            if then is not None:
                then(tx)
    ended = deps.store.run(run.id)
    if ended is not None and not ended.metrics:
        observe.collect(deps, ended)
    return report
