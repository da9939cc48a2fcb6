"""A big project's store (10 000 tasks in every state, two runs with metrics per finished task,
100 000 events), opened as hatchctl opens it (`Project.open_store`, snapshot exporter on): compare-
and-set transitions per second, before and after issue 11 in the same run.

* without any exporter (the floor);
* before: the exporter as it was (bench/bigstore.py LegacyExporter: the whole current_state.json
  re-read, re-encoded and rewritten after every commit, on the committing thread);
* after: as ``Project.open_store`` opens it now (coalesced, incremental, in the background), with
  the final ``close()`` (which flushes) counted in the time, and the file checked to hold the
  final state.

Usage: bench_store_scale.py [--tasks 10000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bigstore import LegacyExporter, make_project, populate

from hatchctl import logsetup
from hatchctl.project import Project
from hatchctl.state.snapshot import SnapshotExporter
from hatchctl.state.statusdoc import DocumentBuilder, status_document
from hatchctl.state.store import Store

CYCLE = {"pending": "active", "active": "failed", "failed": "pending"}


def transitions(store: Store, ids: list[str], budget: float, cap: int) -> tuple[int, float]:
    """Cycle tasks pending -> active -> failed -> pending until ``cap`` transitions or ``budget``
    seconds. Returns (count, seconds)."""
    states = {tid: "pending" for tid in ids}
    n = 0
    t0 = time.perf_counter()
    while n < cap and time.perf_counter() - t0 < budget:
        tid = ids[n % len(ids)]
        with store.tx() as tx:
            tx.transition_task(tid, states[tid], CYCLE[states[tid]])
        states[tid] = CYCLE[states[tid]]
        n += 1
    return n, time.perf_counter() - t0


def reset(store: Store, ids: list[str]) -> None:
    with store.tx() as tx:
        for tid in ids:
            state = tx.task(tid)
            assert state is not None
            if state.state == "active":
                tx.transition_task(tid, "active", "failed")
            if state.state != "pending":
                tx.transition_task(tid, "failed", "pending")


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0, help="time per variant")
    args = parser.parse_args()
    logsetup.configure(None)
    with tempfile.TemporaryDirectory(prefix="hatch-bench-scale-") as tmp:
        root = Path(tmp) / "big"
        make_project(root)
        project = Project.find(root)
        project.paths.ensure()
        t0 = time.perf_counter()
        plain = Store(project.paths.db)
        populate(plain, args.tasks)
        built = time.perf_counter() - t0
        counts = {
            t: plain._query(f"SELECT COUNT(*) FROM {t}")[0][0] for t in ("tasks", "runs", "events")
        }
        # the 20 tasks we cycle: pending ones, as a supervisor moves its active tasks
        ids = [
            r[0]
            for r in plain._query(
                "SELECT id FROM tasks WHERE state = 'pending' ORDER BY id LIMIT 20"
            )
        ]
        print(
            f"store scale: {counts['tasks']} tasks, {counts['runs']} runs, {counts['events']} "
            f"events (built in {built:.1f}s); cycling {len(ids)} tasks for {args.seconds:g}s "
            f"per variant ({2 * args.seconds:g}s before)"
        )
        snap = project.paths.snapshot

        # the cost of one export of the whole document, then of an incremental one
        doc_time = timed(
            lambda: status_document(plain, project.name, project.paths.supervisor_lock)
        )
        builder = DocumentBuilder(project.name, project.paths.supervisor_lock)
        conn = sqlite3.connect(str(project.paths.db), isolation_level=None)
        cold = timed(lambda: builder.render(conn, force=True))
        with plain.tx() as tx:
            tx.update_task(ids[0], attempt=1)
        warm = timed(lambda: builder.render(conn))
        unchanged = timed(lambda: builder.render(conn))
        conn.close()
        print(
            f"  one export: status_document {doc_time * 1000:.0f}ms (+ json.dumps, fsync); "
            f"incremental document: first {cold * 1000:.0f}ms, one task changed "
            f"{warm * 1000:.1f}ms, nothing changed {unchanged * 1000:.1f}ms"
        )

        n, secs = transitions(plain, ids, args.seconds, 10**9)
        floor = n / secs
        print(f"  no exporter:            {floor:8.1f} transitions/s ({n} in {secs:.1f}s)")
        plain.close()

        reset_store = Store(project.paths.db)
        legacy = Store(
            project.paths.db,
            on_commit=LegacyExporter(snap, project.name, project.paths.supervisor_lock),
        )
        reset(reset_store, ids)
        n, secs = transitions(legacy, ids, 2 * args.seconds, 10**9)
        before = n / secs
        print(
            f"  before (export after every commit): {before:8.2f} transitions/s ({n} in "
            f"{secs:.1f}s; {secs / n * 1000:.0f}ms per transition)"
        )
        legacy.close()

        reset(reset_store, ids)
        store = project.open_store()  # as every hatchctl process opens it
        exporter = store.on_commit
        assert isinstance(exporter, SnapshotExporter)
        n, secs = transitions(store, ids, args.seconds, 10**9)
        close = timed(store.close)
        after = n / (secs + close)
        final = {t["id"]: t["state"] for t in json.loads(snap.read_text())["tasks"]}
        check = Store(project.paths.db)
        truth = {t.id: t.state for t in check.tasks()}
        reset_store.close()
        check.close()
        assert final == truth, "the snapshot does not hold the final state"
        written = exporter.exports - exporter.unchanged
        print(
            f"  after (coalesced, incremental): {after:8.1f} transitions/s ({n} in {secs:.1f}s "
            f"+ close/flush {close * 1000:.0f}ms; {exporter.exports} exports in the background "
            f"and on close, {written} files written; the file holds the final state)"
        )
        print(
            f"  after/before: {after / before:.0f}x; after/no exporter: {after / floor:.2f}x; "
            f"snapshot {snap.stat().st_size / 1e6:.1f} MB"
        )
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
