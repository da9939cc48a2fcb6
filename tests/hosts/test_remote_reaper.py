"""Agents on an SSH host run under hatchctl's reaper, as local ones do (engine/remotesandbox.py:
runtime/reaper.py's code shipped as the ``python3 -I -S -c`` argument; the loopback sshd): an
unsandboxed agent there that leaves a double-forked ``env -i setsid`` grandchild ignoring SIGHUP
and SIGTERM takes it along when its run is killed and when it exits. A host without python3
runs its agents bare, said once."""

from __future__ import annotations

import ast
import contextlib
import glob
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from hatchctl.cmds.common import build_deps
from hatchctl.engine.remotesandbox import NO_REAPER, reaper_file, reaper_source
from hatchctl.hosts import probe
from tests.hosts.conftest import sshd_without
from tests.hosts.sshd import SshServer
from tests.hosts.test_remote_run import SIM, host_config, host_server_cleaned, remote_root
from tests.hosts.test_remote_sandbox import marked
from tests.integration.conftest import Projects, drain, projects

__all__ = ["projects", "remote_root"]  # the fixtures

# Leaves a grandchild (a double fork: its parent exits at once) in a session of its own, with an
# empty environment (no HATCH_* variable to find it by), ignoring SIGHUP and SIGTERM; says so
# once the grandchild runs. Attempt 1 then hangs (the idle timeout kills it: its pane is closed
# on the host), attempt 2 exits through the simulated agent.
LEAVER = r"""
import os, subprocess, sys, time
mark = os.environ["LEAVER_MARK"] + "-a" + os.environ["HATCH_ATTEMPT"]
keep = "import signal, time; signal.signal(signal.SIGHUP, signal.SIG_IGN); "
keep += "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
if os.fork() == 0:
    quiet = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    subprocess.Popen(["env", "-i", "setsid", sys.executable, "-c", keep, mark], **quiet)
    os._exit(0)
os.wait()

def running():
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if mark.encode() in f.read().split(b"\0"):
                    return True
        except OSError:
            pass
    return False

deadline = time.monotonic() + 30
while not running() and time.monotonic() < deadline:
    time.sleep(0.02)
print(f"grandchild running: {running()}", flush=True)
if os.environ["HATCH_ATTEMPT"] == "1":
    time.sleep(600)
os.execv(sys.executable, [sys.executable, "-m", "hatchctl", "sim-agent", *sys.argv[1:]])
"""


def gone_within(seconds: float, mark: str) -> bool:
    deadline = time.monotonic() + seconds
    while marked(mark):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_an_unsandboxed_run_on_a_host_takes_its_whole_tree_along(
    projects: Projects, sshd: SshServer, remote_root: Path, tmp_path: Path
) -> None:
    agent = tmp_path / "leaver.py"
    agent.write_text(LEAVER)
    mark = f"hatch-leaver-{uuid.uuid4().hex}"
    config = host_config(sshd, remote_root)
    config["limits"] = {"idle_timeout": "2s", "kill_grace": "1s"}
    leaver = {"command": [sys.executable, str(agent)], "env": {"LEAVER_MARK": mark}}
    config["agents"] = {"factory": {**leaver, "sandbox": "none"}, "qa": {"command": SIM}}
    spec = {"acceptance": "test -f k.txt", "sim": {"files": {"k.txt": "k\n"}}}
    project = projects.make({"T-1": {**spec, "host_labels": ["gpu"]}}, config=config)
    try:
        with host_server_cleaned(project):
            code, tasks, deps = drain(project, time_limit=60)
            # the agent exited: its reaper killed what it left before the stop was written
            assert marked(f"{mark}-a2") == []
        assert code == 0 and tasks["T-1"].state == "completed", tasks["T-1"].last_error
        runs = deps.store.runs("T-1")
        assert [(r.attempt, r.host, r.state, r.reason) for r in runs][:2] == [
            (1, "loop", "timed_out", "idle_timeout"),  # killed: its pane closed on the host
            (2, "loop", "succeeded", "completed"),
        ]
        for run in runs[:2]:
            log = (project.root / run.log_path).read_text()
            assert "grandchild running: True" in log, (run.attempt, log[-2000:])
        launched = {
            e.run_id: (e.data["sandbox"], e.data.get("reaper"))
            for e in deps.store.events("T-1")
            if e.from_state == "starting" and e.to_state == "running"
        }
        assert [launched.get(r.id) for r in runs[:2]] == [("none", True)] * 2
        # killed: the reaper there takes the SIGTERM-proof grandchild with SIGKILL after its
        # grace (1 s) and backstop (1 s)
        assert gone_within(20, f"{mark}-a1"), marked(f"{mark}-a1")
    finally:
        for pid in marked(f"{mark}-a1") + marked(f"{mark}-a2"):  # a failure leaves nothing
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()


