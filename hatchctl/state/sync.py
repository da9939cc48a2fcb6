"""Sync specs into the store: new specs become pending; edits to active tasks wait for the run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hatchctl.errors import SummaryError
from hatchctl.state.spec import MAX_SPEC_BYTES, TaskSpec, spec_digest
from hatchctl.state.store import Store
from hatchctl.state.summary import read_agent_file


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)  # edited while active: reported, not applied
    missing: list[str] = field(default_factory=list)  # in the store, no longer in the specs


def specs_unchanged(store: Store, specs_dir: Path) -> bool:
    """Every spec file is byte for byte what the store last synced (path and digest), so a
    client need not parse them all again (10 000 specs: about a second of YAML)."""
    stored: set[tuple[str, str]] = set()
    for task in store.tasks():
        if task.pending_digest is not None:
            return False
        stored.add((task.spec_path, task.spec_digest))
    found: set[tuple[str, str]] = set()
    if not specs_dir.is_dir():
        return False
    for path in specs_dir.glob("*.md"):
        try:
            data = read_agent_file(path, "spec", MAX_SPEC_BYTES)
        except SummaryError:
            return False
        found.add((str(path), spec_digest(data)))
    return found == stored


def _spec_fields(spec: TaskSpec) -> dict[str, object]:
    return {
        "title": spec.title,
        "priority": spec.priority,
        "depends_on": list(spec.depends_on),
        "files": list(spec.files),
        "spec_path": spec.path,
        "spec_digest": spec.digest,
        "feature": spec.feature,
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
