"""A supervisor killed between recording a stop and acting on it: the next one acts on it."""

from __future__ import annotations

import json
import random
from pathlib import Path

from hatchctl.config import parse_config
from hatchctl.engine.deps import Deps
from hatchctl.engine.monitor import Monitor
from hatchctl.project import Project
from hatchctl.runtime.notify import Notifier
from hatchctl.runtime.scripts import Scripts, builtin_root
from hatchctl.runtime.tmux import Tmux


def test_a_stopped_run_is_acted_on_after_a_restart(tmp_path: Path) -> None:
    project = Project(
        root=tmp_path, config_path=tmp_path / "hatch.toml", config=parse_config("", tmp_path)
    )
    store = project.open_store()
    deps = Deps(
        project,
        store,
        Tmux("unused"),
        Scripts(builtin_root(), timeout=1),
        Notifier([], 1),
        rng=random.Random(0),
    )
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
