"""A host that keeps failing is drained (engine/remotehealth.py): every launch on the loopback
host fails there (its root is a regular file, so nothing can be made under it), the third
failure drains it with the reason (event `host_drained`, `hatchctl hosts` shows it), and the
tasks complete here with no run made for the host, no restart and no strike."""

from __future__ import annotations

import json
from pathlib import Path

from hatchctl.cmds.common import build_deps
from hatchctl.engine.remotehealth import META_PREFIX, HostHealth, drained_from_meta
from tests.conftest import hatchctl
from tests.hosts.sshd import SshServer
from tests.hosts.test_remote_run import host_config, host_server_cleaned, remote_root
from tests.integration.conftest import Projects, drain, projects

__all__ = ["projects", "remote_root"]  # the fixtures


def test_a_host_that_keeps_failing_is_drained_and_the_tasks_complete_here(
    projects: Projects, sshd: SshServer, remote_root: Path
) -> None:
    blocked = remote_root / "root-is-a-file"
    blocked.write_text("not a directory\n")
    config = host_config(sshd, blocked, labels=[])  # more free slots than here: chosen first
    config["limits"] = {"max_active": 1}
    specs = {
        f"T-{i}": {"acceptance": f"test -f f{i}.txt", "sim": {"files": {f"f{i}.txt": "hi\n"}}}
        for i in (1, 2)  # T-2 waits for a slot here: the host is tried (and fails) meanwhile
    }
    project = projects.make(specs, config=config)
    with host_server_cleaned(project):
        code, tasks, deps = drain(project, time_limit=60)
    assert code == 0 and all(t.state == "completed" for t in tasks.values()), tasks
    runs = deps.store.runs()
    assert {(r.host, r.attempt, r.state) for r in runs} == {(None, 1, "succeeded")}
    # no run was made for the host: it failed when chosen, the next host was taken at once
    assert all((t.strikes, t.restarts) == (0, 0) for t in tasks.values()), [
        (e.kind, e.task_id, e.data)
        for e in deps.store.events()
        if e.kind in ("restart_scheduled", "strike", "job_failed")
    ]
    drained = [e for e in deps.store.events() if e.kind == "host_drained"]
    assert len(drained) == 1 and drained[0].data["host"] == "loop"
    reason = drained[0].data["reason"]
    assert reason.startswith("3 failures within 300s, last: prepare: host loop: cannot prepare")
    assert not [e for e in deps.store.events() if e.kind in ("infra_failure", "paused")]
    kept = json.loads(deps.store.meta(META_PREFIX + "loop") or "{}")
    assert kept["reason"] == reason
    deps.store.close()
    out = hatchctl("hosts", cwd=project.root, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[2].startswith("loop   drained ")
    assert lines[4] == f"       drained: {reason}"
    doc = json.loads(hatchctl("hosts", "--json", cwd=project.root, timeout=60).stdout)
    assert [h["drained"] for h in doc["hosts"]] == [None, reason]


def test_a_drain_needs_its_failures_within_the_window_and_ends_with_its_cool_down(
    projects: Projects,
) -> None:
    host = {"ssh": "u@gpu1", "root": "/srv/h"}  # never called: the record alone
    project = projects.make({}, config={"hosts": {"gpu1": host}})
    deps = build_deps(project)
    now = [1000.0]
    deps.clock = lambda: now[0]
    health = deps.remote.health
    try:
        for step in (0.0, 200.0, 200.0):  # spread over 400 s: never 3 within 300 s
            now[0] += step
            assert health.failed("gpu1", "launch x") is None
        assert health.excluded({"lost"}) == {"lost"}
        now[0] += 1.0
        reason = health.failed("gpu1", "launch y")  # 3 within 300 s (at 1200, 1400, 1401)
        assert reason == "3 failures within 300s, last: launch y"
        assert health.excluded(()) == {"gpu1"}
        again = HostHealth(deps, deps.remote.hosts)  # a new supervisor keeps it
        again.load_drains()
        assert again.excluded(()) == {"gpu1"}
        now[0] += 300.0  # its cool-down is over: tried again
        assert health.excluded(()) == set() and not health.is_drained("gpu1")
        assert drained_from_meta(deps.store.meta(META_PREFIX + "gpu1"), now[0]) is None
        assert health.failed("unknown", "x") is None
    finally:
        deps.store.close()
