"""Strike and restart accounting, on a real store."""

from __future__ import annotations

from pathlib import Path

from hatchctl.engine import lifecycle
from tests.conftest import offline_deps


def test_restart_budget_then_strike_and_reset_after_stable_running(tmp_path: Path) -> None:
    deps = offline_deps(
        tmp_path, '[limits.restart]\nmax_restarts = 2\nreset_after = "10m"\njitter = 0\n'
    )
    store = deps.store

    def crash(stable: float) -> None:
        with store.tx() as tx:
            lifecycle.schedule_restart(
                deps,
                tx,
                store.task("T"),
                role="factory",
                reason="exit_1",
                detail="boom",  # type: ignore[arg-type]
                run_id=None,
                stable_for=stable,
            )

    crash(1.0)
    crash(1.0)
    t = store.task("T")
    assert t is not None and (t.restarts, t.phase, t.resume_phase, t.strikes) == (
        2,
        "backoff",
        "factory",
        0,
    )
    assert t.next_retry_at is not None  # stored: a restarted supervisor honours the same backoff
    crash(601.0)  # ran stably for over 10 minutes before crashing: the counter starts again
    t = store.task("T")
    assert t is not None and (t.restarts, t.strikes) == (1, 0)
    crash(1.0)
    crash(1.0)  # budget (2) exhausted: a strike, and the next iteration starts fresh
    t = store.task("T")
    assert t is not None and (t.strikes, t.iteration, t.restarts, t.phase) == (1, 2, 0, "factory")
    assert t.errors[-1]["reason"] == "restart_budget_exhausted"


def test_immediate_failure_classes_and_third_strike(tmp_path: Path) -> None:
    deps = offline_deps(tmp_path)
    store = deps.store
    for n in range(1, 4):
        with store.tx() as tx:
            row = lifecycle.strike(
                deps,
                tx,
                store.task("T"),
                role="qa",
                failure_class="code",  # type: ignore[arg-type]
                reason="qa_rejected",
                detail=f"finding {n}",
                findings=[f"finding {n}"],
            )
    assert row.state == "failed" and row.strikes == 3
    assert [e["detail"] for e in row.errors] == ["finding 1", "finding 2", "finding 3"]
    assert deps.project.paths.handover_file("T", "factory", 3).exists()
