"""A run on an SSH host (the loopback sshd) gets the checks a local run gets besides its log's
size (engine/remotesample.py):

- its screen is its pane's on the host, as it shows now: a pane of this machine's tmux server
  with the same pane id (``%1`` here is another agent) is never read for it; a failure it
  cleared off its screen is not held against it, the prompt now on it is seen;
- its process tree's CPU, sampled on the host off the loop: an agent that computes without
  printing is not stalled, one that sleeps is, and idle-timed-out;
- a host that does not answer gives no sample, and the loop never waits for one."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

from hatchctl import logsetup
from hatchctl.cmds.common import build_deps
from hatchctl.engine.remotesample import CpuSamples, Sample
from hatchctl.engine.supervisor import Supervisor
from hatchctl.project import Project
from hatchctl.runtime.tmux import Tmux
from hatchctl.state.rows import RunRow
from tests.hosts.sshd import SshServer
from tests.hosts.test_remote_loop import frozen
from tests.hosts.test_remote_run import begun_on_host, host_config, host_server_cleaned, remote_root
from tests.integration.conftest import Projects, drain, projects, wait_for

__all__ = ["projects", "remote_root"]  # the fixtures

APPROVAL = "Would you like to run the following command?"  # the codex preset's waiting text
PROMPTS = (  # what the agent on the host shows, then waits
    "import signal, sys\n"
    "{before}"
    f"print({APPROVAL!r})\n"
    "print('  $ make test')\n"
    "print(' > 1. Yes, proceed')\n"
    "sys.stdout.flush()\n"
    "signal.pause()\n"
)
RECOVERED = (  # codex lost its stream once, then came back: the screen redrawn
    "print('ERROR: Reconnecting... 1/5 (stream disconnected before completion)', flush=True)\n"
    "sys.stdout.write('\\x1b[2J\\x1b[3J\\x1b[H')\n"
)
DECOY = (  # another agent on this machine, failing: its screen is not the host agent's
    "import signal\n"
    "print('ERROR: Reconnecting... 5/5 (stream disconnected before completion)')\n"
    "print('Error: no Codex credentials were found', flush=True)\n"
    "signal.pause()\n"
)


def codex_like(
    projects: Projects, sshd: SshServer, root: Path, tmp_path: Path, program: str
) -> Project:
    agent = tmp_path / "codex_like.py"  # found on the loopback host: the same machine
    agent.write_text(program)
    config: dict[str, Any] = host_config(sshd, root)
    config["agents"] = {
        "factory": {
            "preset": "codex",
            "command": [sys.executable, str(agent)],
            "env": {"CODEX_API_KEY": "fake"},
            "sandbox": "none",
        }
    }
    config["limits"] = {
        "idle_timeout": "3s",
        "stall_after": "1s",
        "max_strikes": 1,
        "restart": {"max_restarts": 0},
    }
    return projects.make({"C": {"host_labels": ["gpu"], "sim": {}}}, config=config)


def decoys(project: Project, program: Path, count: int) -> list[str]:
    """``count`` panes of this machine's tmux server of the project (in a session of their
    own: the supervisor leaves it alone) showing another agent's failure; their pane ids."""
    local = Tmux(project.tmux_socket)
    argv = ["--", sys.executable, str(program)]
    local.run("new-session", "-d", "-s", "decoy", "-x", "150", "-y", "40", *argv)
    for _ in range(count - 1):
        local.run("new-window", "-t", "decoy", *argv)
    ids = [p.pane_id for p in local.list_panes() if p.session == "decoy"]
    for pane_id in ids:
        drawn = f"decoy {pane_id} drawn"
        wait_for(lambda p=pane_id: "credentials" in local.capture(p), 20, drawn)
    return ids


def host_pane_id(project: Project, run_id: int) -> str:
    store = project.open_store()
    try:
        launched = [e for e in store.events() if e.run_id == run_id and e.data.get("host")]
        return str(launched[0].data["host_pane_id"])
    finally:
        store.close()


