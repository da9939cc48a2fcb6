"""What the supervisor types into an agent's pane (through the courier, engine/courier.py): the
prompt pasted (agents that take it that way), a summary asked for (a stop without one), and
what the courier reports about each delivery. Used by the monitor."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hatchctl.engine import runend
from hatchctl.engine.prompt import SUMMARY_REQUEST
from hatchctl.runtime.delivery import Delivered
from hatchctl.state.rows import RunRow

if TYPE_CHECKING:
    from hatchctl.engine.monitor import Monitor

ACTIVE = ("running", "stalled")  # the run states of a working agent (also monitor.ACTIVE)


def paste_prompt(monitor: Monitor, run: RunRow) -> None:
    if run.prompt_sent or not runend.claimed(monitor.deps, run.id) or not run.pane_id:
        return
    text = monitor._path(run.prompt_path).read_text(encoding="utf-8")
    if not monitor.courier.send(run, text, "prompt"):
        return
    with monitor.deps.store.tx() as tx:
        tx.update_run(run.id, prompt_sent=1)
        tx.event("prompt_pasted", task_id=run.task_id, run_id=run.id, data={"chars": len(text)})


def delivered(monitor: Monitor, run_id: int, kind: str, result: Delivered) -> None:
    """A delivery finished: record it; a prompt that never landed restarts the agent."""
    deps = monitor.deps
    run = deps.store.run(run_id)
    if run is None:
        return
    data = {
        "kind": kind,
        "enters": result.enters,
        "pastes": result.pastes,
        "seconds": round(result.seconds, 3),
        "how": result.how,
        "error": result.error,
    }
    with deps.store.tx() as tx:
        tx.event(
            "delivered" if result.ok else "delivery_failed",
            task_id=run.task_id,
            run_id=run.id,
            data=data,
        )
        if kind == "summary_request" and run.state == "summarizing":
            tx.update_run(run.id, last_request_at=tx.now)  # its timeout starts now
    if not result.ok and kind == "prompt" and run.state in ACTIVE:
        monitor.restart(run, "delivery_failed", f"the prompt was not taken: {result.error}")


def request_or_fail(monitor: Monitor, run: RunRow, reason: str) -> None:
    deps = monitor.deps
    if run.summary_requests < deps.limits.summary_requests and run.pane_id:
        text = SUMMARY_REQUEST.format(path=monitor._path(run.summary_path))
        if not monitor.courier.send(run, text, "summary_request"):
            return  # one is still under way
        with deps.store.tx() as tx:
            if run.state == "summarizing":
                tx.transition_run(run.id, "summarizing", "stopped", data={"note": "asking again"})
            tx.transition_run(
                run.id,
                "stopped",
                "summarizing",
                summary_requests=run.summary_requests + 1,
                last_request_at=tx.now,
                kind="summary_requested",
                data={"request": run.summary_requests + 1},
            )
        return
    detail = f"no valid summary after {run.summary_requests} request(s)"
    monitor._end_and_strike(
        run, "failed", "no_summary", "agent", detail, {"requests": run.summary_requests}
    )
