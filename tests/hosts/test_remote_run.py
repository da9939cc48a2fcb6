"""Runs placed on an SSH host (the loopback sshd of tests/hosts/sshd.py, with its own root):
factory -> QA -> merged with every agent in the host's tmux server and worktree (a hung one
idle-timed-out from the size of its log there); the link cut mid-run and a new supervisor: the
same runs found again (same attempt); a host gone for good, its task finished here without a
strike."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from hatchctl.config import HostSection
from hatchctl.engine import launcher
from hatchctl.engine.deps import Deps
from hatchctl.engine.remotewatch import MODE_ENV
from hatchctl.hosts.attach import attach_argv
from hatchctl.hosts.base import project_dir_name
from hatchctl.hosts.ssh import SshHost
from hatchctl.project import Project
from hatchctl.runtime.tmux import Tmux
from hatchctl.state.rows import RunRow, TaskRow
from hatchctl.state.sync import sync_specs
from tests.conftest import git
from tests.hosts.sshd import SshServer
from tests.integration.conftest import (
    Projects,
    SupervisorProcess,
    drain,
    kinds,
    projects,
    wait_for,
)

__all__ = ["projects"]  # the fixture, shared with the integration tests

SIM = [sys.executable, "-m", "hatchctl", "sim-agent"]  # found on the loopback host: this machine


def host_config(sshd: SshServer, root: Path, **extra: Any) -> dict[str, Any]:
    agent = {"command": SIM, "sandbox": "none"}
    loop = {
        "ssh": sshd.destination,
        "port": sshd.port,
        "ssh_config": str(sshd.ssh_config),
        "root": str(root),
        "max_active": 2,
        "labels": ["gpu"],
        **extra,
    }
    return {"hosts": {"loop": loop}, "agents": {"factory": agent, "qa": agent}}


def spec(**sim: Any) -> dict[str, Any]:
    return {"acceptance": "test -f hello.txt", "sim": {"files": {"hello.txt": "hi\n"}, **sim}}


@pytest.fixture
def remote_root(sshd: SshServer, tmp_path: Path) -> Iterator[Path]:
    if sshd.proc is None:
        sshd.start()
    root = tmp_path / "remote"
    root.mkdir()
    yield root


def host_socket(project: Project) -> str:
    return f"{project.tmux_socket}-loop"


@contextlib.contextmanager
def host_server_cleaned(project: Project) -> Iterator[None]:
    try:
        yield
    finally:
        Tmux(host_socket(project)).kill_server()


def begun_on_host(
    project: Project, deps: Deps, task_id: str, running_at: float | None = None
) -> RunRow:
    """Task ``task_id``'s factory run begun on host ``loop`` (its row committed ``starting``,
    its prompt written: what a launch does before the pane opens); ``running`` since
    ``running_at`` when given."""
    specs = project.load_specs().specs
    sync_specs(deps.store, specs)
    task = deps.store.task(task_id)
    assert task is not None
    host = deps.remote.hosts["loop"]
    run = launcher.begin(deps, task, specs[task_id], "factory", 1, 1, host=host).run
    if running_at is None:
        return run
    with deps.store.tx() as tx:
        return tx.transition_run(run.id, "starting", "running", running_at=running_at)


def test_a_task_runs_factory_qa_merged_on_the_host(
    projects: Projects, sshd: SshServer, remote_root: Path
) -> None:
    config = host_config(sshd, remote_root)
    config["limits"] = {"idle_timeout": "2s"}
    hung = spec(factory=[["hang", "ok"]])  # attempt 1 hangs (no output, no CPU), 2 works
    project = projects.make({"T-1": {**hung, "host_labels": ["gpu"]}}, config=config)
    seen: list[str] = []  # what the host's tmux server runs while the task is under way
    hung_log = project.paths.run_log("T-1", "factory", 1, 1)
    live_copy: list[str] = []  # the hung agent's log here while it still runs there

    def look() -> None:
        for _ in range(2000):
            with contextlib.suppress(Exception):
                for pane in Tmux(host_socket(project)).list_panes():
                    if pane.window_name.startswith("T-1.") and pane.window_name not in seen:
                        seen.append(pane.window_name)
                    hung = pane.window_name == "T-1.factory.i1.a1" and not live_copy
                    if hung and hung_log.is_file() and hung_log.stat().st_size:
                        live_copy.append(hung_log.read_text())
            if len(seen) >= 3 or stop.is_set():
                return
            stop.wait(0.02)

    stop = threading.Event()
    watcher = threading.Thread(target=look)
    watcher.start()
    with host_server_cleaned(project):
        try:
            code, tasks, deps = drain(project, time_limit=60)
        finally:
            stop.set()
            watcher.join()
    assert code == 0 and tasks["T-1"].state == "completed", tasks["T-1"].last_error
    runs = deps.store.runs("T-1")
    assert [(r.role, r.attempt, r.host, r.state, r.reason) for r in runs] == [
        ("factory", 1, "loop", "timed_out", "idle_timeout"),  # from the host's log size
        ("factory", 2, "loop", "succeeded", "completed"),
        ("qa", 1, "loop", "succeeded", "approved"),
    ]
    assert all(r.pane_id is None and r.pane_pid is None for r in runs)  # no local pane or pid
    # in the host's server, not ours
    assert seen == ["T-1.factory.i1.a1", "T-1.factory.i1.a2", "T-1.qa.i1.a1"]
    assert "sim-agent" in live_copy[0]  # copied here while the agent ran there
    # the work was done in the host's worktree under its root, and merged here
    there = remote_root / project_dir_name(project.root) / ".hatch"
    head = git(there / "tasks" / "T-1.git", "rev-parse", "hatch/T-1")  # the task's repo keeps it
    assert git(there / "tasks" / "T-1.git", "show", "hatch/T-1:hello.txt") == "hi"
    assert git(there / "repo.git", "for-each-ref", "refs/heads") == ""  # the shared clone: none
    assert not (there / "worktrees" / "T-1").exists()  # removed there after the merge
    assert git(project.root, "merge-base", "--is-ancestor", head, "hatch/integration") == ""
    assert (there / "io" / "T-1" / "factory.i1" / "summary.json").is_file()
    assert not (project.paths.worktree("T-1")).exists()  # cleaned up after the merge, as ever
    assert kinds(deps, "T-1").count("remote_stop_collected") == 2
    for run in runs:  # each log, copied here (the rest of it when it stopped or was killed)
        there_log = there / "logs" / run.log_path.split("/logs/", 1)[1]
        assert (project.root / run.log_path).read_bytes() == there_log.read_bytes()
    mode = "inotify" if shutil.which("inotifywait") else "poll"  # stops as they happen, or polled
    assert watch_modes(project) == [mode]
    assert (tasks["T-1"].strikes, tasks["T-1"].restarts) == (0, 1)
    # the supervisor drained: the host's tmux server and every ssh process of it are gone
    assert Tmux(host_socket(project)).server_pid() is None
    assert ssh_processes(deps.remote.hosts["loop"]) == []


def watch_modes(project: Project) -> list[str]:
    """How the host's watcher streams said they watch (``remote_watch_mode`` log lines)."""
    found = []
    for line in project.paths.orchestrator_log.read_text().splitlines():
        if '"remote_watch_mode"' in line:
            doc = json.loads(line)
            found.append(f"{doc['mode']} {doc['reason']}".strip())
    return found