def test_the_screen_is_the_hosts_pane_never_a_local_pane_with_its_id(
    projects: Projects, sshd: SshServer, remote_root: Path, tmp_path: Path
) -> None:
    prompt = PROMPTS.format(before="")
    project = codex_like(projects, sshd, remote_root, tmp_path, prompt)
    decoy = tmp_path / "decoy.py"
    decoy.write_text(DECOY)
    ids = decoys(project, decoy, 6)  # %0 to %5 here: the ids a host's first panes take too
    with host_server_cleaned(project):
        _, tasks, deps = drain(project, time_limit=60)
    runs = deps.store.runs("C")
    assert [(r.host, r.state, r.reason) for r in runs] == [
        ("loop", "timed_out", "waiting_for_input")
    ]
    assert host_pane_id(project, runs[0].id) in ids  # the same pane id names a decoy here
    waiting = [e for e in deps.store.events("C") if e.kind == "agent_waiting"]
    assert waiting and waiting[0].data["source"] == "screen"
    assert "Would you like to run" in waiting[0].data["message"]
    assert "codex_unreachable" not in str(tasks["C"].errors)  # the decoy's failure: not its own
    assert tasks["C"].failure_class != "infra"


def test_a_failure_cleared_off_the_hosts_screen_is_not_held_against_the_run(
    projects: Projects, sshd: SshServer, remote_root: Path, tmp_path: Path
) -> None:
    """As for a local run, the screen is what the pane shows now (its log still holds the
    line it cleared: the end of the log was read before)."""
    program = PROMPTS.format(before=RECOVERED)
    project = codex_like(projects, sshd, remote_root, tmp_path, program)
    with host_server_cleaned(project):
        _, _tasks, deps = drain(project, time_limit=60)
    run = deps.store.runs("C")[0]
    assert "Reconnecting..." in (project.root / run.log_path).read_text()  # in its log
    assert (run.host, run.state, run.reason) == ("loop", "timed_out", "waiting_for_input")
    assert run.waiting_reason and "Would you like to run" in run.waiting_reason


# computing: a fifth of a core (20 ms in every 100), far above the 1 % that counts as busy,
# without taking a whole core from the rest of the suite for the test's seconds
BURN = (
    "import time\n"
    "while True:\n"
    "    end = time.monotonic() + 0.02\n"
    "    while time.monotonic() < end:\n"
    "        pass\n"
    "    time.sleep(0.08)\n"
)
BURN_OR_SLEEP = (  # task B computes without printing, task S sleeps
    "import os, signal, time\n"
    "print('working on', os.environ['HATCH_TASK_ID'], flush=True)\n"
    "if os.environ['HATCH_TASK_ID'] == 'B':\n"
    + "".join(f"    {line}\n" for line in BURN.splitlines()[1:])
    + "signal.pause()\n"
)


def test_an_agent_computing_silently_on_a_host_is_not_stalled_a_sleeping_one_is(
    projects: Projects, sshd: SshServer, remote_root: Path, tmp_path: Path
) -> None:
    agent = tmp_path / "agent.py"
    agent.write_text(BURN_OR_SLEEP)
    config: dict[str, Any] = host_config(sshd, remote_root)
    config["agents"]["factory"] = {"command": [sys.executable, str(agent)], "sandbox": "none"}
    idle = 5.0
    config["limits"] = {
        "idle_timeout": f"{idle}s",
        "stall_after": "4s",  # a round every second (a tenth, at least 1 s)
        "run_timeout": "120s",
        "max_strikes": 1,
        "restart": {"max_restarts": 0},
    }
    on_host = {"host_labels": ["gpu"], "sim": {}}
    project = projects.make({"B": on_host, "S": on_host}, config=config)
    logsetup.configure(project.paths.orchestrator_log)
    deps = build_deps(project)
    store = deps.store

    def busy_long_enough() -> bool:
        """S idle-timed-out, and B kept active by its CPU alone for twice the idle timeout."""
        s = store.runs("S")
        b = store.runs("B")
        if not s or s[0].state != "timed_out" or not b or b[0].state != "running":
            return False
        started = b[0].running_at or b[0].started_at
        return (b[0].last_activity_at or 0) - started > 2 * idle

    sup = Supervisor(deps, time_limit=50)
    sup.on_pass = lambda: setattr(sup, "stop_requested", sup.stop_requested or busy_long_enough())
    with host_server_cleaned(project):
        sup.run()
        assert busy_long_enough(), [(r.task_id, r.state, r.reason) for r in store.runs()]
        b, s = store.runs("B")[0], store.runs("S")[0]
        assert (b.host, s.host) == ("loop", "loop")
        assert (s.state, s.reason) == ("timed_out", "idle_timeout")
        s_states = [e.to_state for e in store.events("S") if e.kind == "run_state"]
        assert "stalled" in s_states  # shown stalled first
        b_states = [e.to_state for e in store.events("B") if e.kind == "run_state"]
        assert "stalled" not in b_states, b_states  # never: its CPU said it works
        b_log = (project.root / b.log_path).read_text()
        assert b_log.count("working on") == 1  # one line: its log said nothing since
    store.close()  # (its host's connection, watcher and rounds: closed by the supervisor)


