from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hatchctl.errors import SupervisorError
from hatchctl.state.lockfile import SupervisorLock, probe

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from hatchctl.state.lockfile import SupervisorLock
    lock = SupervisorLock(Path(sys.argv[1]))
    lock.acquire()
    print("held", flush=True)
    time.sleep(60)
""")


def test_live_holder_refused_with_its_pid_and_dead_one_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        info = probe(path)
        assert info.held and info.pid == holder.pid
        with pytest.raises(
            SupervisorError, match=f"already running for this project \\(pid {holder.pid}\\)"
        ):
            SupervisorLock(path).acquire(wait=0.2)
        holder.kill()  # SIGKILL: the lock file stays, with the dead pid in it
        holder.wait(5)
        assert path.read_text().strip() == str(holder.pid)
        lock = SupervisorLock(path)
        lock.acquire(wait=0.0)  # taken over at once: a dead holder's lock is not waited for
        assert lock.took_over_from == holder.pid
        assert probe(path).pid is not None
        lock.release()
        assert not probe(path).held
    finally:
        holder.kill()
