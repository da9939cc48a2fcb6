"""Sync specs into the store: new specs become pending; edits to active tasks wait for the run."""

from __future__ import annotations

from dataclasses import dataclass, field

from hatchctl.state.spec import TaskSpec
from hatchctl.state.store import Store


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)  # edited while active: reported, not applied
    missing: list[str] = field(default_factory=list)  # in the store, no longer in the specs


def _spec_fields(spec: TaskSpec) -> dict[str, object]:
    return {
        "title": spec.title,
        "priority": spec.priority,
        "depends_on": list(spec.depends_on),
        "files": list(spec.files),
        "spec_path": spec.path,
        "spec_digest": spec.digest,
        "pending_digest": None,
    }


def sync_specs(store: Store, specs: dict[str, TaskSpec]) -> SyncReport:
    report = SyncReport()
    with store.tx() as tx:
        known = {
            r[0]: r
            for r in tx.conn.execute("SELECT id, state, spec_digest, pending_digest FROM tasks")
        }
        for spec in specs.values():
            row = known.get(spec.id)
            if row is None:
                tx.insert_task(spec.id, **_spec_fields(spec))
                report.added.append(spec.id)
                continue
            _, state, digest, pending = row
            if digest == spec.digest:
                if pending is not None:  # edited back to what is running
                    tx.update_task(spec.id, pending_digest=None)
                continue
            if state == "active":
                if pending != spec.digest:
                    tx.update_task(spec.id, pending_digest=spec.digest)
                    tx.event(
                        "spec_changed_during_run",
                        task_id=spec.id,
                        data={"path": spec.path, "note": "applied when the task is next requeued"},
                    )
                report.deferred.append(spec.id)
                continue
            tx.update_task(spec.id, **_spec_fields(spec))
            tx.event("spec_updated", task_id=spec.id, data={"path": spec.path})
            report.updated.append(spec.id)
        report.missing = sorted(set(known) - set(specs))
    return report
