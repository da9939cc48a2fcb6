"""The supervisor's loop never waits for an SSH host (the loopback sshd frozen, or stopped):

- a launch there opens its pane in a job (engine/remotelaunch.py): the run is ``starting`` at
  once, and ``running`` when the job is collected after the host answers again;
- a stopped run's branch is brought back in threads (engine/remotecheck.settle says "not yet",
  and the loop is woken when it is done); a fetch that hangs until its timeout is the host's
  fault, retried, and the branch comes back whole once the host answers again; past
  ``host_grace`` the run ends ``host_lost``. Never a strike, never an infrastructure failure
  counted against the supervisor."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from hatchctl.cmds.common import build_deps
from hatchctl.engine import launcher, remotecheck, remotefiles
from hatchctl.engine.deps import Deps
from hatchctl.engine.supervisor import Supervisor
from hatchctl.project import Project
from hatchctl.state.rows import RunRow
from hatchctl.state.sync import sync_specs
from tests.conftest import git
from tests.hosts.sshd import SshServer
from tests.hosts.test_remote_run import host_config, host_server_cleaned, remote_root, spec
from tests.integration.conftest import Projects, projects, wait_for

__all__ = ["projects", "remote_root"]  # the fixtures


def task_branch(project: Project) -> Path:
    """Task T-1's branch and worktree here (what its setup job makes)."""
    git(project.root, "branch", "hatch/T-1", "main")
    worktree = project.paths.worktree("T-1")
    git(project.root, "worktree", "add", "-q", str(worktree), "hatch/T-1")
    return worktree


def stopped_on_host(project: Project, deps: Deps) -> tuple[RunRow, str]:
    """Task T-1's factory run on host ``loop``, stopped there with one commit on its branch
    (what a launch and the agent leave); returns the run and that commit."""
    worktree = task_branch(project)
    remote = deps.remote
    host = remote.hosts["loop"]
    remote.prepare(host)
    hatch = remote.hatch_dir(host)
    url = host.git_url(hatch / "repo.git")
    deps.scripts.run("git/push_to_host.sh", str(project.root), url, "T-1", env=remote.git_env(host))
    there = Path(remote.on_host(host, worktree))
    remotefiles.script(
        host, hatch, "git/host_worktree.sh", str(hatch / "repo.git"), str(there), "T-1", timeout=30
    )
    (there / "hello.txt").write_text("hi\n")  # the agent's work, committed on the host
    git(there, "add", "hello.txt")
    git(there, "-c", "user.name=a", "-c", "user.email=a@example.invalid", "commit", "-qm", "w")
    specs = project.load_specs().specs
    sync_specs(deps.store, specs)
    task = deps.store.task("T-1")
    assert task is not None
    pending = launcher.begin(deps, task, specs["T-1"], "factory", 1, 1, host=host)
    with deps.store.tx() as tx:
        tx.transition_run(pending.run.id, "starting", "running", running_at=tx.now)
        run = tx.transition_run(pending.run.id, "running", "stopped")
    return run, git(there, "rev-parse", "HEAD")


@contextlib.contextmanager
def frozen(sshd: SshServer) -> Iterator[None]:
    """The host stops answering (every process of the sshd stopped: a link that hangs, the
    master connection here still up), and answers again after."""
    assert sshd.proc is not None
    top = psutil.Process(sshd.proc.pid)
    procs = [top, *top.children(recursive=True)]
    for p in procs:
        p.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.send_signal(signal.SIGCONT)


def no_fault_counted(deps: Deps) -> None:
    task = deps.store.task("T-1")
    assert task is not None and (task.strikes, task.restarts) == (0, 0)
    kinds = {e.kind for e in deps.store.events()}
    assert not kinds & {"infra_failure", "remote_fetch_failed", "strike"}, kinds


def config(sshd: SshServer, root: Path, **limits: Any) -> dict[str, Any]:
    return {**host_config(sshd, root), "limits": limits}


