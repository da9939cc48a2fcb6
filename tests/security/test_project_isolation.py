"""Projects are isolated from each other: one tmux server per project directory, and a
reconcile adopts or kills only the panes tagged with its own project. Real tmux, real git, the
real sim agent."""

from __future__ import annotations

from pathlib import Path

from hatchctl.cmds.common import build_deps
from hatchctl.engine import deps as engine_deps
from hatchctl.engine.reconcile import reconcile
from hatchctl.project import Project, project_key, tmux_socket
from hatchctl.runtime.tmux import AGENT_SESSION, Tmux
from tests.conftest import hatchctl
from tests.integration.conftest import Projects, SupervisorProcess, wait_for

SLOW = {"sim": {"files": {"a.txt": "a\n"}, "factory": [["slow", "ok"]], "slow_seconds": 2}}
# waits for a message ("finish") before it works: running for sure until the test says so
CHAT = {"sim": {"files": {"a.txt": "a\n"}, "factory": ["chat"]}}


def test_the_socket_holds_a_key_of_the_project_directory(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "proj", tmp_path / "b" / "proj"
    assert tmux_socket("same", a) != tmux_socket("same", b)
    assert tmux_socket("same", a) == f"hatch-same-{project_key(a.resolve())}"
    assert tmux_socket("same", tmp_path / "a" / ".." / "a" / "proj") == tmux_socket("same", a)
    assert engine_deps.project_key is project_key  # still importable from its old home
    assert engine_deps.run_key(a, 7) == f"{project_key(a)}-7"


def test_windows_are_tagged_with_the_project_key(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    assert Tmux(tmux_socket("same", root)).tag == project_key(root.resolve())
    assert Tmux("hatch-x-0123456789", tag="other").tag == "other"


def running(project: Project, task_id: str) -> bool:
    """The task's factory waits for its message (it printed that it does)."""
    store = project.open_store()
    try:
        runs = [r for r in store.runs(task_id) if r.state == "running" and r.role == "factory"]
        log = project.root / runs[0].log_path if runs else None
        return bool(log and log.exists() and "waiting for instructions" in log.read_text())
    finally:
        store.close()


def live(project: Project) -> bool:
    store = project.open_store()
    try:
        return any(r.state == "running" for r in store.runs()) and any(
            project.paths.claimed(r.id).exists() for r in store.runs()
        )
    finally:
        store.close()


def test_two_projects_with_the_same_name_run_at_once(projects: Projects) -> None:
    # one agent per project: what is shared or not is the project's tmux server and its tag,
    # the same for one pane as for two (a second task added two agents and a `send` each)
    specs = {"A": CHAT}
    quiet = {"limits": {"idle_timeout": "60s", "stall_after": "60s"}}  # chat agents are silent
    one = projects.make(specs, {"project": {"name": "same"}, **quiet})
    two = projects.make(specs, {"project": {"name": "same"}, **quiet})
    assert one.name == two.name and one.tmux_socket != two.tmux_socket
    first = SupervisorProcess(one, "--until-drained")
    second = None
    try:
        first.wait_running()
        wait_for(lambda: live(one), what="the first project's agents")
        # the second supervisor reconciles while the first one's agents run
        second = SupervisorProcess(two, "--until-drained")
        second.wait_running()
        wait_for(lambda: live(two), what="the second project's agents")
        assert live(one)  # both projects' agents ran at the same time
        for p in (one, two):
            panes = [x for x in Tmux(p.tmux_socket).list_panes() if x.session == AGENT_SESSION]
            # a window being launched is tagged a moment after tmux creates it: only tagged or
            # untagged-yet panes of this server, never another project's key
            assert len(panes) >= 1 and {x.tag for x in panes} <= {p.key, ""}
            assert p.key in {x.tag for x in panes}
        for p in (one, two):  # now let every waiting agent finish its task
            wait_for(lambda p=p: running(p, "A"), what="A waiting")
            out = hatchctl("-C", str(p.root), "send", "A", "finish")
            assert out.returncode == 0, out.stderr
        assert first.wait(60) == 0, first.output()
        assert second.wait(60) == 0, second.output()
    finally:
        first.kill()
        if second is not None:
            second.kill()
    for p in (one, two):
        store = p.open_store()
        try:
            assert {t.id: t.state for t in store.tasks()} == {"A": "completed"}
            runs = store.runs()  # none killed as a stray, none vanished or restarted
            assert runs and {(r.role, r.state) for r in runs} == {
                ("factory", "succeeded"),
                ("qa", "succeeded"),
            }
            restarts = [e.data for e in store.events() if e.kind == "restart_scheduled"]
            assert [t.restarts for t in store.tasks()] == [0], restarts  # why, if it fails
            reconciled = [e.data for e in store.events() if e.kind == "reconciled"]
            assert reconciled and all(d["stray_panes"] == [] for d in reconciled)
        finally:
            store.close()


def test_reconcile_touches_only_panes_tagged_with_its_project(projects: Projects) -> None:
    p = projects.make({"A": SLOW})
    deps = build_deps(p)
    try:
        tmux = deps.tmux
        tmux.ensure_server(p.root)
        sleep = ["sleep", "60"]
        # another project's agent on this server (were it shared), a window a user opened,
        # and a pane of this project that no run owns
        other = Tmux(tmux.socket, tag="hatch-same-0123456789")
        foreign = other.new_window("A.factory.i1.a1", sleep, cwd=p.root, env={})
        user = tmux.run(
            "new-window", "-d", "-P", "-F", "#{pane_id}", "-t", f"={AGENT_SESSION}:",
            "-n", "user-shell", "--", *sleep,
        ).stdout.strip()  # fmt: skip
        stray = tmux.new_window("Z.factory.i1.a1", sleep, cwd=p.root, env={})
        report = reconcile(deps)
        assert report.stray_panes == [f"Z.factory.i1.a1 ({stray.pane_id})"]
        assert sorted(report.foreign_panes) == sorted(
            [f"A.factory.i1.a1 ({foreign.pane_id})", f"user-shell ({user})"]
        )
        left = {pane.pane_id for pane in tmux.list_panes()}
        assert {foreign.pane_id, user} <= left and stray.pane_id not in left
        event = [e for e in deps.store.events() if e.kind == "reconciled"][-1]
        assert event.data["foreign_panes"] == report.foreign_panes
        assert deps.store.runs() == []  # nothing was adopted
    finally:
        deps.store.close()
