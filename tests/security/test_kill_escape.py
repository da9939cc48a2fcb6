"""Kill means every descendant: an agent run by the reaper cannot leave a process behind by
double-forking, clearing its environment (losing HATCH_RUN_KEY) and calling setsid, and the kill
report's ``survivors`` is measured, not assumed. Real processes; every wait polls a condition."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from hatchctl.runtime import psinfo
from tests.conftest import poll

REAPER = [sys.executable, "-I", "-m", "hatchctl.runtime.reaper"]

# The agent ignores SIGTERM and double-forks a grandchild that runs `env -i setsid`, ignores
# SIGTERM too and sleeps; $3 = "exec" makes the grandchild exec its sleep (one process, no child).
# On SIGTERM it forks one more such grandchild ("late"), so a kill must look again after its
# SIGTERM. Every sleep of the tree has the unique duration $2: the marker that finds them.
STUBBORN_AGENT = r"""
dir=$1 marker=$2 mode=$3
escape() {
  ( env -i setsid sh -c 'trap "" TERM; echo $$ > "$0/$1.pid"; '"$mode"' sleep '"$marker"'; :' \
      "$dir" "$1" & )
}
escape gc
trap 'escape late' TERM
i=0
while [ ! -s "$dir/gc.pid" ] && [ $i -lt 2000 ]; do sleep 0.01; i=$((i + 1)); done
echo ready > "$dir/ready"
while :; do sleep "$marker" & wait; done
"""


def with_marker(marker: str) -> list[int]:
    """Live (non-zombie) processes whose command line holds ``marker``."""
    found = []
    for p in psutil.process_iter(["cmdline", "status"]):
        if p.info["status"] != psutil.STATUS_ZOMBIE and marker in " ".join(p.info["cmdline"] or ()):
            found.append(p.pid)
    return found


@pytest.fixture
def marker() -> Iterator[str]:
    value = f"298.{uuid.uuid4().int % 10**12:012d}"
    yield value
    for pid in with_marker(value):  # a failing test leaks nothing
        os.kill(pid, signal.SIGKILL)


def start_agent(
    tmp_path: Path, marker: str, key: str, *, grace: float, mode: str = ""
) -> subprocess.Popen[bytes]:
    """The stubborn agent under the reaper, in a session of its own as in a tmux pane."""
    script = tmp_path / "agent.sh"
    script.write_text(STUBBORN_AGENT)
    proc = subprocess.Popen(
        [*REAPER, "--grace", str(grace), "--", "sh", str(script), str(tmp_path), marker, mode],
        env={**os.environ, psinfo.RUN_KEY_ENV: key},
        start_new_session=True,
        stdin=subprocess.DEVNULL,
    )
    poll(lambda: (tmp_path / "ready").exists(), what="the agent and its grandchild to run")
    return proc


def pid_in(path: Path) -> int:
    return int(path.read_text())


def escaped(tmp_path: Path, proc: subprocess.Popen[bytes], key: str) -> int:
    """The grandchild, after checking it really escaped everything but the reaper's tree."""
    gc = pid_in(tmp_path / "gc.pid")
    assert gc not in [p.pid for p in psinfo.marked(key)]  # env -i: no HATCH_RUN_KEY
    assert psinfo.RUN_KEY_ENV not in psutil.Process(gc).environ()
    assert os.getsid(gc) == gc != os.getsid(proc.pid)  # setsid: a session (and group) of its own
    assert psutil.Process(gc).ppid() == proc.pid  # double fork: re-parented to the subreaper
    assert gc in [i[0] for i in psinfo.agent_processes(key)]  # so the supervisor finds it
    return gc


@pytest.mark.parametrize("reaper_grace", [60.0, 0.5])
def test_kill_agent_leaves_nothing_of_a_tree_with_an_escaped_grandchild(
    tmp_path: Path, marker: str, reaper_grace: float
) -> None:
    """With the reaper's own grace at 60s the supervisor's kill does all the work itself; at
    0.5s (the supervisor's grace, as run_agent.sh configures it) both escalate, the reaper a
    moment later (reaper.BACKSTOP), and the supervisor must still see and report its SIGKILLs."""
    key = f"kill-escape-{uuid.uuid4().hex}"
    proc = start_agent(tmp_path, marker, key, grace=reaper_grace)
    escaped(tmp_path, proc, key)
    assert len(with_marker(marker)) >= 4  # reaper, agent, its sleep, grandchild, its sleep

    report = psinfo.kill_agent(key, grace=0.5)

    assert with_marker(marker) == []  # nothing of the tree is alive the moment kill returns
    assert psinfo.marked(key) == []
    assert report.survivors == []
    assert report.found >= 5  # reaper, agent and its sleep, grandchild and its sleep
    assert report.killed >= 1  # the supervisor's report says SIGTERM was not enough
    assert report.as_dict()["survivors"] == [] and report.as_dict()["sigkilled"] == report.killed
    # the agent forks once more on SIGTERM; whether that fork got as far as writing its pid
    # before the SIGKILL depends on the machine's load: either way it is gone (checked above)
    code = proc.wait(timeout=10)
    if reaper_grace == 60.0:  # the reaper is still in its grace: kill_agent did all the work
        assert code == -signal.SIGKILL
        assert report.killed >= 3  # the agent, the grandchild and the reaper


