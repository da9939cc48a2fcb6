"""The SQLite store: compare-and-set transitions per second (one process, and 20 at once),
and the cost of exporting current_state.json after each commit."""

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
    return n / (time.perf_counter() - t0)


WORKER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from hatchctl.errors import TransitionError
    from hatchctl.state.store import Store
    nxt = {"pending": "active", "active": "failed", "failed": "pending"}
    store = Store(Path(sys.argv[1]), busy_timeout=60)
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
    print(ok)
""")


def contended(tmp: Path, procs: int = 20, each: int = 100) -> float:
    db = tmp / "contended.db"
    store = Store(db)
    with store.tx() as tx:
        for i in range(20):
            tx.insert_task(f"T{i}", title=str(i))
    t0 = time.perf_counter()
    ps = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(db), str(each)], stdout=subprocess.PIPE, text=True
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
            f"store: {single(t, export=True):.0f} transitions/s (one process, current_state.json after each)"
        )
        print(
            f"store: {contended(t):.0f} transitions/s (20 processes at once, incl. their start-up)"
        )


if __name__ == "__main__":
    main()
