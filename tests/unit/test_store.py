from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hatchctl.errors import StoreBusyError, StoreError, TransitionError
from hatchctl.state.snapshot import SnapshotExporter
from hatchctl.state.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "hatch.db", busy_timeout=0.5)
    with s.tx() as tx:
        tx.insert_task("T1", title="one")
        tx.insert_task("T2", title="two", depends_on=["T1"])
    return s


def test_compare_and_set_transition_appends_event(store: Store) -> None:
    with store.tx() as tx:
        row = tx.transition_task("T1", "pending", "active", phase="factory", data={"why": "test"})
    assert (row.state, row.phase, row.version) == ("active", "factory", 1)
    ev = store.events("T1")[-1]
    assert (ev.kind, ev.from_state, ev.to_state, ev.data) == (
        "task_state",
        "pending",
        "active",
        {"why": "test"},
    )
    with pytest.raises(TransitionError, match="T1 is active, expected pending"):
        with store.tx() as tx:
            tx.transition_task("T1", "pending", "active")
    assert len(store.events("T1")) == 2  # the refused transaction left nothing behind


def test_transition_not_in_table_is_refused_in_code(store: Store) -> None:
    with pytest.raises(TransitionError, match="pending -> completed is not allowed"):
        with store.tx() as tx:
            tx.transition_task("T1", "pending", "completed")
    task = store.task("T1")
    assert task is not None and task.state == "pending"


def test_plain_sql_invalid_transition_rejected_by_trigger(tmp_path: Path, store: Store) -> None:
    conn = sqlite3.connect(tmp_path / "hatch.db")
    with pytest.raises(sqlite3.IntegrityError, match="invalid task transition"):
        conn.execute("UPDATE tasks SET state = 'completed' WHERE id = 'T1'")
    with pytest.raises(sqlite3.IntegrityError, match="invalid task transition"):
        conn.execute("UPDATE tasks SET state = 'bogus' WHERE id = 'T1'")
    conn.execute("UPDATE tasks SET state = 'active' WHERE id = 'T1'")  # allowed by the table
    conn.commit()
    with pytest.raises(sqlite3.IntegrityError, match="a new task must start pending"):
        conn.execute(
            "INSERT INTO tasks(id, state, created_at, updated_at) VALUES ('X', 'completed', 0, 0)"
        )
    with pytest.raises(sqlite3.IntegrityError, match="read-only"):
        conn.execute("INSERT INTO transitions VALUES ('task', 'pending', 'completed')")
    with pytest.raises(sqlite3.IntegrityError, match="read-only"):
        conn.execute("DELETE FROM transitions")
    conn.close()
    task = store.task("T1")
    assert task is not None and task.state == "active"


def test_run_transitions_guarded(tmp_path: Path, store: Store) -> None:
    with store.tx() as tx:
        run = tx.insert_run(
            task_id="T1",
            role="factory",
            iteration=1,
            attempt=1,
            window_name="w",
            log_path="l",
            stop_path="s",
            summary_path="m",
            prompt_path="p",
        )
        tx.transition_run(run.id, "starting", "running", pane_id="%1")
    conn = sqlite3.connect(tmp_path / "hatch.db")
    with pytest.raises(sqlite3.IntegrityError, match="invalid run transition"):
        conn.execute("UPDATE runs SET state = 'starting' WHERE id = ?", (run.id,))
    conn.close()
    with pytest.raises(TransitionError, match="running -> summarizing is not allowed"):
        with store.tx() as tx:
            tx.transition_run(run.id, "running", "summarizing")
    kinds = [e.kind for e in store.events("T1")]
    assert kinds[-2:] == ["run_created", "run_state"]


def test_file_locks_all_or_nothing(store: Store) -> None:
    with store.tx() as tx:
        assert tx.acquire_locks("T1", ["a.py", "b.py"]) == {}
    with store.tx() as tx:
        assert tx.acquire_locks("T2", ["c.py", "b.py"]) == {"b.py": "T1"}
    assert store.locks() == {"a.py": "T1", "b.py": "T1"}
    with store.tx() as tx:
        assert tx.release_locks("T1") == 2
        assert tx.acquire_locks("T2", ["c.py", "b.py"]) == {}


