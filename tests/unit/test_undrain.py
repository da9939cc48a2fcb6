"""`hatchctl undrain NAME` ends a host's drain (engine/remotehealth.py): through the running
supervisor's command queue (placement uses the host at once, its failures counted afresh), or,
with no supervisor, in the store under the supervisor's lock; `doctor` names a drained host and
the command that ends its drain. Bad names and hosts that are not drained are one clear line."""

from __future__ import annotations

from hatchctl.cmds.common import build_deps
from hatchctl.engine.commands import Commands
from hatchctl.engine.remotehealth import META_PREFIX, drained_from_meta
from hatchctl.hosts import doctor_checks
from tests.conftest import hatchctl
from tests.integration.conftest import Projects, projects

__all__ = ["projects"]

HOST = {"ssh": "u@127.0.0.1", "port": 1, "root": "/srv/h"}  # nothing listens: refused


def _drained_project(projects: Projects) -> tuple[object, str]:
    project = projects.make({}, config={"hosts": {"gpu1": HOST}})
    deps = build_deps(project)
    try:
        reason = None
        for _ in range(3):
            reason = deps.remote.health.failed("gpu1", "launch x")
        assert reason is not None and deps.remote.health.is_drained("gpu1")
    finally:
        deps.store.close()
    return project, reason


def test_undrain_without_a_supervisor(projects: Projects) -> None:
    project, reason = _drained_project(projects)
    root = project.root  # type: ignore[attr-defined]
    (check,) = doctor_checks(project, timeout=5)  # type: ignore[arg-type]
    assert check[0] == "host gpu1" and f"drained: {reason}" in check[2], check
    assert "`hatchctl undrain gpu1`" in check[2]

    out = hatchctl("undrain", "gpu1", cwd=root)
    assert out.returncode == 0 and "gpu1 is no longer drained" in out.stdout, out.stderr
    store = project.open_store()  # type: ignore[attr-defined]
    try:
        assert drained_from_meta(store.meta(META_PREFIX + "gpu1"), 0.0) is None
        (event,) = [e for e in store.events() if e.kind == "host_undrained"]
        assert event.data == {"host": "gpu1", "by": "user"}
    finally:
        store.close()

    for argv, said in (
        (["undrain", "gpu1"], "host gpu1 is not drained"),
        (["undrain", "nope"], "no host 'nope' in hatch.toml [hosts]"),
        (["undrain", "local"], "no host 'local' in hatch.toml [hosts]"),
    ):
        out = hatchctl(*argv, cwd=root)
        assert out.returncode != 0 and said in out.stderr, out.stderr
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_undrain_through_the_supervisors_commands(projects: Projects) -> None:
    project, _ = _drained_project(projects)
    deps = build_deps(project)  # as a new supervisor: the drain is read back from the store
    try:
        health = deps.remote.health
        health.load_drains()
        assert health.excluded(()) == {"gpu1"}
        commands = Commands(deps, on_down=lambda: None, on_resume=lambda: None)
        first = deps.store.enqueue_command("undrain", None, host="gpu1")
        second = deps.store.enqueue_command("undrain", None, host="gpu1")
        assert commands.process() == 2
        done, again = deps.store.command(first), deps.store.command(second)
        assert done is not None and done.state == "done" and "no longer drained" in done.result
        assert again is not None and again.state == "failed"
        assert again.result == "host gpu1 is not drained"
        assert health.excluded(()) == set()
        assert health.failed("gpu1", "once more") is None  # counted afresh: 1 of 3
    finally:
        deps.store.close()
