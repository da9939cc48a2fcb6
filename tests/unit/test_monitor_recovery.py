"""A supervisor killed between recording a stop and acting on it: the next one acts on it."""

from __future__ import annotations

import json
from pathlib import Path

from hatchctl.engine.monitor import Monitor
from tests.conftest import offline_deps


def test_a_stopped_run_is_acted_on_after_a_restart(tmp_path: Path) -> None:
    deps = offline_deps(tmp_path, active=None)
    project, store = deps.project, deps.store
    paths = project.paths
    stop = paths.stop_file("T", "factory", 1, 1)
    summary = paths.summary_file("T", "factory", 1)
    with store.tx() as tx:
        tx.insert_task("T", title="t")
        tx.transition_task("T", "pending", "active", phase="factory", iteration=1)
        run = tx.insert_run(
            task_id="T",
            role="factory",
            iteration=1,
            attempt=1,
            window_name="T.factory.i1.a1",
            log_path="l",
            stop_path=str(stop.relative_to(tmp_path)),
            summary_path=str(summary.relative_to(tmp_path)),
            prompt_path="p",
        )
        tx.transition_run(run.id, "starting", "running")
    summary.parent.mkdir(parents=True)
    summary.write_text(
        json.dumps({"task_id": "T", "role": "factory", "iteration": 1, "status": "completed"})
    )
    stop.write_text(
        json.dumps(
            {
                "task_id": "T",
                "role": "factory",
                "iteration": 1,
                "attempt": 1,
                "reason": "exit",
                "exit_code": 0,
                "token": deps.run_token(run.id),
            }
        )
    )
    with store.tx() as tx:  # what the killed supervisor managed to record: stopped, nothing more
        tx.transition_run(run.id, "running", "stopped", stop_seen="old-signature")
    Monitor(deps, {}).check(store.run(run.id), 0.0)  # type: ignore[arg-type]
    after = store.run(run.id)
    assert after is not None and (after.state, after.exit_code) == ("succeeded", 0)
    task = store.task("T")
    assert task is not None and task.phase == "verify"  # handed over to verification