def test_a_launch_on_a_host_that_does_not_answer_leaves_the_loop_free(
    projects: Projects, sshd: SshServer, remote_root: Path
) -> None:
    gpu = {**spec(), "host_labels": ["gpu"]}  # only the host may take it
    project = projects.make({"T-1": gpu}, config=config(sshd, remote_root, script_timeout="20s"))
    deps = build_deps(project)
    sup = Supervisor(deps)
    remote = deps.remote
    try:
        with host_server_cleaned(project):
            task_branch(project)
            specs = project.load_specs().specs
            sync_specs(deps.store, specs)
            task = deps.store.task("T-1")
            assert task is not None
            remote.prepare(remote.hosts["loop"])  # as placement has done before
            with frozen(sshd):  # the push, the worktree and tmux there wait for the host
                sup.launches.start(task, specs["T-1"], "factory")  # returns at once
                runs = deps.store.runs("T-1")
                assert [(r.host, r.state) for r in runs] == [("loop", "starting")]
                assert "T-1" in sup.jobs  # its pane opens in a job
            wait_for(lambda: sup.jobs.jobs["T-1"].done(), 60, "the pane opened on the host")
            sup.jobs.collect()  # the loop writes the ticket there
            run = deps.store.run(runs[0].id)
            assert run is not None and run.state == "running", run
            assert "loop" in remote.watches  # its stop comes on the host's stream
    finally:
        sup.jobs.shutdown()
        remote.shutdown(kill_servers=True)
        deps.store.close()


def test_a_fetch_that_hangs_is_not_waited_for_and_retried_when_the_host_answers(
    projects: Projects, sshd: SshServer, remote_root: Path
) -> None:
    project = projects.make(
        {"T-1": spec()}, config=config(sshd, remote_root, script_timeout="5s", host_grace="10m")
    )
    deps = build_deps(project)
    remote = deps.remote
    try:
        run, commit = stopped_on_host(project, deps)
        wake = ("stop", str(project.root / run.stop_path))
        with frozen(sshd):
            assert remotecheck.settle(deps, run) is False  # at once: the fetch runs meanwhile
            pending = remote.results.pending[run.id]
            assert not pending.done()  # it hangs on the frozen host: nobody waits for it
            assert remote.sink.get(timeout=60) == wake  # timed out: the loop is woken
            assert remotecheck.settle(deps, run) is False  # the host's fault: later again
            assert run.id in remote.results.failing
            assert deps.store.run(run.id).state == "stopped"  # type: ignore[union-attr]
            no_fault_counted(deps)
        # the host answers again: the next try (after UNREACHABLE_RETRY) brings the branch back
        wait_for(lambda: remotecheck.settle(deps, run), 60, "the branch fetched again")
        assert git(project.paths.worktree("T-1"), "rev-parse", "HEAD") == commit  # nothing lost
        assert run.id not in remote.results.failing
        no_fault_counted(deps)
    finally:
        remote.shutdown(kill_servers=False)
        deps.store.close()


def test_a_host_gone_during_the_fetch_past_its_grace_ends_the_run_host_lost(
    projects: Projects, sshd: SshServer, remote_root: Path
) -> None:
    project = projects.make({"T-1": spec()}, config=config(sshd, remote_root, host_grace="0s"))
    deps = build_deps(project)
    remote = deps.remote
    try:
        run, _ = stopped_on_host(project, deps)
        sshd.stop()  # gone, its connections with it
        assert remotecheck.settle(deps, run) is False
        assert remote.sink.get(timeout=60) == ("stop", str(project.root / run.stop_path))
        assert remotecheck.settle(deps, run) is False
        ended = deps.store.run(run.id)
        assert ended is not None and (ended.state, ended.reason) == ("crashed", "host_lost")
        task = deps.store.task("T-1")
        assert task is not None and (task.phase, task.resume_phase) == ("backoff", "factory")
        assert "loop" in remote.down  # nothing placed there until it answers
        no_fault_counted(deps)
    finally:
        remote.shutdown(kill_servers=False)
        deps.store.close()
        sshd.start()  # for the tests after this one
