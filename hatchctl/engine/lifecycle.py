"""Task outcomes, each one transaction: strike, fail, complete, schedule a restart, advance.

Strikes: every failed factory/QA cycle is a strike; at ``max_strikes`` the task fails with all
previous errors kept. Restarts (crashed, vanished or hung agents) are separate: capped backoff
within an iteration; exhausting them is a strike. merge_conflict and red_violation fail at once.
"""

from __future__ import annotations

import json
from typing import Any

from hatchctl.engine.deps import Deps
from hatchctl.engine.policy import backoff_delay
from hatchctl.engine.prompt import factory_handover
from hatchctl.errors import SummaryError
from hatchctl.state.ids import branch_name
from hatchctl.state.rows import TaskRow, iso
from hatchctl.state.store import Tx
from hatchctl.state.summary import read_agent_file

IMMEDIATE = frozenset({"merge_conflict", "red_violation", "ref_tampering", "unsafe_path"})


def _error(
    tx: Tx,
    task: TaskRow,
    role: str | None,
    cls: str | None,
    reason: str,
    detail: str,
    run_id: int | None,
) -> dict[str, Any]:
    return {
        "at": iso(tx.now),
        "iteration": task.iteration,
        "role": role,
        "class": cls,
        "reason": reason,
        "detail": detail[:1000],
        "run_id": run_id,
    }


def strike(
    deps: Deps,
    tx: Tx,
    task: TaskRow,
    *,
    role: str | None,
    failure_class: str,
    reason: str,
    detail: str,
    run_id: int | None = None,
    findings: list[str] | None = None,
) -> TaskRow:
    """Record a failed cycle. The task fails at max_strikes (or at once for some classes),
    otherwise the factory runs again (iteration + 1) with the errors and findings as handover."""
    current = tx.task(task.id)
    assert current is not None
    strikes = current.strikes + 1
    errors = [*current.errors, _error(tx, current, role, failure_class, reason, detail, run_id)]
    common = dict(
        strikes=strikes,
        errors=errors,
        failure_class=failure_class,
        last_error=f"{reason}: {detail}"[:500],
        next_retry_at=None,
        resume_phase=None,
    )
    tx.event(
        "strike",
        task_id=task.id,
        run_id=run_id,
        data={"strike": strikes, "class": failure_class, "reason": reason, "detail": detail[:500]},
    )
    deps.log.info(
        "task_strike", task_id=task.id, strike=strikes, failure_class=failure_class, reason=reason
    )
    if strikes >= deps.limits.max_strikes or IMMEDIATE & {failure_class, reason}:
        return fail(deps, tx, current, **common)
    nxt = current.iteration + 1
    handover = deps.project.paths.handover_file(task.id, "factory", nxt)
    previous = None
    summary_path = deps.project.paths.summary_file(task.id, "factory", current.iteration)
    if summary_path.exists():
        try:
            previous = json.loads(read_agent_file(summary_path, "summary"))
        except (SummaryError, ValueError):
            previous = None
    handover.parent.mkdir(parents=True, exist_ok=True)
    updated = tx.update_task(
        task.id, **common, iteration=nxt, attempt=0, restarts=0, phase="factory", pane_id=None
    )
    handover.write_text(factory_handover(updated, findings or [], previous), encoding="utf-8")
    return updated


def fail(deps: Deps, tx: Tx, task: TaskRow, **fields: Any) -> TaskRow:
    row = tx.transition_task(
        task.id,
        "active",
        "failed",
        kind="task_failed",
        phase=None,
        pane_id=None,
        data={"class": fields.get("failure_class"), "error": fields.get("last_error")},
        **fields,
    )
    tx.release_locks(task.id)
    deps.notifier.send(
        "task_failed",
        task_id=task.id,
        failure_class=row.failure_class,
        error=row.last_error,
        strikes=row.strikes,
    )
    deps.log.warning(
        "task_failed", task_id=task.id, failure_class=row.failure_class, error=row.last_error
    )
    return row


