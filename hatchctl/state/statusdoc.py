"""The status document (``status --json``, ``current_state.json``): ``status_document`` builds it
from the store in one go; ``DocumentBuilder`` renders the same bytes incrementally, re-reading
and re-encoding only the tasks whose row or runs' metrics changed (the snapshot exporter's way,
state/snapshot.py).
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

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
        "held": bool(task.held),
        "feature": task.feature,
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


# -- the incremental document ---------------------------------------------------------------
# Every write through Tx bumps a task's version and update time; the state and priority are in
# the key too, so a state set with plain SQL is seen as well.
_FINGERPRINT = (
    "SELECT COUNT(*), TOTAL(version), TOTAL(updated_at), TOTAL(priority), "  # noqa: S608 (constants)
    + ", ".join(f"SUM(state = '{s}')" for s in TASK_STATES)
    + " FROM tasks"
)
_ORDER = "SELECT id, version, updated_at, state, priority FROM tasks ORDER BY priority DESC, id"
_METRICS = "SELECT task_id, metrics FROM runs WHERE metrics != '{}' ORDER BY id"
_METRICS_FINGERPRINT = "SELECT COUNT(*), TOTAL(version), MAX(id) FROM runs WHERE metrics != '{}'"
_CHUNK = 500  # ids per "WHERE id IN (...)"


def _fragment(doc: dict[str, Any]) -> str:
    """One task as ``json.dumps(status, indent=2, sort_keys=True)`` lays it out in the list."""
    return "    " + json.dumps(doc, indent=2, sort_keys=True).replace("\n", "\n    ")


class _Entry:
    """One task's part of the document: its change key, row, metrics and encoded text."""

    __slots__ = ("key", "metrics", "row", "text")

    def __init__(
        self, key: tuple[Any, ...], row: TaskRow, task_metrics: dict[str, Any], text: str
    ) -> None:
        self.key = key
        self.row = row
        self.metrics = task_metrics
        self.text = text


