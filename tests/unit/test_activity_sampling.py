"""A run's process-tree CPU (a /proc pass) is sampled only once its log has been quiet for a
moment (engine/activity.py): a printing agent's log says enough."""

from __future__ import annotations

import os
from pathlib import Path

from hatchctl.engine.monitor import Monitor
from hatchctl.state.rows import RunRow
from tests.conftest import offline_deps


def _run(tmp_path: Path, last_activity_at: float) -> tuple[Monitor, RunRow]:
    deps = offline_deps(tmp_path, '[limits]\nidle_timeout = "60s"\n')
    (tmp_path / "run.log").write_text("hello\n")
    with deps.store.tx() as tx:
        run = tx.insert_run(
            task_id="T",
            role="factory",
            iteration=1,
            attempt=1,
            window_name="T.factory.i1.a1",
            log_path="run.log",
            stop_path="s.stop",
            summary_path="s.json",
            prompt_path="p",
        )
        run = tx.transition_run(
            run.id,
            "starting",
            "running",
            pane_pid=os.getpid(),
            log_size=6,
            last_activity_at=last_activity_at,
        )
    return Monitor(deps, {}), run


def test_no_cpu_sample_right_after_output(tmp_path: Path) -> None:
    monitor, run = _run(tmp_path, last_activity_at=1000.0)
    monitor.activity.check_idle(run, 1000.2, 900.0)
    assert run.id not in monitor.activity.cpu_at


def test_a_quiet_run_is_sampled(tmp_path: Path) -> None:
    monitor, run = _run(tmp_path, last_activity_at=1000.0)
    monitor.activity.check_idle(run, 1001.5, 900.0)
    assert monitor.activity.cpu_at[run.id] == 1001.5
