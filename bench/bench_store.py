"""The SQLite store: compare-and-set transitions per second (one process, and 20 at once),
with and without the current_state.json exporter (coalesced: written in the background at most
every 0.2 s, and on close). bench_store_scale.py does the same on a 10 000-task project."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from hatchctl.state.snapshot import SnapshotExporter
from hatchctl.state.store import Store

CYCLE = {"pending": "active", "active": "failed", "failed": "pending"}


def single(tmp: Path, export: bool, n: int = 2000) -> float:
    exporter = SnapshotExporter(tmp / "snap.json", "bench", tmp / "lock") if export else None
    store = Store(tmp / f"single-{export}.db", on_commit=exporter)
    with store.tx() as tx:
        for i in range(20):
            tx.insert_task(f"T{i}", title=str(i))
    states = {f"T{i}": "pending" for i in range(20)}
    t0 = time.perf_counter()
    for k in range(n):
        tid = f"T{k % 20}"
        with store.tx() as tx:
            tx.transition_task(tid, states[tid], CYCLE[states[tid]])
        states[tid] = CYCLE[states[tid]]
    store.close()  # flushes the snapshot: counted
    return n / (time.perf_counter() - t0)


WORKER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from hatchctl.errors import TransitionError
    from hatchctl.state.snapshot import SnapshotExporter
    from hatchctl.state.store import Store
    nxt = {"pending": "active", "active": "failed", "failed": "pending"}
    db = Path(sys.argv[1])  # "1": opened as hatchctl opens it, with the snapshot exporter
    exporter = SnapshotExporter(db.parent / "snap.json", "bench", db.parent / "lock")
    store = Store(db, busy_timeout=60, on_commit=exporter if sys.argv[3] == "1" else None)
    ok = 0
    for k in range(int(sys.argv[2])):
        tid = f"T{k % 20}"
        try:
            with store.tx() as tx:
                cur = tx.task(tid).state
                tx.transition_task(tid, cur, nxt[cur])
            ok += 1
        except TransitionError:
            pass
    store.close()
    print(ok)
""")


def contended(tmp: Path, export: bool, procs: int = 20, each: int = 100) -> float:
    db = tmp / f"contended-{export}.db"
    store = Store(db)
    with store.tx() as tx:
        for i in range(20):
            tx.insert_task(f"T{i}", title=str(i))
    t0 = time.perf_counter()
    ps = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(db), str(each), "1" if export else "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(procs)
    ]
    total = sum(int(p.communicate(timeout=300)[0]) for p in ps)
    return total / (time.perf_counter() - t0)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        print(
            f"store: {single(t, export=False):.0f} transitions/s (one process, no snapshot export)"
        )
        print(
            f"store: {single(t, export=True):.0f} transitions/s (one process, snapshot exporter on, "
            "as hatchctl opens the store; incl. the flush on close)"
        )
        for export in (False, True):
            what = "each with the snapshot exporter" if export else "no snapshot export"
            print(
                f"store: {contended(t, export):.0f} transitions/s (20 processes at once, {what}, "
                "incl. their start-up and close)"
            )


if __name__ == "__main__":
    main()