def test_a_host_that_does_not_answer_gives_no_sample_and_is_not_waited_for(
    projects: Projects, sshd: SshServer, remote_root: Path, tmp_path: Path
) -> None:
    agent = tmp_path / "agent.py"
    agent.write_text(BURN_OR_SLEEP)
    config: dict[str, Any] = host_config(sshd, remote_root)
    config["agents"]["factory"] = {"command": [sys.executable, str(agent)], "sandbox": "none"}
    config["limits"] = {"tmux_timeout": "3s"}
    project = projects.make({"B": {"host_labels": ["gpu"], "sim": {}}}, config=config)
    deps = build_deps(project)
    remote, store = deps.remote, deps.store
    host = remote.hosts["loop"]
    try:
        with host_server_cleaned(project):
            run = begun_on_host(project, deps, "B")
            tmux = remote.tmux(host)  # its pane on the host, burning CPU
            tmux.ensure_server(Path(remote.base(host)))
            tmux.new_window(
                run.window_name,
                [sys.executable, "-c", BURN],
                cwd=tmp_path,
                env={"HATCH_TASK_ID": "B"},
                index=run.id,
            )
            wait_for(lambda: remote.pane_alive(run, deps.clock()), 30, "its pane listed")
            samples = remote.samples
            with frozen(sshd):
                samples.want(run, deps.clock(), 1.0)  # returns: the round runs in a thread
                assert samples.rounds.busy("loop")  # on the frozen host
                assert samples.take(run.id) is None
                # nor does the pane list hold the loop: listed in a thread, none known meanwhile
                remote.forget_panes(host)
                assert remote.pane_alive(run, deps.clock()) is None
                listing = [t for t in threading.enumerate() if t.name == "hatch-panes-loop"]
                assert listing and listing[0].is_alive()  # still waiting on the frozen host
                samples.rounds.threads["loop"].join()  # its timeout
                assert samples.take(run.id) is None  # nothing: neither idle nor busy
            wait_for(lambda: remote.pane_alive(run, deps.clock()), 60, "its pane listed again")
            first = wait_for(lambda: sample_of(samples, run), 60, "a sample once it answers")

            def more() -> Sample | None:
                got = sample_of(samples, run)
                return got if got is not None and got.cpu > first.cpu else None

            second = wait_for(more, 60, "a sample with more CPU: it burns")
            assert second.pid == first.pid == remote.pane(run).pid  # type: ignore[union-attr]
            assert second.clock > first.clock  # the host's clock
            sshd.stop()  # gone: its link with it
            for thread in list(samples.rounds.threads.values()):
                thread.join()
            later = deps.clock() + 10
            samples.want(run, later, 1.0)
            assert samples.started["loop"] == later  # a round was tried
            for thread in list(samples.rounds.threads.values()):
                thread.join()
            assert samples.take(run.id) is None
    finally:
        remote.shutdown(kill_servers=False)
        store.close()
        if sshd.proc is None:
            sshd.start()  # for the tests after this one
    assert not any(t.is_alive() for t in remote.samples.rounds.threads.values())


def sample_of(samples: CpuSamples, run: RunRow) -> Sample | None:
    """A round asked for (when none runs) and what came of the last one."""
    samples.want(run, time.time(), 0.0)
    return samples.take(run.id)