def ssh_processes(host: SshHost) -> list[int]:
    """The ssh processes (master and clients) of ``host``'s connection."""
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        argv = p.info["cmdline"] or []
        if argv[:1] == ["ssh"] and f"ControlPath={host.control_path}" in argv:
            found.append(p.info["pid"])
    return found


def store_rows(project: Project) -> tuple[list[RunRow], TaskRow | None]:
    store = project.open_store()
    try:
        return store.runs("T-1"), store.task("T-1")
    finally:
        store.close()


def running_on(project: Project, role: str, host: str | None) -> RunRow | None:
    runs, _ = store_rows(project)
    live = [r for r in runs if r.role == role and r.state == "running" and r.host == host]
    return live[-1] if live else None


def test_the_link_cut_mid_run_and_a_new_supervisor_find_the_run_again(
    projects: Projects, sshd: SshServer, remote_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MODE_ENV, "poll")  # the 0.2 s poll of a host without inotifywait
    slow = spec(factory=["slow"], qa=["slow"], slow_seconds=2.5)
    project = projects.make(
        {"T-1": {**slow, "host_labels": ["gpu"]}}, config=host_config(sshd, remote_root)
    )
    host = SshHost("loop", HostSection.model_validate(host_config(sshd, remote_root)["hosts"]["loop"]),
                   project_root=project.root, state_dir=project.paths.hatch)  # fmt: skip
    with host_server_cleaned(project):
        sup = SupervisorProcess(project, "--until-drained")
        try:
            sup.wait_running()
            wait_for(lambda: running_on(project, "factory", "loop"), 30, "the factory on loop")
            first = host.master_pid()
            assert first is not None
            os.kill(first, signal.SIGKILL)  # the link drops under the running agent
            # the supervisor goes on: the same run completes, then QA starts on the host
            qa = wait_for(lambda: running_on(project, "qa", "loop"), 30, "QA on loop")
            assert qa.pane_id is None  # no pane id of another machine in the row
            attach = attach_argv(project, qa, read_only=True)  # the `a` key, through ssh
            assert attach[:1] == ["ssh"] and "-t" in attach
            assert f"-L {host_socket(project)} " in attach[-1] and " -r " in attach[-1]
            second = host.master_pid()
            assert second is not None and second != first  # a new connection carries it
            sup.proc.kill()  # the supervisor dies mid-QA, and the link with it
            sup.proc.wait(timeout=10)
            os.kill(second, signal.SIGKILL)
        finally:
            sup.kill()
        again = SupervisorProcess(project, "--until-drained")
        try:
            assert again.wait(timeout=60) == 0, again.output()
        finally:
            again.kill()
    runs, task = store_rows(project)
    assert [(r.role, r.attempt, r.host, r.state) for r in runs] == [
        ("factory", 1, "loop", "succeeded"),
        ("qa", 1, "loop", "succeeded"),
    ]
    assert task is not None and task.state == "completed"
    assert (task.strikes, task.restarts) == (0, 0)
    store = project.open_store()
    last = [e for e in store.events() if e.kind == "reconciled"][-1]
    store.close()
    # the new supervisor took the running QA over; at load 8 QA may have finished on the host
    # before the new supervisor listed its panes: then its stop is collected (no second run)
    stop_there = remote_root / project_dir_name(project.root) / runs[1].stop_path
    adopted = last.data["adopted"]
    assert adopted == [runs[1].id] or (adopted == [] and stop_there.stat().st_mtime < last.at)
    assert ssh_processes(host) == []
    log = project.paths.orchestrator_log.read_text()
    assert '"remote_watch_ended"' in log  # the watcher saw its stream end, and reconnected
    assert set(watch_modes(project)) == {"poll forced"}


