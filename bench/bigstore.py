"""A project-like store at the scale big users run: thousands of tasks in every state, two runs
with metrics per finished task, about ten events per task. Shared by the scale benchmarks."""

from __future__ import annotations

import fcntl
import json
import os
import random
import sqlite3
from pathlib import Path

from hatchctl.state.atomicfile import write_atomic
from hatchctl.state.statusdoc import status_document
from hatchctl.state.store import Store, Tx

HATCH_TOML = '[project]\nname = "{name}"\nbase_ref = "main"\n'


def make_project(root: Path, name: str = "bench") -> None:
    """A directory ``hatchctl`` recognises as a project (``Project.find`` works on it)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "hatch.toml").write_text(HATCH_TOML.format(name=name))
    (root / "specs").mkdir(exist_ok=True)


def _metrics(rng: random.Random) -> str:
    tin, tout = rng.randint(2_000, 90_000), rng.randint(500, 20_000)
    return json.dumps(
        {
            "tokens_in": tin,
            "tokens_out": tout,
            "cache_read": rng.randint(0, 400_000),
            "cache_write": rng.randint(0, 40_000),
            "turns": rng.randint(3, 60),
            "cost_usd": round((tin * 3 + tout * 15) / 1e6, 6),
            "wall_seconds": round(rng.uniform(30, 1800), 1),
            "model": "claude-sonnet-4",
            "source": "claude-transcript",
        },
        sort_keys=True,
    )


def populate(store: Store, ntasks: int, *, events_per_task: int = 10, seed: int = 1) -> None:
    """``ntasks`` tasks (T00000...): 55 % completed (factory + QA runs with metrics), 10 % failed
    with errors, 5 % blocked, 10 active with a live run... the rest pending. Written through the
    store's own transactions (the same rows, events and triggers as a real project)."""
    rng = random.Random(seed)
    ids = [f"T{i:05d}" for i in range(ntasks)]
    with store.tx() as tx:
        for i, tid in enumerate(ids):
            deps = sorted({ids[rng.randrange(i)] for _ in range(rng.randint(0, 2))}) if i else []
            tx.insert_task(
                tid,
                title=f"Implement part {i} of the inventory service ({rng.choice('ABCDEFG')})",
                priority=rng.randint(0, 100),
                depends_on=deps,
                files=[f"src/inventory/mod{i % 97}.py", f"tests/test_mod{i % 97}.py"],
                spec_path=f"specs/{tid}.md",
                spec_digest=f"{rng.getrandbits(128):032x}",
            )
    with store.tx() as tx:
        for i, tid in enumerate(ids):
            roll = rng.random()
            if roll >= 0.75 and i >= 10:
                continue  # pending
            fields = {
                "phase": "factory",
                "branch": f"hatch/{tid}",
                "worktree": f".hatch/worktrees/{tid}",
                "base_sha": f"{rng.getrandbits(160):040x}",
                "iteration": 1,
                "attempt": 1,
            }
            if i >= 10 and 0.70 <= roll < 0.75:
                tx.transition_task(tid, "pending", "blocked")
                continue
            tx.transition_task(tid, "pending", "active", **fields)
            if i < 10:  # active, with a live factory run
                run = _run(tx, tid, "factory")
                tx.transition_run(run, "starting", "running", pane_id=f"%{i}", pane_pid=1)
                continue
            if roll < 0.55:
                for role in ("factory", "qa"):
                    run = _run(tx, tid, role)
                    tx.transition_run(run, "starting", "running", pane_id="%0", pane_pid=1)
                    tx.transition_run(run, "running", "stopped", exit_code=0)
                    tx.transition_run(run, "stopped", "succeeded", reason="completed")
                    tx.update_run(run, metrics=_metrics(rng))
                tx.transition_task(tid, "active", "completed", phase=None)
            else:
                errors = [
                    {"reason": "qa_rejected", "detail": f"finding {k} in mod{i % 97}.py", "at": k}
                    for k in range(rng.randint(1, 3))
                ]
                tx.transition_task(
                    tid,
                    "active",
                    "failed",
                    failure_class="code",
                    last_error=errors[-1]["detail"],
                    errors=errors,
                    strikes=len(errors),
                )
        filler = max(0, events_per_task * ntasks - _count(tx.conn, "events"))
        tx.conn.executemany(
            "INSERT INTO events(at, task_id, kind, data) VALUES (?, ?, 'note', ?)",
            (
                (tx.now, ids[k % ntasks], json.dumps({"n": k, "text": "agent output line"}))
                for k in range(filler)
            ),
        )


def _count(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def _run(tx: Tx, tid: str, role: str) -> int:
    run = tx.insert_run(
        task_id=tid,
        role=role,
        iteration=1,
        attempt=1,
        window_name=f"{tid}-{role}",
        log_path=f".hatch/logs/{role}/{tid}.log",
        stop_path=f".hatch/io/{tid}/{role}.i1/{tid}.stop",
        summary_path=f".hatch/io/{tid}/{role}.i1/summary.json",
        prompt_path=f".hatch/prompts/{tid}.md",
    )
    return int(run.id)


class LegacyExporter:
    """The exporter as it was before issue 11, for before/after figures in the same run: the
    whole document re-read, re-encoded and rewritten (fsync + rename) after every commit, on the
    committing thread."""

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
