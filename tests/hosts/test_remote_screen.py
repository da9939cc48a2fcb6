"""A run on an SSH host stalls: its screen is captured on the host off the supervisor's loop
(engine/remotesample.Screens). With the host frozen (the loopback sshd SIGSTOPped) the check
returns while the capture hangs there; once the host answers again the capture lands and the
prompt on it is seen on a later pass (event ``agent_waiting``, source ``screen``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hatchctl.cmds.common import build_deps
from hatchctl.engine.supervisor import Supervisor
from hatchctl.project import Project
from tests.hosts.sshd import SshServer
from tests.hosts.test_remote_activity import PROMPTS
from tests.hosts.test_remote_loop import frozen
from tests.hosts.test_remote_run import begun_on_host, host_config, host_server_cleaned, remote_root
from tests.integration.conftest import Projects, projects, wait_for

__all__ = ["projects", "remote_root"]  # the fixtures


def codex_on_host(
    projects: Projects, sshd: SshServer, remote_root: Path, command: list[str], tmux_timeout: str
) -> Project:
    """A project whose task C runs on the loopback host: a codex-preset factory (``command``,
    unsandboxed), stalled after 1 s of quiet, its host's tmux calls bounded by
    ``tmux_timeout``."""
    config: dict[str, Any] = host_config(sshd, remote_root)
    config["agents"]["factory"] = {
        "preset": "codex",
        "command": command,
        "env": {"CODEX_API_KEY": "fake"},
        "sandbox": "none",
    }
    config["limits"] = {"stall_after": "1s", "idle_timeout": "10m", "tmux_timeout": tmux_timeout}
    return projects.make({"C": {"host_labels": ["gpu"], "sim": {}}}, config=config)


def test_a_stalled_host_runs_screen_is_captured_off_the_loop_and_seen_when_it_lands(
    projects: Projects, sshd: SshServer, remote_root: Path, tmp_path: Path
) -> None:
    agent = tmp_path / "codex_like.py"
    agent.write_text(PROMPTS.format(before=""))
    # a capture on the frozen host hangs until it answers (far within its timeout)
    project = codex_on_host(projects, sshd, remote_root, [sys.executable, str(agent)], "120s")
    deps = build_deps(project)
    sup = Supervisor(deps)
    activity = sup.monitor.activity
    remote, store = deps.remote, deps.store
    host = remote.hosts["loop"]
    screens = remote.screens
    try:
        with host_server_cleaned(project):
            started = deps.clock() - 30  # quiet since: past its stall time
            run = begun_on_host(project, deps, "C", started)
            tmux = remote.tmux(host)  # its pane on the host, at the codex-like prompt
            tmux.ensure_server(Path(remote.base(host)))
            argv = [sys.executable, str(agent)]
            pane = tmux.new_window(run.window_name, argv, cwd=tmp_path, env={}, index=run.id)
            wait_for(lambda: "Would you like" in tmux.capture(pane.pane_id), 30, "the prompt")
            wait_for(lambda: remote.pane_alive(run, deps.clock()), 30, "its pane listed")

            def check() -> None:
                fresh = store.run(run.id)
                assert fresh is not None
                activity.check_idle(fresh, deps.clock(), started)

            with frozen(sshd):
                check()  # stalled: its screen asked for, on the frozen host
                stalled = store.run(run.id)
                assert stalled is not None and stalled.state == "stalled"
                capture = screens.flights.threads[run.id]
                assert capture.is_alive()  # the check returned; the capture hangs there
                assert run.id in activity.screen_due  # looked at again when it lands
                check()  # a later pass: nothing landed, nothing waited for
                assert capture.is_alive() and screens.flights.threads[run.id] is capture
                assert not [e for e in store.events("C") if e.kind == "agent_waiting"]
                assert stalled.waiting_since is None
            capture.join()  # the host answers: the capture lands (its timeout is far)
            assert screens.landed[run.id].text is not None
            assert run.id not in screens.flights.threads  # (a finished capture is not kept)

            def waiting() -> list[dict[str, Any]]:
                check()
                return [e.data for e in store.events("C") if e.kind == "agent_waiting"]

            seen = wait_for(waiting, 30, "the prompt seen on the landed capture")
            assert seen[0]["source"] == "screen" and "Would you like" in seen[0]["message"]
            assert run.id not in activity.screen_due  # looked at: once, as for a local run
            ended = store.run(run.id)
            assert ended is not None and ended.state == "stalled" and ended.waiting_since
    finally:
        remote.shutdown(kill_servers=False)
        store.close()
    assert not any(t.is_alive() for t in screens.flights.threads.values())


def test_a_host_gone_its_screen_is_the_end_of_the_local_copy_of_its_log(
    projects: Projects, sshd: SshServer, remote_root: Path, tmp_path: Path
) -> None:
    """The capture fails (the host does not answer): the end of the log copied here is read
    instead, as before; its pane is captured again later (the check is not settled)."""
    pause = [sys.executable, "-c", "import signal; signal.pause()"]
    project = codex_on_host(projects, sshd, remote_root, pause, "20s")
    deps = build_deps(project)
    sup = Supervisor(deps)
    activity = sup.monitor.activity
    remote, store = deps.remote, deps.store
    host = remote.hosts["loop"]
    screens = remote.screens
    try:
        with host_server_cleaned(project):
            started = deps.clock() - 30
            run = begun_on_host(project, deps, "C", started)
            tmux = remote.tmux(host)  # its pane there shows nothing
            tmux.ensure_server(Path(remote.base(host)))
            argv = [sys.executable, "-c", "import signal; signal.pause()"]
            tmux.new_window(run.window_name, argv, cwd=tmp_path, env={}, index=run.id)
            wait_for(lambda: remote.pane_alive(run, deps.clock()), 30, "its pane listed")
            local_log = project.root / run.log_path  # what was copied of it: the prompt
            local_log.parent.mkdir(parents=True, exist_ok=True)
            local_log.write_text("Would you like to run the following command?\n > 1. Yes\n")
            sshd.stop()  # gone, its connections with it

            def check() -> list[dict[str, Any]]:
                fresh = store.run(run.id)
                assert fresh is not None
                activity.check_idle(fresh, deps.clock(), started)
                return [e.data for e in store.events("C") if e.kind == "agent_waiting"]

            seen = wait_for(check, 60, "the prompt in the local copy of its log")
            assert "Would you like" in seen[0]["message"]
            assert run.id in screens.failed_at  # read from the log: its pane did not answer
    finally:
        remote.shutdown(kill_servers=False)
        store.close()
        if sshd.proc is None:
            sshd.start()  # for the tests after this one