def test_a_host_gone_for_good_its_task_finishes_here_without_a_strike(
    projects: Projects, sshd: SshServer, remote_root: Path
) -> None:
    config = host_config(sshd, remote_root, max_active=2)  # more free slots than here: first
    config["limits"] = {"max_active": 1, "host_grace": "1s"}
    # attempt 1 (on the host) would outlive the test; attempt 2 does the work at once
    slow = spec(factory=[["slow", "ok"]], slow_seconds=60)
    project = projects.make({"T-1": slow}, config=config)
    with host_server_cleaned(project):
        sup = SupervisorProcess(project, "--until-drained")
        try:
            sup.wait_running()
            wait_for(lambda: running_on(project, "factory", "loop"), 30, "the factory on loop")
            sshd.stop()  # for good: the host never answers again
            assert sup.wait(timeout=60) == 0, sup.output()
        finally:
            sup.kill()
    runs, task = store_rows(project)
    assert [(r.role, r.attempt, r.host, r.state, r.reason) for r in runs] == [
        ("factory", 1, "loop", "crashed", "host_lost"),
        ("factory", 2, None, "succeeded", "completed"),
        ("qa", 1, None, "succeeded", "approved"),
    ]
    assert task is not None and task.state == "completed"
    assert (task.strikes, task.restarts) == (0, 0)
