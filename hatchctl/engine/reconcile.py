"""Reconcile on start: the database's live runs against one ``tmux list-panes -a`` call and the
files written while no supervisor ran. Live agents are adopted, unclaimed launches cancelled,
stray panes closed, locks of inactive tasks released. Finished and vanished runs are then
handled by the monitor's first pass (stop files, or restart by policy).

Only panes tagged with this project (``@hatch_project``, set by ``Tmux.new_window``) are
adopted or killed: any other pane of the agents' session is left alone and reported
(``foreign_panes``). A window hatchctl opened but had not tagged yet (the supervisor died in
between) never ran an agent: the launch ticket is written only after the tag, and the wrapper
exits once the ticket is cancelled."""

from __future__ import annotations

from dataclasses import dataclass, field

from hatchctl.engine import lifecycle, runend
from hatchctl.engine.deps import Deps
from hatchctl.runtime import psinfo
from hatchctl.runtime.tmux import AGENT_SESSION, Pane
from hatchctl.state.ids import PLAN_WINDOW_PREFIX


@dataclass
class ReconcileReport:
    adopted: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    stray_panes: list[str] = field(default_factory=list)
    foreign_panes: list[str] = field(default_factory=list)
    released_locks: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "adopted": self.adopted,
            "cancelled": self.cancelled,
            "stray_panes": self.stray_panes,
            "foreign_panes": self.foreign_panes,
            "released_locks": self.released_locks,
        }


def _claimed_pid(deps: Deps, run_id: int) -> int | None:
    try:
        text = deps.project.paths.claimed(run_id).read_text()
    except OSError:
        return None
    for token in text.split():
        if token.startswith("pid=") and token[4:].isdigit():
            return int(token[4:])
    return None


def reconcile(deps: Deps) -> ReconcileReport:
    report = ReconcileReport()
    store = deps.store
    panes: list[Pane] = []
    for p in deps.tmux.list_panes():
        if p.session != AGENT_SESSION:
            continue
        if p.tag == deps.tmux.tag:
            panes.append(p)
        else:  # another project's agent, or a window a user opened: not ours to touch
            report.foreign_panes.append(f"{p.window_name} ({p.pane_id})")
    by_name: dict[str, Pane] = {p.window_name: p for p in panes if not p.dead}
    live = [r for r in store.runs(live_only=True) if not r.remote]  # hosts: remote.reconcile
    for run in live:
        pane = by_name.get(run.window_name)
        if run.state == "starting":
            if runend.cancel_ticket(deps, run.id):  # the agent never started and never will
                if pane is not None:
                    deps.tmux.kill_pane(pane.pane_id)
                with store.tx() as tx:
                    lifecycle.launch_interrupted(tx, run.id)
                report.cancelled.append(run.id)
                continue
            pid = pane.pid if pane is not None else _claimed_pid(deps, run.id)
            with store.tx() as tx:
                tx.transition_run(
                    run.id,
                    "starting",
                    "running",
                    pane_id=pane.pane_id if pane else None,
                    pane_pid=pid,
                    running_at=run.started_at,
                    last_activity_at=tx.now,
                    data={"note": "adopted a launch the previous supervisor had not confirmed"},
                )
            report.adopted.append(run.id)
            continue
        if pane is not None and psinfo.alive(pane.pid):
            if (pane.pane_id, pane.pid) != (run.pane_id, run.pane_pid):
                with store.tx() as tx:
                    tx.update_run(run.id, pane_id=pane.pane_id, pane_pid=pane.pid)
            report.adopted.append(run.id)
    if any(r.remote for r in store.runs(live_only=True)):
        adopted, cancelled = deps.remote.reconcile()
        report.adopted += adopted
        report.cancelled += cancelled
    live_names = {r.window_name for r in store.runs(live_only=True)}
    finished = {r.window_name: r for r in store.runs() if r.window_name not in live_names}
    for pane in panes:
        if pane.window_name == "home" or pane.window_name in live_names:
            continue
        if pane.window_name.startswith(PLAN_WINDOW_PREFIX):
            continue  # `hatchctl plan` runs and ends its planner itself
        old = finished.get(pane.window_name)
        if old is not None:  # a pane outliving its run: kill the whole process tree
            runend.kill(deps, old)
        else:
            deps.tmux.kill_pane(pane.pane_id)
        report.stray_panes.append(f"{pane.window_name} ({pane.pane_id})")
    active = {t.id for t in store.tasks() if t.state == "active"}
    with store.tx() as tx:
        for task_id in set(store.locks().values()) - active:
            report.released_locks += tx.release_locks(task_id)
        tx.event("reconciled", data=report.as_dict())
    deps.log.info("reconciled", **report.as_dict())
    if report.foreign_panes:
        deps.log.warning("foreign_panes_left_alone", panes=report.foreign_panes)
    return report