def complete(deps: Deps, tx: Tx, task: TaskRow, data: dict[str, Any]) -> TaskRow:
    row = tx.transition_task(
        task.id,
        "active",
        "completed",
        kind="task_completed",
        phase=None,
        pane_id=None,
        next_retry_at=None,
        resume_phase=None,
        last_error=None,
        data=data,
    )
    tx.release_locks(task.id)
    deps.notifier.send(
        "task_completed", task_id=task.id, iteration=row.iteration, strikes=row.strikes
    )
    deps.log.info("task_completed", task_id=task.id, **data)
    return row


def schedule_restart(
    deps: Deps,
    tx: Tx,
    task: TaskRow,
    *,
    role: str,
    reason: str,
    detail: str,
    run_id: int | None,
    stable_for: float = 0.0,
    failure_class: str = "agent",
) -> TaskRow:
    """Restart the role after a backoff, keeping the worktree; a strike once the budget is spent."""
    current = tx.task(task.id)
    assert current is not None
    policy = deps.limits.restart
    restarts = 0 if stable_for >= policy.reset_after else current.restarts
    if restarts >= policy.max_restarts:
        return strike(
            deps,
            tx,
            current,
            role=role,
            failure_class=failure_class,
            reason="restart_budget_exhausted",
            detail=f"{reason} after {restarts} restarts: {detail}",
            run_id=run_id,
        )
    restarts += 1
    delay = backoff_delay(restarts, policy, deps.rng)
    tx.event(
        "restart_scheduled",
        task_id=task.id,
        run_id=run_id,
        data={
            "restart": restarts,
            "of": policy.max_restarts,
            "delay": round(delay, 3),
            "reason": reason,
            "detail": detail[:300],
            "role": role,
        },
    )
    deps.log.info(
        "restart_scheduled", task_id=task.id, restart=restarts, delay=delay, reason=reason
    )
    return tx.update_task(
        task.id,
        restarts=restarts,
        phase="backoff",
        resume_phase=role,
        next_retry_at=tx.now + delay,
        pane_id=None,
        last_error=f"{reason}: {detail}"[:500],
    )


def block(deps: Deps, task_id: str) -> None:
    """pending -> blocked: a dependency failed (or is itself blocked)."""
    with deps.store.tx() as tx:
        task = tx.task(task_id)
        if task is None or task.state != "pending":
            return
        states = {d: (tx.task(d) or task).state for d in task.depends_on}
        by = [d for d, state in states.items() if state in ("failed", "blocked")]
        tx.transition_task(
            task_id,
            "pending",
            "blocked",
            kind="task_blocked",
            last_error=f"blocked by {', '.join(by)}",
            data={"by": by},
        )
    deps.notifier.send("task_blocked", task_id=task_id, by=by)


def unblock(deps: Deps, task_id: str) -> None:
    """blocked -> pending: every dependency completed (after a retry)."""
    with deps.store.tx() as tx:
        tx.transition_task(task_id, "blocked", "pending", kind="task_unblocked", last_error=None)


def start(deps: Deps, task_id: str) -> bool:
    """pending -> active, taking the locks on its declared files in the same transaction."""
    with deps.store.tx() as tx:
        task = tx.task(task_id)
        if task is None or task.state != "pending":
            return False
        if tx.acquire_locks(task_id, list(task.files)):
            return False  # another task took one of its files since the plan was made
        tx.transition_task(
            task_id,
            "pending",
            "active",
            kind="task_started",
            phase="factory",
            iteration=max(task.iteration, 1),
            attempt=0,
            restarts=0,
            branch=branch_name(task_id),
            worktree=str(deps.project.paths.worktree(task_id)),
            data={"priority": task.priority, "files": task.files},
        )
    return True


def launch_interrupted(tx: Tx, run_id: int) -> None:
    """A launch the previous supervisor never confirmed and whose ticket was cancelled: the
    agent never started and never will (reconcile, locally and on a host)."""
    tx.transition_run(
        run_id,
        "starting",
        "crashed",
        ended_at=tx.now,
        reason="launch_interrupted",
        data={"note": "the supervisor stopped mid-launch; relaunching"},
    )