def test_the_shipped_reaper_runs_alone_and_kills_what_the_agent_left(tmp_path: Path) -> None:
    """What a host runs: the reaper's code alone (standard library imports only), with -I -S
    in a directory whose ``math.py`` would break it if it were imported."""
    source = reaper_source()
    tree = ast.parse(source)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    roots = {name.split(".")[0] for name in imported}
    assert roots - sys.stdlib_module_names == {"psutil"}  # only where there is no /proc
    assert len(source) < 8000  # the rest of tmux's 16 KiB is the run's variables and bwrap
    (tmp_path / "math.py").write_text("raise SystemExit('imported from the worktree')\n")
    mark = f"hatch-left-{uuid.uuid4().hex}"
    keep = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
    agent = (
        "import os, subprocess, sys\n"
        "if os.fork() == 0:\n"
        f"    subprocess.Popen(['env', '-i', 'setsid', sys.executable, '-c', {keep!r}, {mark!r}])\n"
        "    os._exit(0)\n"
        "os.wait()\n"
        "sys.exit(7)\n"
    )
    argv = [sys.executable, "-I", "-S", "-c", source, "--grace", "0.2", "--"]
    try:
        res = subprocess.run(
            [*argv, sys.executable, "-I", "-c", agent],
            cwd=tmp_path,
            timeout=30,
            capture_output=True,
        )
        assert res.returncode == 7, res.stderr
        assert marked(mark) == []  # killed before the reaper exited
        killed = subprocess.run(
            [*argv, "sh", "-c", "kill -TERM $$"], cwd=tmp_path, timeout=30, capture_output=True
        )
        assert killed.returncode == 128 + 15
    finally:
        for pid in marked(mark):
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()


def runs_3_8(python: str) -> bool:
    argv = [python, "-c", "import sys; print(sys.version_info[:2])"]
    res = subprocess.run(argv, timeout=30, capture_output=True, text=True, check=False)
    return res.stdout.strip() == "(3, 8)"


def test_the_shipped_reaper_runs_on_python_3_8() -> None:
    """The oldest python3 a host may have for it (engine/remotesandbox.py NO_REAPER); an older
    one fails the probe's run (the host then runs its agents bare)."""
    ast.parse(reaper_source(), feature_version=(3, 8))
    found = [
        shutil.which("python3.8"),
        *glob.glob(os.path.expanduser("~/.pyenv/versions/3.8*/bin/python3.8")),
    ]
    python = next((p for p in found if p and runs_3_8(p)), None)
    if python is None:
        pytest.skip("no python3.8 here")
    argv = [python, "-I", "-S", "-c", reaper_source(), "--grace", "0", "--", "sh", "-c", "exit 3"]
    res = subprocess.run(argv, timeout=30, capture_output=True, text=True)
    assert res.returncode == 3, res.stderr


@pytest.fixture
def no_python_sshd(tmp_path: Path) -> Iterator[SshServer]:
    """A server whose sessions have a PATH with everything of /usr/bin but python3: a host
    without python3."""
    yield from sshd_without(tmp_path / "nopython", lambda name: name.startswith("python"))


def test_a_host_without_python3_runs_its_agents_without_the_reaper_said_once(
    projects: Projects, no_python_sshd: SshServer, sshd: SshServer, tmp_path: Path
) -> None:
    root = tmp_path / "remote"
    root.mkdir()
    config = host_config(no_python_sshd, root)
    config["agents"] = {
        "factory": {"command": SIM, "sandbox": "none"},
        "qa": {"command": SIM, "sandbox": "auto"},
    }
    config["limits"] = {"kill_grace": "2.5s"}
    project = projects.make({}, config=config)
    deps = build_deps(project)
    remote = deps.remote
    host = remote.hosts["loop"]
    try:
        assert remote.usable(host, "factory")
        assert remote.sandboxes.mode(host, "factory") == "none"  # (no call to the host)
        assert remote.sandboxes.reaped(host, "factory") is None  # not probed yet: not known
        assert remote.sandboxes.mode(host, "qa") in ("none", "bwrap")
        assert remote.sandboxes.reaper(host) == []  # bare, as before (the launch's thread)
        assert remote.sandboxes.reaped(host, "factory") is False  # (a launch's finish)
        assert remote.sandboxes.reaped(host, "qa") is False
        said = [e for e in deps.store.events() if e.kind == "host_reaper_unavailable"]
        assert len(said) == 1 and said[0].data["host"] == "loop"
        assert said[0].data["problem"] == NO_REAPER
        health = probe.probe(host, timeout=30)
        assert health.python3 == ""
        assert ("warn", probe.NO_REAPER) in probe.problems(health)
    finally:
        remote.shutdown(kill_servers=False)
        deps.store.close()
    # the same project on a host with python3: the reaper is that python3 running its source
    if sshd.proc is None:
        sshd.start()
    config = host_config(sshd, root)
    config["limits"] = {"kill_grace": "2.5s"}
    deps = build_deps(projects.make({}, config=config))
    remote = deps.remote
    host = remote.hosts["loop"]
    try:
        assert remote.usable(host, "factory")
        assert remote.sandboxes.mode(host, "factory") == "none"
        python, *rest = remote.sandboxes.reaper(host)
        assert os.path.isabs(python) and os.path.basename(python).startswith("python3")
        assert rest == ["-I", "-S", str(reaper_file(remote, host)), "--grace", "2.5", "--"]
        assert Path(str(reaper_file(remote, host))).read_text() == reaper_source()  # (loopback)
        assert remote.sandboxes.reaped(host, "factory") is True
        assert not [e for e in deps.store.events() if e.kind == "host_reaper_unavailable"]
        health = probe.probe(host, timeout=30)
        assert probe.reaps(health.python3 or "") and ("warn", probe.NO_REAPER) not in (
            probe.problems(health)
        )
    finally:
        remote.shutdown(kill_servers=False)
        deps.store.close()
