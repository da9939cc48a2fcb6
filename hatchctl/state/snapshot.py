"""``current_state.json``: an atomic snapshot of the store, the same document as ``status --json``."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from hatchctl.state import metrics
from hatchctl.state.lockfile import probe
from hatchctl.state.rows import TaskRow, iso
from hatchctl.state.store import Store
from hatchctl.state.transitions import TASK_STATES


def task_json(task: TaskRow, pane_id: str | None = None) -> dict[str, Any]:
    return {
        "id": task.id,
        "title": task.title,
        "state": task.state,
        "phase": task.phase,
        "iteration": task.iteration,
        "attempt": task.attempt,
        "strikes": task.strikes,
        "restarts": task.restarts,
        "depends_on": task.depends_on,
        "branch": task.branch,
        "worktree": task.worktree,
        "pane_id": pane_id if pane_id is not None else task.pane_id,
        "failure_class": task.failure_class,
        "last_error": task.last_error,
        "errors": task.errors,
        "next_retry_at": iso(task.next_retry_at),
        "spec_changed": task.pending_digest is not None,
    }


def status_document(store: Store, project: str, lock_path: Path) -> dict[str, Any]:
    with store.read() as conn:
        tasks = [
            TaskRow.from_row(r)
            for r in conn.execute("SELECT * FROM tasks ORDER BY priority DESC, id")
        ]
        meta = {r[0]: r[1] for r in conn.execute("SELECT key, value FROM meta")}
        per_task: dict[str, list[dict[str, Any]]] = {}
        for task_id, raw in conn.execute("SELECT task_id, metrics FROM runs WHERE metrics != '{}'"):
            try:
                per_task.setdefault(task_id, []).append(json.loads(raw))
            except ValueError:
                continue
    task_metrics = {tid: metrics.total(ms) for tid, ms in per_task.items()}
    counts = dict.fromkeys(TASK_STATES, 0)
    for t in tasks:
        counts[t.state] = counts.get(t.state, 0) + 1
    lock = probe(lock_path)
    return {
        "project": project,
        "supervisor": {"running": lock.held, "pid": lock.pid if lock.held else None},
        "paused": meta.get("paused") == "1",
        "pause_reason": meta.get("pause_reason") or None,
        "counts": counts,
        "metrics": metrics.total(task_metrics.values()),
        "tasks": [{**task_json(t), "metrics": task_metrics.get(t.id, {})} for t in tasks],
    }


def write_atomic(path: Path, data: bytes) -> None:
    """temp file in the same directory, fsync, rename: readers see the old or the new file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class SnapshotExporter:
    """The store's ``on_commit`` callback. Serialised by an flock so the newest state wins."""

    def __init__(self, path: Path, project: str, lock_path: Path) -> None:
        self.path = path
        self.project = project
        self.lock_path = lock_path

    def __call__(self, store: Store) -> None:
        guard = self.path.with_name(self.path.name + ".lock")
        fd = os.open(guard, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            doc = status_document(store, self.project, self.lock_path)
            write_atomic(self.path, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
        finally:
            os.close(fd)
