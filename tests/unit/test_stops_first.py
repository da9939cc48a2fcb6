"""Stop files are recorded before any other stop's handling (engine/stops.py): a stop written
while another is acted on is recorded at the next checkpoint, a forged one is still refused, and
an exited run's leftover processes are killed (in a job) before its stop is acted on."""

from __future__ import annotations

import json
import os
import queue
import subprocess
from pathlib import Path
from typing import Any

from hatchctl.engine.deps import Deps
from hatchctl.engine.jobrunner import JobRunner
from hatchctl.engine.jobs import JobEnv
from hatchctl.engine.monitor import Monitor
from hatchctl.engine.stops import REAP, Stops
from hatchctl.runtime.psinfo import RUN_KEY_ENV
from hatchctl.state.rows import RunRow
from tests.conftest import offline_deps, poll


class Rig:
    """A store with running runs, the monitor, a real job pool and the stops it feeds."""

    def __init__(self, tmp_path: Path, tasks: list[str]) -> None:
        self.deps: Deps = offline_deps(tmp_path, active=None)
        self.root = tmp_path
        self.wake: queue.Queue[tuple[str, str]] = queue.Queue()
        self.errors: list[str] = []
        env = JobEnv(
            root=tmp_path,
            paths=self.deps.project.paths,
            config=self.deps.project.config,
            scripts=self.deps.scripts,
            planning_dir=tmp_path,
            confine=None,
        )
        self.jobs = JobRunner(self.deps, env, self.wake, self.guard, self.infra)
        self.monitor = Monitor(self.deps, {})
        self.stops = Stops(self.deps, self.monitor, self.jobs, drain=self.drain, guard=self.guard)
        self.runs = {t: self._running(t) for t in tasks}

    def guard(self, _task_id: str, fn: Any, *args: Any) -> None:
        fn(*args)

    def infra(self, task_id: str | None, what: str) -> None:
        self.errors.append(f"{task_id}: {what}")

    def drain(self) -> set[str]:
        out: set[str] = set()
        while True:
            try:
                kind, path = self.wake.get_nowait()
            except queue.Empty:
                return out
            if kind == "stop":
                out.add(path)

    def _running(self, task_id: str) -> RunRow:
        paths, store = self.deps.project.paths, self.deps.store
        stop = paths.stop_file(task_id, "factory", 1, 1)
        summary = paths.summary_file(task_id, "factory", 1)
        with store.tx() as tx:
            tx.insert_task(task_id, title=task_id)
            tx.transition_task(task_id, "pending", "active", phase="factory", iteration=1)
            run = tx.insert_run(
                task_id=task_id,
                role="factory",
                iteration=1,
                attempt=1,
                window_name=f"{task_id}.factory.i1.a1",
                log_path="l",
                stop_path=str(stop.relative_to(self.root)),
                summary_path=str(summary.relative_to(self.root)),
                prompt_path="p",
            )
            run = tx.transition_run(run.id, "starting", "running")
        summary.parent.mkdir(parents=True)
        summary.write_text(
            json.dumps(
                {"task_id": task_id, "role": "factory", "iteration": 1, "status": "completed"}
            )
        )
        return run

    def write_stop(self, task_id: str, *, token: str | None = None) -> str:
        run = self.runs[task_id]
        path = self.root / run.stop_path
        stop = {"task_id": task_id, "role": "factory", "iteration": 1, "attempt": 1}
        stop |= {"reason": "exit", "exit_code": 0, "token": token or self.deps.run_token(run.id)}
        path.write_text(json.dumps(stop))
        return str(path)

    def state(self, task_id: str) -> str:
        run = self.deps.store.run(self.runs[task_id].id)
        assert run is not None
        return run.state

    def settle(self) -> None:
        """What the loop does until nothing is left: collect jobs, act on recorded stops."""

        def done() -> bool:
            self.jobs.collect(between=self.stops.checkpoint)
            self.stops.act()
            return not self.jobs and not self.stops.pending()

        poll(done, what="the stops acted on")

    def events(self, kind: str) -> list[int | None]:
        return [e.run_id for e in self.deps.store.events() if e.kind == kind]


def test_a_stop_written_while_another_is_handled_is_recorded_first(tmp_path: Path) -> None:
    rig = Rig(tmp_path, ["A", "B"])
    try:
        rig.stops.record({rig.write_stop("A")})
        assert rig.state("A") == "stopped" and list(rig.stops.to_act) == [rig.runs["A"].id]
        rig.wake.put(("stop", rig.write_stop("B")))  # written while A is acted on
        rig.stops.act()  # A: its leftovers' kill goes to a job; the checkpoint after records B
        assert rig.jobs.kind("A") == REAP
        assert rig.state("B") == "stopped"
        rig.settle()
        assert (rig.state("A"), rig.state("B")) == ("succeeded", "succeeded")
        for t in ("A", "B"):
            task = rig.deps.store.task(t)
            assert task is not None and task.phase == "verify"
        assert rig.errors == []
    finally:
        rig.jobs.shutdown()


def test_a_forged_stop_is_refused_at_a_checkpoint_too(tmp_path: Path) -> None:
    rig = Rig(tmp_path, ["A"])
    try:
        rig.wake.put(("stop", rig.write_stop("A", token="not-the-token")))
        rig.stops.checkpoint()
        assert rig.state("A") == "running" and not rig.stops.pending()
        assert rig.events("forged_signal") == [rig.runs["A"].id]
        rig.stops.checkpoint()  # the same file again: nothing more
        assert rig.events("forged_signal") == [rig.runs["A"].id]
    finally:
        rig.jobs.shutdown()


def test_an_exited_runs_leftover_process_is_killed_before_its_stop_is_acted_on(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, ["A"])
    run = rig.runs["A"]
    env = {**os.environ, RUN_KEY_ENV: rig.deps.run_key(run.id)}
    left = subprocess.Popen(["sleep", "60"], env=env)  # the agent's child, still running
    try:
        rig.stops.record({rig.write_stop("A")})
        rig.stops.act()
        assert rig.jobs.kind("A") == REAP and rig.state("A") == "stopped"
        poll(lambda: left.poll() is not None, what="the leftover killed")
        rig.settle()
        assert rig.state("A") == "succeeded"
        assert rig.events("exited_but_alive") == [run.id]
        kinds = [e.kind for e in rig.deps.store.events() if e.run_id == run.id]
        assert kinds.index("exited_but_alive") < kinds.index("handover")
    finally:
        left.kill()
        left.wait(timeout=10)
        rig.jobs.shutdown()


def test_a_checkpoint_keeps_other_wake_ups_for_the_next_pass(tmp_path: Path) -> None:
    from hatchctl.engine.supervisor import Supervisor

    sup = Supervisor(offline_deps(tmp_path, active=None))
    try:
        sup.queue.put(("stop", str(tmp_path / "x.stop")))
        assert sup._drain() == {str(tmp_path / "x.stop")} and not sup.rewake
        sup.queue.put(("job", "T"))  # a job done: collected by the next pass, not after a tick
        assert sup._drain() == set() and sup.rewake
        sup.rewake = False
        assert sup._drain() == set() and not sup.rewake  # nothing came: the loop may wait
    finally:
        sup.jobs.shutdown()
        sup.courier.shutdown()
