"""runtime/psinfo.alive_since: a run's pane process is alive and is the same process (its start
no later than the run's), read from one /proc/<pid>/stat, as psutil says it. Real processes."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import psutil

from hatchctl.runtime import psinfo
from tests.conftest import poll


def test_alive_dead_zombie_and_a_later_process_with_the_pid() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        created = psutil.Process(proc.pid).create_time()
        assert psinfo.alive_since(proc.pid, time.time())
        assert psinfo.alive_since(proc.pid, created)  # within the second psutil allows
        # started after the run it would be: another process given the pid (reuse)
        assert not psinfo.alive_since(proc.pid, created - 5)
        proc.kill()
        poll(lambda: psutil.Process(proc.pid).status() == psutil.STATUS_ZOMBIE, what="zombie")
        assert not psinfo.alive_since(proc.pid, time.time())  # exited, not yet reaped
    finally:
        proc.kill()
        proc.wait()
    assert not psinfo.alive_since(proc.pid, time.time())  # gone
    assert not psinfo.alive_since(None, time.time())
    assert not psinfo.alive_since(0, time.time())


def test_a_process_named_to_look_like_another_state_is_read_right(tmp_path: Path) -> None:
    """The name in /proc/<pid>/stat is the agent's to choose (its program's file name):
    ") Z 1 2" in it changes nothing."""
    fake = tmp_path / ") Z 1 2 3"
    fake.symlink_to(shutil.which("sleep") or "/bin/sleep")
    proc = subprocess.Popen([str(fake), "30"])
    try:
        poll(lambda: psutil.Process(proc.pid).name() == fake.name, what="the process named")
        assert psinfo.alive_since(proc.pid, time.time())
    finally:
        proc.kill()
        proc.wait()