def test_a_kill_out_of_time_still_kills_what_it_froze(tmp_path: Path, marker: str) -> None:
    """A machine so slow that the kill's time to look for late forks is up before its first
    SIGKILL (``settle=0``): what it froze with SIGSTOP is killed all the same, never left
    stopped (it was, before: found at load 11, ten stopped processes of a tree left behind)."""
    key = f"kill-escape-{uuid.uuid4().hex}"
    proc = start_agent(tmp_path, marker, key, grace=60.0)
    escaped(tmp_path, proc, key)
    report = psinfo.kill_agent(key, grace=0.2, settle=0.0)
    assert report.killed >= 3  # the agent, the grandchild and the reaper, at least
    poll(lambda: with_marker(marker) == [], what="every process of the tree to be gone")
    assert proc.wait(timeout=10) == -signal.SIGKILL


def test_a_process_that_cannot_be_killed_is_reported_as_a_survivor(
    tmp_path: Path, marker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Negative control. Signals to the escaped grandchild fail with EPERM (fault injection: the
    test runs as root, which may signal anything), so it truly survives; the report must say so
    although it carries no marker and its parent, the reaper, is gone."""
    key = f"kill-escape-{uuid.uuid4().hex}"
    proc = start_agent(tmp_path, marker, key, grace=60.0, mode="exec")
    gc = escaped(tmp_path, proc, key)
    real_kill, real_killpg = os.kill, os.killpg

    def kill(pid: int, sig: int) -> None:
        if pid == gc:
            raise PermissionError(1, "Operation not permitted")
        real_kill(pid, sig)

    def killpg(pgid: int, sig: int) -> None:
        if pgid == gc:  # its own group (setsid)
            raise PermissionError(1, "Operation not permitted")
        real_killpg(pgid, sig)

    monkeypatch.setattr(os, "kill", kill)
    monkeypatch.setattr(os, "killpg", killpg)
    try:
        report = psinfo.kill_agent(key, grace=0.3)
    finally:
        monkeypatch.undo()
    try:
        assert psutil.Process(gc).status() != psutil.STATUS_ZOMBIE  # it is really alive
        assert report.survivors == [gc]
        assert with_marker(marker) == [gc]  # and it is the only thing left
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        os.kill(gc, signal.SIGKILL)


def test_still_running_measures_pid_and_create_time() -> None:
    """The survivor measure on unrelated processes: alive, reused pid, zombie, reaped."""
    live = subprocess.Popen(["sleep", "300"])
    dying = subprocess.Popen(["sleep", "300"])
    try:
        ident = (live.pid, psutil.Process(live.pid).create_time())
        assert psinfo.still_running([ident]) == [live.pid]
        assert psinfo.still_running([(live.pid, ident[1] - 5.0)]) == []  # same pid, other process
        zombie = (dying.pid, psutil.Process(dying.pid).create_time())
        dying.kill()
        poll(
            lambda: psutil.Process(dying.pid).status() == psutil.STATUS_ZOMBIE,
            what="a zombie",
        )
        assert psinfo.still_running([zombie, ident]) == [live.pid]  # a zombie runs no code
        dying.wait()
        assert psinfo.still_running([zombie]) == []
    finally:
        live.kill()
        live.wait()
        dying.kill()
        dying.wait()
    assert psinfo.still_running([ident]) == []


def test_kill_agent_of_an_unknown_run_finds_nothing() -> None:
    report = psinfo.kill_agent(f"no-such-run-{uuid.uuid4().hex}", grace=5.0)
    assert (report.found, report.killed, report.survivors) == (0, 0, [])
    assert report.seconds < 5.0  # no grace is waited when there is nothing to wait for
