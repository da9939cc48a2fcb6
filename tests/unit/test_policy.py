from __future__ import annotations

import random
from pathlib import Path

from hatchctl.config import RestartPolicy
from hatchctl.engine.policy import backoff_delay, plan
from hatchctl.state.store import Store


def tasks(tmp: Path, spec: dict[str, dict[str, object]]):  # type: ignore[no-untyped-def]
    store = Store(tmp / "h.db")
    with store.tx() as tx:
        for tid, fields in spec.items():
            state = fields.pop("state", "pending")
            tx.insert_task(tid, title=tid, **fields)
            if state == "active":
                tx.transition_task(tid, "pending", "active")
            elif state in ("completed", "failed"):
                tx.transition_task(tid, "pending", "active")
                tx.transition_task(tid, "active", state)
            elif state == "blocked":
                tx.transition_task(tid, "pending", "blocked")
    return store.tasks()


def test_priority_dependencies_and_max_active(tmp_path: Path) -> None:
    ts = tasks(
        tmp_path,
        {
            "LOW": {"priority": 1},
            "HIGH": {"priority": 90},
            "MID": {"priority": 50},
            "DEP": {"priority": 99, "depends_on": ["LOW"]},
        },
    )
    p = plan(ts, {}, max_active=2, paused=False)
    assert p.start == ["HIGH", "MID"]  # highest first, DEP waits for LOW, capped at 2


def test_declared_files_never_shared(tmp_path: Path) -> None:
    ts = tasks(
        tmp_path,
        {
            "A": {"priority": 9, "files": ["x.py"]},
            "B": {"priority": 8, "files": ["x.py", "y.py"]},
            "C": {"priority": 7, "files": ["y.py"]},
        },
    )
    p = plan(ts, {}, max_active=5, paused=False)
    assert p.start == ["A", "C"] and p.waiting_on_files == {"B": {"x.py": "A"}}
    p = plan(ts, {"y.py": "Z"}, max_active=5, paused=False)
    assert p.start == ["A"]


def test_blocking_is_transitive_and_undone_when_dependencies_complete(tmp_path: Path) -> None:
    ts = tasks(
        tmp_path,
        {
            "A": {"state": "failed"},
            "B": {"depends_on": ["A"]},
            "C": {"depends_on": ["B"]},
            "D": {"state": "completed"},
            "E": {"state": "blocked", "depends_on": ["D"]},
        },
    )
    p = plan(ts, {}, max_active=5, paused=False)
    assert p.block == ["B", "C"] and p.unblock == ["E"] and p.start == []


def test_paused_starts_nothing(tmp_path: Path) -> None:
    ts = tasks(tmp_path, {"A": {}})
    assert plan(ts, {}, max_active=5, paused=True).start == []


def test_backoff_is_capped_exponential_with_jitter() -> None:
    policy = RestartPolicy(initial_backoff=5, multiplier=2, max_backoff=300, jitter=0.0)
    assert [backoff_delay(n, policy, random.Random(1)) for n in range(1, 9)] == [
        5,
        10,
        20,
        40,
        80,
        160,
        300,
        300,
    ]
    jittered = RestartPolicy(initial_backoff=10, jitter=0.2)
    values = {backoff_delay(1, jittered, random.Random(s)) for s in range(50)}
    assert len(values) > 10 and min(values) >= 8 and max(values) <= 12
