"""Local panes are opened in a job (engine/launching.py): a launch that fails there ends its run
(`crashed`, launch_failed) and is restarted as an infrastructure failure (the circuit breaker
pauses the project when it keeps failing), never left `starting`; a run that ended while its pane opened (a kill, `down`) gets no ticket, so its
agent never starts, and the pane is closed."""

from __future__ import annotations

import contextlib

import pytest

from hatchctl.cmds.common import build_deps
from hatchctl.engine import launcher
from hatchctl.errors import TmuxServerDead
from hatchctl.runtime import sandbox
from hatchctl.state.spec import load_specs
from tests.integration.conftest import Projects, SupervisorProcess, drain, kinds, wait_for


def test_a_launch_that_fails_in_its_job_is_restarted_then_pauses_the_project(
    projects: Projects,
) -> None:
    if sandbox.probe():
        pytest.skip(f"needs bwrap: {sandbox.probe()}")
    # a writable path inside the project is refused when the sandbox is set up, in the job
    p = projects.make(
        {"F": {"sim": {"files": {"f.txt": "f\n"}}}},
        {"agents": {"factory": {"sandbox": "bwrap", "sandbox_writable": ["{root}/sub"]}}},
    )
    toml = p.root / "hatch.toml"
    toml.write_text(toml.read_text().replace("{root}", str(p.root)))
    p = type(p).find(p.root)
    code, tasks, deps = drain(p)
    runs = deps.store.runs("F")
    # each launch failed in its job, was recorded and restarted (a strike after max_restarts);
    # five such infrastructure failures pause the project (the circuit breaker), none hangs
    assert code == 1 and tasks["F"].state == "active" and tasks["F"].phase == "backoff"
    assert len(runs) == 5 and kinds(deps, "F").count("infra_failure") == 5
    assert all(r.state == "crashed" and r.reason == "launch_failed" for r in runs), runs
    reason = deps.store.meta("pause_reason") or ""
    assert "circuit breaker" in reason and "would make the project writable" in reason, reason
    assert not deps.project.paths.ticket(runs[-1].id).exists()
    with contextlib.suppress(TmuxServerDead):  # (drained: the server is gone)
        assert [w for w in deps.tmux.list_panes() if w.window_name.startswith("F.")] == []


def test_a_run_that_ends_while_its_pane_opens_never_starts_its_agent(projects: Projects) -> None:
    p = projects.make({"K": {"sim": {"factory": ["hang"]}}}, {"limits": {"idle_timeout": "60s"}})
    sup = SupervisorProcess(p)
    try:
        sup.wait_running()
        store = p.open_store()
        wait_for(lambda: any(r.state == "running" for r in store.runs("K")), what="K running")
    finally:
        sup.kill()  # SIGKILL: the agent keeps running, nobody supervises
    deps = build_deps(p)
    task = deps.store.task("K")
    assert task is not None
    spec = load_specs(p.specs_dir).specs["K"]
    pending = launcher.begin(deps, task, spec, "factory", task.iteration, 2)
    opened = launcher.open_pane(deps, pending)
    assert opened.pane_id in {w.pane_id for w in deps.tmux.list_panes()}
    with deps.store.tx() as tx:  # as a kill does while the job runs
        tx.transition_run(pending.run.id, "starting", "killed", ended_at=tx.now, reason="kill")
    assert launcher.finish(deps, pending, opened) is None
    assert not deps.project.paths.ticket(pending.run.id).exists()
    assert not deps.project.paths.claimed(pending.run.id).exists()
    assert opened.pane_id not in {w.pane_id for w in deps.tmux.list_panes()}
    assert deps.store.run(pending.run.id).state == "killed"  # type: ignore[union-attr]
