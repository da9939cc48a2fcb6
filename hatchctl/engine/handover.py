"""A run that succeeded hands its task on: factory -> verify; QA approved -> review (when a
person reviews) or merge; QA rejected -> a strike. Written in the transaction that records the
run's success (Monitor.succeed)."""

from __future__ import annotations

from hatchctl.engine import lifecycle
from hatchctl.engine.deps import Deps
from hatchctl.state.rows import RunRow
from hatchctl.state.spec import TaskSpec
from hatchctl.state.store import Tx
from hatchctl.state.summary import Summary


def advance(deps: Deps, specs: dict[str, TaskSpec], tx: Tx, run: RunRow, summary: Summary) -> None:
    task = tx.task(run.task_id)
    assert task is not None
    if run.role == "factory":
        tx.update_task(task.id, phase="verify", pane_id=None)
        tx.event(
            "handover",
            task_id=task.id,
            run_id=run.id,
            data={"from": "factory", "to": "verify", "status": summary.status},
        )
    elif summary.status == "approved" and needs_review(deps, specs, task.id):
        tx.update_task(task.id, phase="review", pane_id=None)
        tx.event("handover", task_id=task.id, run_id=run.id, data={"from": "qa", "to": "review"})
        tx.event("review_waiting", task_id=task.id, run_id=run.id, data={"qa": summary.status})
        deps.notifier.send("review_waiting", task_id=task.id, title=task.title)
    elif summary.status == "approved":
        tx.update_task(task.id, phase="merge", pane_id=None)
        tx.event("handover", task_id=task.id, run_id=run.id, data={"from": "qa", "to": "merge"})
    else:
        findings = summary.finding_texts()
        lifecycle.strike(
            deps,
            tx,
            task,
            role="qa",
            failure_class="code",
            reason="qa_rejected",
            detail="; ".join(findings)[:500] or "rejected without findings",
            run_id=run.id,
            findings=findings,
        )


def needs_review(deps: Deps, specs: dict[str, TaskSpec], task_id: str) -> bool:
    spec = specs.get(task_id)
    wanted = spec.review if spec is not None else None
    return (wanted or deps.project.config.project.review) == "human"