class DocumentBuilder:
    """Renders the status document exactly as ``json.dumps(status_document(...), indent=2,
    sort_keys=True) + "\\n"`` would, re-reading and re-encoding only the tasks that changed."""

    def __init__(self, project: str, lock_path: Path) -> None:
        self.project = project
        self.lock_path = lock_path
        self._entries: dict[str, _Entry] = {}
        self._order: list[str] = []
        self._counts: dict[str, int] = dict.fromkeys(TASK_STATES, 0)
        self._fingerprint: tuple[Any, ...] | None = None
        self._metric_rows: list[tuple[str, str]] | None = None
        self._metrics_fingerprint: tuple[Any, ...] | None = None
        self._parsed: dict[str, dict[str, Any] | None] = {}
        self._task_metrics: dict[str, dict[str, Any]] = {}
        self._total: dict[str, Any] = {}
        self._head: dict[str, Any] | None = None
        self.encoded = 0  # tasks (re-)encoded so far: what being incremental saves

    def render(self, conn: sqlite3.Connection, *, force: bool = False) -> bytes | None:
        """The document, or None when it is the same as the last one rendered (and not
        ``force``)."""
        conn.execute("BEGIN")  # one read snapshot for every query
        try:
            fingerprint = tuple(conn.execute(_FINGERPRINT).fetchone())
            order: list[tuple[Any, ...]] | None = None
            stale: list[tuple[Any, ...]] = []
            fresh: dict[str, TaskRow] = {}
            if fingerprint != self._fingerprint:
                order = conn.execute(_ORDER).fetchall()
                entries = self._entries
                stale = [k for k in order if (e := entries.get(k[0])) is None or e.key != k]
                fresh = self._fetch(conn, [k[0] for k in stale], whole=len(stale) > len(order) // 2)
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            metrics_fingerprint = tuple(conn.execute(_METRICS_FINGERPRINT).fetchone())
            metric_rows = None
            if metrics_fingerprint != self._metrics_fingerprint:
                metric_rows = conn.execute(_METRICS).fetchall()
        finally:
            conn.execute("COMMIT")
        metrics_changed = set()
        if metric_rows is not None:
            metrics_changed = self._update_metrics(metric_rows)
            self._metrics_fingerprint = metrics_fingerprint
        lock = probe(self.lock_path)
        head = {
            "project": self.project,
            "supervisor": {"running": lock.held, "pid": lock.pid if lock.held else None},
            "paused": meta.get("paused") == "1",
            "pause_reason": meta.get("pause_reason") or None,
            "metrics": self._total,
        }
        if order is None and not metrics_changed and head == self._head and not force:
            return None
        self._fingerprint, self._head = fingerprint, head
        if order is not None:
            self._reorder(order, stale, fresh)
        for tid in metrics_changed:
            entry = self._entries.get(tid)
            if entry is not None and entry.metrics != self._task_metrics.get(tid, {}):
                self._encode(entry.key, entry.row)
        text = json.dumps({**head, "counts": self._counts}, indent=2, sort_keys=True)
        entries = self._entries
        fragments = [entries[tid].text for tid in self._order]
        # "tasks" sorts after every other key: it goes last, where json.dumps would put it
        tasks = "[\n" + ",\n".join(fragments) + "\n  ]" if fragments else "[]"
        return (text[: -len("\n}")] + ',\n  "tasks": ' + tasks + "\n}\n").encode()

    def _reorder(
        self, order: list[tuple[Any, ...]], stale: list[tuple[Any, ...]], fresh: dict[str, TaskRow]
    ) -> None:
        ids = [k[0] for k in order]
        entries = self._entries
        if len(entries) + len(stale) != len(ids):  # some task is gone from the store
            for tid in entries.keys() - set(ids):
                del entries[tid]
        for key in stale:
            self._encode(key, fresh[key[0]])
        self._order = ids
        counts = dict.fromkeys(TASK_STATES, 0)
        counts.update(Counter(k[3] for k in order))
        self._counts = counts

    def _encode(self, key: tuple[Any, ...], row: TaskRow) -> None:
        task_metrics = self._task_metrics.get(row.id, {})
        text = _fragment({**task_json(row), "metrics": task_metrics})
        self._entries[row.id] = _Entry(key, row, task_metrics, text)
        self.encoded += 1

    def _fetch(
        self, conn: sqlite3.Connection, ids: list[str], *, whole: bool
    ) -> dict[str, TaskRow]:
        if not ids:
            return {}
        if whole:
            cursors: Iterable[sqlite3.Cursor] = [conn.execute("SELECT * FROM tasks")]
        else:
            cursors = (
                conn.execute(
                    f"SELECT * FROM tasks WHERE id IN ({', '.join('?' * len(part))})",  # noqa: S608
                    part,
                )
                for part in (ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK))
            )
        out: dict[str, TaskRow] = {}
        for cur in cursors:
            names = [d[0] for d in cur.description]
            for values in cur.fetchall():
                # TaskRow.from_row only needs a mapping of the columns
                row = TaskRow.from_row(cast(sqlite3.Row, dict(zip(names, values, strict=True))))
                out[row.id] = row
        return out

    def _update_metrics(self, rows: list[tuple[str, str]]) -> set[str]:
        """Per-task and project totals, summed in the order ``status_document`` sums them (so
        the figures are the same); recomputed only when some run's metrics changed. Returns the
        tasks whose totals changed."""
        if rows == self._metric_rows:
            return set()
        parsed: dict[str, dict[str, Any] | None] = {}
        per_task: dict[str, list[dict[str, Any]]] = {}
        for task_id, raw in rows:
            if raw in parsed:
                value = parsed[raw]
            elif raw in self._parsed:
                value = parsed[raw] = self._parsed[raw]
            else:
                try:
                    loaded = json.loads(raw)
                    value = loaded if isinstance(loaded, dict) else None
                except ValueError:
                    value = None
                parsed[raw] = value
            if value is not None:
                per_task.setdefault(task_id, []).append(value)
        before = self._task_metrics
        after = {tid: metrics.total(ms) for tid, ms in per_task.items()}
        self._parsed, self._metric_rows, self._task_metrics = parsed, rows, after
        self._total = metrics.total(after.values())
        return {tid for tid in before.keys() | after.keys() if before.get(tid) != after.get(tid)}
