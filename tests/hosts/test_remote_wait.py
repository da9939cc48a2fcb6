"""Claude Code's Notification hook on an SSH host (the loopback sshd): the ``<stop>.wait`` its
hook script (hatch_scripts/agent/signal_hook.sh, run there as Claude Code runs it) writes on the
host reaches the controller through the host's watcher stream and is read off the loop
(engine/remotesignals.py), in both watcher modes: the run is marked waiting as a local one
(event ``agent_waiting`` with the hook's message); one without the run's token is refused
(``forged_signal``), as locally."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hatchctl.cmds.common import build_deps
from hatchctl.engine import remotecheck
from hatchctl.engine.deps import Deps
from hatchctl.engine.remotesignals import parse_line, parse_wait_line
from hatchctl.engine.supervisor import Supervisor
from hatchctl.state.rows import RunRow
from tests.hosts.sshd import SshServer
from tests.hosts.test_remote_run import begun_on_host, host_config, host_server_cleaned, remote_root
from tests.hosts.test_remotewatch import mode
from tests.integration.conftest import Projects, projects, wait_for

__all__ = ["mode", "projects", "remote_root"]  # the fixtures

HOOK = Path(__file__).parents[2] / "hatch_scripts" / "agent" / "signal_hook.sh"
NOTIFICATION = {"hook_event_name": "Notification", "message": "Claude needs your permission"}


def notify_on_host(stop_there: Path, run_id: int, token: str) -> None:
    """The Notification hook as Claude Code runs it on the host (the loopback host's files are
    this machine's): the event's JSON on stdin, the run's HATCH_* in its environment."""
    env = {
        **os.environ,
        "HATCH_RUN_ID": str(run_id),
        "HATCH_STOP_FILE": str(stop_there),
        "HATCH_RUN_TOKEN": token,
    }
    subprocess.run(
        ["bash", str(HOOK), "wait"],
        input=json.dumps(NOTIFICATION),
        text=True,
        env=env,
        check=True,
        timeout=30,
    )
    assert stop_there.with_name(stop_there.name + ".wait").is_file()


def events_of(deps: Deps, run: RunRow, kind: str) -> list[dict[str, object]]:
    return [e.data for e in deps.store.events(run.task_id) if e.kind == kind]


def test_a_notification_written_on_the_host_marks_the_run_waiting_a_forged_one_is_refused(
    projects: Projects, sshd: SshServer, remote_root: Path, tmp_path: Path, mode: str
) -> None:
    config = host_config(sshd, remote_root)
    config["limits"] = {"stall_after": "10m", "idle_timeout": "20m"}  # quiet, never stalled
    project = projects.make({"W": {"host_labels": ["gpu"], "sim": {}}}, config=config)
    deps = build_deps(project)
    sup = Supervisor(deps)  # its monitor checks the run (its loop is not run)
    remote, store = deps.remote, deps.store
    host = remote.hosts["loop"]
    try:
        with host_server_cleaned(project):
            run = begun_on_host(project, deps, "W", deps.clock())
            remote.prepare(host)
            stop_there = Path(remote.on_host(host, project.root / run.stop_path))
            stop_there.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # as launch does
            tmux = remote.tmux(host)  # its pane on the host: the agent, at its prompt
            tmux.ensure_server(Path(remote.base(host)))
            argv = [sys.executable, "-c", "import signal; signal.pause()"]
            tmux.new_window(run.window_name, argv, cwd=tmp_path, env={}, index=run.id)
            watch = remote.watch(host)
            wait_for(watch.connected.is_set, 30, "the host's watcher stream")
            assert watch.mode == mode

            def check() -> RunRow:
                now = deps.clock()
                fresh = store.run(run.id)
                assert fresh is not None and fresh.state == "running", fresh
                remotecheck.check_active(sup.monitor, fresh, now)  # as the loop's pass does
                return store.run(run.id)  # type: ignore[return-value]

            # a Notification without the run's token (another run's, or the agent's own try)
            notify_on_host(stop_there, run.id, deps.run_token(run.id + 1))
            wait_for(lambda: check() and events_of(deps, run, "forged_signal"), 30, "refused")
            assert events_of(deps, run, "forged_signal") == [{"file": "wait", "host": "loop"}]
            assert check().waiting_since is None
            assert not events_of(deps, run, "agent_waiting")

            notify_on_host(stop_there, run.id, deps.run_token(run.id))  # the hook's own
            waiting = wait_for(lambda: check().waiting_since, 30, "the run marked waiting")
            assert waiting >= (run.running_at or 0)
            now_run = store.run(run.id)
            assert now_run is not None and now_run.waiting_reason == NOTIFICATION["message"]
            assert events_of(deps, run, "agent_waiting") == [{"message": NOTIFICATION["message"]}]
            for _ in range(3):  # recorded once: the same file is not read again
                check()
            assert len(events_of(deps, run, "agent_waiting")) == 1
            assert len(events_of(deps, run, "forged_signal")) == 1
    finally:
        remote.shutdown(kill_servers=False)
        store.close()
    assert not any(t.is_alive() for t in remote.waits.flights.threads.values())


def test_a_notification_line_is_parsed_apart_from_a_stop_and_untrusted() -> None:
    wait = "1764171234.5 T-1/factory.i1/T-1.factory.i1.a1.stop.wait"
    assert parse_wait_line(wait) == ("T-1/factory.i1/T-1.factory.i1.a1.stop.wait", "1764171234.5")
    assert parse_line(wait) is None  # never taken for a stop
    assert parse_wait_line("1764171234.5 T-1/factory.i1/T-1.factory.i1.a1.stop") is None
    for bad in (
        "1 T-1/factory.i1/x.stop.wait.123.tmp",  # the hook's temp file
        "1 ../factory.i1/x.stop.wait",
        "1 T-1/factory.i1/../x.stop.wait",
        "1 T-1/planner.i1/x.stop.wait",
        "x T-1/factory.i1/x.stop.wait",
        "1 T-1/factory.i1/x y.stop.wait",
        "1 /T-1/factory.i1/x.stop.wait",
    ):
        assert parse_wait_line(bad) is None, bad