def test_locked_database_gives_clear_error(tmp_path: Path, store: Store) -> None:
    blocker = sqlite3.connect(tmp_path / "hatch.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreBusyError, match="is locked by another process"):
            with store.tx() as tx:
                tx.update_task("T1", priority=9)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    with store.tx() as tx:  # and it recovers once the lock is gone
        tx.update_task("T1", priority=9)


def test_unreadable_database(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError, match="cannot open state database"):
        Store(bad)


def test_snapshot_is_exported_within_the_interval_and_on_flush(tmp_path: Path) -> None:
    """A commit only marks the snapshot dirty: the background writer exports it within the
    interval (no flush needed), flush() and close() write what is pending on the calling thread,
    the newest state wins, and no temp file is left (details in test_snapshot_export.py)."""
    snap = tmp_path / "current_state.json"
    s = Store(
        tmp_path / "hatch.db",
        on_commit=SnapshotExporter(snap, "p", tmp_path / "supervisor.lock", interval=0.05),
    )
    with s.tx() as tx:
        tx.insert_task("A", title="a")
    deadline = time.monotonic() + 20
    while not (snap.exists() and json.loads(snap.read_text())["counts"]["pending"] == 1):
        assert time.monotonic() < deadline, "never exported"
        time.sleep(0.01)
    with s.tx() as tx:
        tx.transition_task("A", "pending", "active")
    s.flush()
    doc = json.loads(snap.read_text())
    assert doc["counts"]["active"] == 1 and doc["tasks"][0]["state"] == "active"
    with s.tx() as tx:
        tx.update_task("A", attempt=7)
    s.close()
    assert json.loads(snap.read_text())["tasks"][0]["attempt"] == 7
    assert not list(tmp_path.glob(".current_state.json.*.tmp"))


WORKER = textwrap.dedent("""
    import json, random, sys
    from hatchctl.errors import TransitionError
    from hatchctl.state.snapshot import SnapshotExporter
    from hatchctl.state.store import Store
    db, worker, rounds, ntasks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    nxt = {"pending": "active", "active": "failed", "failed": "pending"}
    db = __import__("pathlib").Path(db)
    exporter = SnapshotExporter(db.parent / "current_state.json", "p", db.parent / "supervisor.lock")
    store = Store(db, busy_timeout=30, on_commit=exporter)
    rng = random.Random(worker)
    done = []
    seq = 0
    for _ in range(rounds):
        ids = [f"T{i}" for i in range(ntasks)]
        rng.shuffle(ids)
        for tid in ids:
            seen = store.task(tid).state  # read outside the transaction: may be stale
            seq += 1
            try:
                with store.tx() as tx:
                    cur = tx.task(tid)
                    tx.transition_task(tid, seen, nxt[seen], attempt=cur.attempt + 1,
                                       data={"worker": worker, "seq": seq})
                done.append([tid, seen, nxt[seen], worker, seq])
            except TransitionError:
                pass
    print(json.dumps(done))
""")


def test_twenty_processes_no_lost_update(tmp_path: Path) -> None:
    db = tmp_path / "hatch.db"
    snap = tmp_path / "current_state.json"
    ntasks, nproc, rounds = 6, 20, 8
    s = Store(db, on_commit=SnapshotExporter(snap, "p", tmp_path / "supervisor.lock"))
    with s.tx() as tx:
        for i in range(ntasks):
            tx.insert_task(f"T{i}", title=str(i))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(db), str(w), str(rounds), str(ntasks)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(nproc)
    ]
    successes = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        successes.extend(json.loads(out))
    assert successes, "no transition succeeded at all"
    events = [e for e in s.events() if e.kind == "task_state"]
    # every successful transition appears in the events table exactly once, and nothing else does
    reported = sorted((t, f, to, w, q) for t, f, to, w, q in successes)
    recorded = sorted(
        (e.task_id, e.from_state, e.to_state, e.data["worker"], e.data["seq"]) for e in events
    )
    assert reported == recorded
    for i in range(ntasks):
        chain = [e for e in events if e.task_id == f"T{i}"]
        state = "pending"
        for e in chain:  # each transition starts where the previous one ended: no lost update
            assert e.from_state == state
            state = e.to_state
        task = s.task(f"T{i}")
        assert task is not None
        assert task.state == state
        assert task.attempt == len(chain) == task.version
    snapshot = json.loads(snap.read_text())
    assert {t["id"]: t["state"] for t in snapshot["tasks"]} == {t.id: t.state for t in s.tasks()}


def test_an_older_database_gains_the_new_column_and_transitions(tmp_path: Path) -> None:
    """A version 2 database (no tasks.held, no cancel transitions) opened by this hatchctl."""
    import sqlite3

    from hatchctl.state.schema import GUARDS, statements

    db = tmp_path / "old.db"
    Store(db).close()
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER transitions_no_delete")
    conn.execute("DELETE FROM transitions WHERE machine='task' AND to_state='failed' "
                 "AND from_state IN ('pending', 'blocked')")  # fmt: skip
    conn.execute("ALTER TABLE tasks DROP COLUMN held")
    for stmt in statements(GUARDS):
        conn.execute(stmt)
    conn.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    conn.commit()
    conn.close()

    store = Store(db)
    with store.tx() as tx:
        tx.insert_task("A", title="a")
        tx.update_task("A", held=1)
        tx.transition_task("A", "pending", "failed", kind="task_cancelled")
    task = store.task("A")
    assert task is not None and task.held == 1 and task.state == "failed"
    assert store.meta("schema_version") == "3"
    with pytest.raises(sqlite3.DatabaseError):  # the transition table is read-only again
        with store.tx() as tx:
            tx.conn.execute("INSERT INTO transitions VALUES ('task', 'completed', 'pending')")
    store.close()
