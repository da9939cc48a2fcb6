"""current_state.json, coalesced and incremental (issue 11): the committing thread only marks the
snapshot dirty; a background writer exports the newest state (at most every interval), flush and
close write what is pending, a process that commits and exits still leaves a current file, and
the incremental document is byte for byte the one ``status --json`` builds. No timings asserted:
an interval of an hour stands for "not before the next flush"."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from hatchctl.state.snapshot import SnapshotExporter
from hatchctl.state.statusdoc import status_document
from hatchctl.state.store import Store

HOUR = 3600.0


def wait_until(predicate: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def reference(store: Store, tmp: Path) -> str:
    doc = status_document(store, "p", tmp / "supervisor.lock")
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def open_store(tmp: Path, interval: float = HOUR) -> tuple[Store, SnapshotExporter, Path]:
    snap = tmp / "current_state.json"
    exporter = SnapshotExporter(snap, "p", tmp / "supervisor.lock", interval=interval)
    return Store(tmp / "hatch.db", on_commit=exporter), exporter, snap


def add_run(store: Store, task_id: str, metrics: str | None = None) -> int:
    with store.tx() as tx:
        run = tx.insert_run(
            task_id=task_id,
            role="factory",
            iteration=1,
            attempt=len(store.runs(task_id)) + 1,
            window_name="w",
            log_path="l",
            stop_path="s",
            summary_path="m",
            prompt_path="p",
        )
        if metrics is not None:
            tx.update_run(run.id, metrics=metrics)
    return run.id


def test_commit_marks_dirty_and_the_writer_coalesces_until_flush(tmp_path: Path) -> None:
    store, exporter, snap = open_store(tmp_path)
    with store.tx() as tx:
        tx.insert_task("A", title="a")
    # the first commit after a quiet time is written at once, by the background writer
    wait_until(lambda: exporter.exports == 1, "the first export")
    assert json.loads(snap.read_text())["counts"]["pending"] == 1
    for i in range(30):  # within the interval: coalesced, nothing written on these commits
        with store.tx() as tx:
            tx.update_task("A", attempt=i + 1)
    with store.tx() as tx:
        tx.transition_task("A", "pending", "active")
    assert exporter.exports == 1
    assert json.loads(snap.read_text())["counts"]["pending"] == 1  # not yet
    store.flush()  # e.g. before a command exits: the newest state, on this thread
    assert exporter.exports == 2
    doc = json.loads(snap.read_text())
    assert doc["counts"]["active"] == 1 and doc["tasks"][0]["attempt"] == 30
    store.flush()  # nothing pending: nothing written
    assert exporter.exports == 2
    assert not list(tmp_path.glob(".current_state.json.*.tmp"))
    assert stat.S_IMODE(snap.stat().st_mode) == 0o600
    store.close()


def test_exported_within_the_interval_without_a_flush(tmp_path: Path) -> None:
    store, _, snap = open_store(tmp_path, interval=0.05)
    with store.tx() as tx:
        tx.insert_task("A", title="a")
    with store.tx() as tx:
        tx.transition_task("A", "pending", "active")
    # the trailing export: the last commit reaches the file with no further commit or flush
    wait_until(
        lambda: snap.exists() and json.loads(snap.read_text())["counts"]["active"] == 1, "export"
    )
    store.close()


def test_incremental_document_is_the_status_document(tmp_path: Path) -> None:
    store, exporter, snap = open_store(tmp_path)
    with store.tx() as tx:
        for i in range(40):
            tx.insert_task(f"T{i:02d}", title=f'task {i} \u00e9"\n', priority=i % 7, files=["a.py"])
        tx.set_meta("paused", "1")
        tx.set_meta("pause_reason", "because")
    add_run(store, "T01", json.dumps({"tokens_in": 10, "cost_usd": 0.5, "model": "sonnet"}))
    add_run(store, "T01", json.dumps({"tokens_in": 5, "turns": 2}))
    add_run(store, "T02", "not json")  # ignored, as status --json ignores it
    add_run(store, "T03")
    store.flush()
    assert snap.read_text() == reference(store, tmp_path)
    encoded = exporter._builder.encoded

    with store.tx() as tx:  # a state change, a reorder, an error list, a new task
        tx.transition_task("T05", "pending", "active", phase="factory", pane_id="%3")
        tx.transition_task("T05", "active", "failed", errors=[{"reason": "x", "at": 1}])
        tx.update_task("T06", priority=99)
        tx.insert_task("T99", title="new", depends_on=["T01"])
        tx.set_meta("paused", "0")
    store.flush()
    assert snap.read_text() == reference(store, tmp_path)
    assert exporter._builder.encoded - encoded == 3  # T05, T06, T99: nothing else re-encoded

    run = store.runs("T03")[0].id
    with store.tx() as tx:  # metrics of a run change: only that task's totals
        tx.update_run(run, metrics=json.dumps({"tokens_out": 7, "cost_usd": 0.25}))
    store.flush()
    assert snap.read_text() == reference(store, tmp_path)
    assert exporter._builder.encoded - encoded == 4

    written = exporter.exports - exporter.unchanged
    with store.tx() as tx:  # activity of a run only: the document is the same, nothing written
        tx.update_run(run, last_activity_at=123.0, log_size=10)
    store.flush()
    assert exporter.exports - exporter.unchanged == written
    assert snap.read_text() == reference(store, tmp_path)
    store.close()


def test_a_second_process_commit_is_seen_newest_wins(tmp_path: Path) -> None:
    """Two exporters (two processes' worth) on one database: whoever writes last read the
    database last, so the file holds the newest state."""
    store, _, snap = open_store(tmp_path)
    other = Store(
        tmp_path / "hatch.db",
        on_commit=SnapshotExporter(snap, "p", tmp_path / "supervisor.lock", interval=HOUR),
    )
    with store.tx() as tx:
        tx.insert_task("A", title="a")
    store.flush()
    with other.tx() as tx:
        tx.transition_task("A", "pending", "active")
    other.close()
    assert json.loads(snap.read_text())["tasks"][0]["state"] == "active"
    with store.tx() as tx:
        tx.update_task("A", attempt=4)
    store.close()
    doc = json.loads(snap.read_text())
    assert (doc["tasks"][0]["state"], doc["tasks"][0]["attempt"]) == ("active", 4)


def test_many_threads_committing_at_once(tmp_path: Path) -> None:
    store, _, snap = open_store(tmp_path, interval=0.01)
    with store.tx() as tx:
        for i in range(8):
            tx.insert_task(f"T{i}", title=str(i))

    def work(i: int) -> None:
        for k in range(25):
            with store.tx() as tx:
                tx.update_task(f"T{i}", attempt=k + 1)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    doc = json.loads(snap.read_text())
    assert [t["attempt"] for t in doc["tasks"]] == [25] * 8
    assert not list(tmp_path.glob(".current_state.json.*.tmp"))


EXITING = textwrap.dedent("""
    import sys
    from pathlib import Path
    from hatchctl.state.snapshot import SnapshotExporter
    from hatchctl.state.store import Store
    tmp = Path(sys.argv[1])
    exporter = SnapshotExporter(tmp / "current_state.json", "p", tmp / "supervisor.lock",
                                interval=3600)
    store = Store(tmp / "hatch.db", on_commit=exporter)
    with store.tx() as tx:
        tx.insert_task("A", title="a")
    with store.tx() as tx:
        tx.transition_task("A", "pending", "active")
    if sys.argv[2] == "close":
        store.close()
    elif sys.argv[2] == "raise":
        raise SystemExit(3)
    # "exit": neither closed nor flushed; the interpreter's exit writes it
""")


@pytest.mark.parametrize("how", ["close", "exit", "raise"])
def test_a_process_that_commits_and_exits_leaves_a_current_file(tmp_path: Path, how: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", EXITING, str(tmp_path), how],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == (3 if how == "raise" else 0), out.stderr
    snap = tmp_path / "current_state.json"
    assert json.loads(snap.read_text())["counts"]["active"] == 1
    assert stat.S_IMODE(snap.stat().st_mode) == 0o600
    assert not list(tmp_path.glob(".current_state.json.*.tmp"))


def test_a_failing_export_never_fails_a_commit(tmp_path: Path) -> None:
    exporter = SnapshotExporter(
        tmp_path / "gone" / "current_state.json", "p", tmp_path / "lock", interval=HOUR
    )
    store = Store(tmp_path / "hatch.db", on_commit=exporter)
    with store.tx() as tx:
        tx.insert_task("A", title="a")
    wait_until(lambda: exporter.failures >= 1, "the failed export")
    with store.tx() as tx:
        tx.transition_task("A", "pending", "active")
    store.flush()  # logged, not raised
    (tmp_path / "gone").mkdir()
    store.flush()  # retried: the last failure left it pending
    assert (
        json.loads((tmp_path / "gone" / "current_state.json").read_text())["counts"]["active"] == 1
    )
    store.close()


def test_a_deleted_file_is_written_again_even_if_nothing_changed(tmp_path: Path) -> None:
    store, _, snap = open_store(tmp_path)
    with store.tx() as tx:
        tx.insert_task("A", title="a")
    store.flush()
    snap.unlink()
    with store.tx() as tx:
        tx.event("note")
    store.flush()
    assert snap.read_text() == reference(store, tmp_path)
    store.close()
