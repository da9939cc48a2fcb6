"""After a run stops: take back its branch and check the refs it must not touch
(confinement.reclaim), recording what was found as events. Used by the monitor."""

from __future__ import annotations

from typing import Any

from hatchctl.engine import confinement
from hatchctl.engine.deps import Deps
from hatchctl.state.rows import RunRow


def record(deps: Deps, run: RunRow) -> confinement.Reclaimed:
    """Reclaim the run's refs and record each finding (one transaction)."""
    got = confinement.reclaim(deps, run)
    note(deps, run, got)
    return got


def note(deps: Deps, run: RunRow, got: confinement.Reclaimed) -> None:
    """What reclaiming the run's refs found, as events (one transaction)."""
    with deps.store.tx() as tx:
        if got.moved:
            tx.event(
                "branch_taken_back",
                task_id=run.task_id,
                run_id=run.id,
                data={"from": got.moved[0], "to": got.moved[1]},
            )
        for problem in got.problems:
            tx.event("sandbox_problem", task_id=run.task_id, run_id=run.id, data={"error": problem})
        if got.tampered and got.sandboxed:  # not the agent: it cannot write refs
            tx.event(
                "refs_changed_outside",
                task_id=run.task_id,
                run_id=run.id,
                data={"refs": {k: list(v) for k, v in got.tampered.items()}},
            )


def tampering(got: confinement.Reclaimed) -> tuple[str, dict[str, Any]] | None:
    """(detail, data) of the run's own ref tampering, or None when there was none."""
    if not got.tampered or got.sandboxed:
        return None
    names = ", ".join(got.tampered)
    detail = f"the agent changed {names} (restored)"
    if got.unrestored:
        detail = f"the agent changed {names}; could not restore: {'; '.join(got.unrestored)}"
    data = {"refs": {k: list(v) for k, v in got.tampered.items()}, "unrestored": got.unrestored}
    return detail, data
