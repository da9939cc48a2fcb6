"""hatchctl.runtime.reaper: kill means every descendant. Real processes throughout; every wait
polls a condition with a deadline."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest

from hatchctl.engine import confinement
from hatchctl.runtime import reaper
from tests.conftest import poll

REAPER = [sys.executable, "-I", "-m", "hatchctl.runtime.reaper"]  # -I: see test_isolated_mode_*

# The "agent": double-forks a grandchild that clears its environment (env -i), starts a new
# session (setsid) and ignores SIGTERM, waits until that grandchild runs, then exits with $3.
# The grandchild's sleep has a unique duration: the marker that finds its processes ($2).
ESCAPING_AGENT = r"""
dir=$1 marker=$2 code=$3
( env -i setsid sh -c 'trap "" TERM; echo $$ > "$0/gc.pid"; sleep '"$marker"'; :' "$dir" & )
i=0
while [ ! -s "$dir/gc.pid" ] && [ $i -lt 2000 ]; do sleep 0.01; i=$((i + 1)); done
exit "$code"
"""


def with_marker(marker: str) -> list[psutil.Process]:
    """Live (non-zombie) processes whose command line holds ``marker``."""
    found = []
    for p in psutil.process_iter(["cmdline", "status"]):
        if p.info["status"] != psutil.STATUS_ZOMBIE and marker in " ".join(p.info["cmdline"] or ()):
            found.append(p)
    return found


@pytest.fixture
def marker() -> Iterator[str]:
    """A unique sleep duration (299.<12 digits> seconds); whatever still carries it at the end
    of the test is SIGKILLed so a failing test leaks nothing."""
    value = f"299.{uuid.uuid4().int % 10**12:012d}"
    yield value
    for p in with_marker(value):
        p.kill()


def agent_of(proc: subprocess.Popen[bytes], name: str) -> psutil.Process | None:
    """The reaper's child once it runs ``name`` (the reaper blocks its signals before that)."""
    with_name = [k for k in psutil.Process(proc.pid).children() if k.name() == name]
    return with_name[0] if with_name else None


def escaping_agent(tmp_path: Path, marker: str, code: int) -> list[str]:
    script = tmp_path / "agent.sh"
    script.write_text(ESCAPING_AGENT)
    return ["sh", str(script), str(tmp_path), marker, str(code)]


def run_reaper(*args: str, grace: float = 0.3, **kw: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*REAPER, "--grace", str(grace), "--", *args], **kw)


# -- (1) an escaping grandchild ---------------------------------------------------------------


def test_control_without_the_reaper_the_grandchild_escapes(tmp_path: Path, marker: str) -> None:
    """The scenario is a real escape: run directly, the agent exits and its grandchild lives on,
    without the marker environment and in a session of its own."""
    env = {**os.environ, "HATCH_RUN_KEY": "control-" + marker}
    out = subprocess.run(escaping_agent(tmp_path, marker, 7), env=env, timeout=30)
    assert out.returncode == 7
    gc = int((tmp_path / "gc.pid").read_text())
    assert gc in [p.pid for p in with_marker(marker)]  # survived its parents
    assert "HATCH_RUN_KEY" not in psutil.Process(gc).environ()
    assert os.getsid(gc) != os.getsid(0)


def test_agent_exit_kills_a_double_forked_setsid_grandchild(tmp_path: Path, marker: str) -> None:
    t0 = time.monotonic()
    proc = run_reaper(*escaping_agent(tmp_path, marker, 7), grace=0.3)
    assert proc.wait(timeout=30) == 7  # the agent's exit status
    assert (tmp_path / "gc.pid").exists()  # the grandchild did run (and ignored SIGTERM)
    assert with_marker(marker) == []  # nothing left the moment the reaper has exited
    assert time.monotonic() - t0 >= 0.3  # SIGTERM was ignored: it took the grace, then SIGKILL


def test_orphans_re_parent_to_the_reaper_and_are_reaped(tmp_path: Path, marker: str) -> None:
    script = tmp_path / "orphans.sh"
    script.write_text(
        r"""
        for i in 1 2 3 4 5; do ( sleep 1 & ); done
        ( env -i setsid sh -c 'echo $$ > "$0/gc.pid"; sleep '"$2"'; :' "$1" & )
        exec sleep "$2"
        """
    )
    proc = run_reaper("sh", str(script), str(tmp_path), marker, grace=0.3)
    try:
        gc = poll(lambda: (tmp_path / "gc.pid").exists() and int((tmp_path / "gc.pid").read_text()))
        me = psutil.Process(proc.pid)
        # re-parented to the subreaper, not init (once the subshell between them has exited)
        poll(lambda: psutil.Process(gc).ppid() == proc.pid, what="gc re-parented to the reaper")
        assert len(me.children()) >= 3  # and so were (some of) the five orphans

        def orphans_reaped() -> bool:
            kids = me.children()  # zombies included: an unreaped orphan would stay listed
            return len(kids) == 2 and gc in [k.pid for k in kids]

        poll(orphans_reaped, what="the orphans to die and be reaped")
        assert proc.poll() is None  # the reaper lives on while its agent does
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert with_marker(marker) == []


# -- (b) SIGTERM / SIGHUP to the reaper --------------------------------------------------------


def test_sigterm_kills_the_whole_subtree_of_an_agent_ignoring_it(
    tmp_path: Path, marker: str
) -> None:
    script = tmp_path / "stubborn.sh"
    script.write_text(
        r"""
        trap "" TERM
        ( env -i setsid sh -c 'trap "" TERM; echo $$ > "$0/gc.pid"; sleep '"$2"'; :' "$1" & )
        exec sleep "$2"
        """
    )
    proc = run_reaper("sh", str(script), str(tmp_path), marker, grace=0.3)
    poll(
        lambda: (tmp_path / "gc.pid").exists() and agent_of(proc, "sleep"),
        what="agent and grandchild to run",
    )
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGKILL  # the agent ignored SIGTERM
    assert with_marker(marker) == []


def test_sighup_kills_a_cooperative_agent_with_sigterm(tmp_path: Path, marker: str) -> None:
    proc = run_reaper("sleep", marker, grace=30)
    poll(lambda: agent_of(proc, "sleep"), what="the agent to run")
    t0 = time.monotonic()
    proc.send_signal(signal.SIGHUP)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert time.monotonic() - t0 < 10  # no grace wasted once everything is gone
    assert with_marker(marker) == []


# -- (3) exit status -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "code"),
    [
        ("exit 0", 0),
        ("exit 7", 7),
        ("exit 255", 255),
        ("kill -KILL $$", 128 + signal.SIGKILL),
        ("kill -TERM $$", 128 + signal.SIGTERM),
        ("kill -SEGV $$", 128 + signal.SIGSEGV),
    ],
)
def test_exit_status_of_the_agent_is_propagated(script: str, code: int) -> None:
    assert subprocess.run([*REAPER, "--", "sh", "-c", script], timeout=30).returncode == code


def test_missing_or_unexecutable_agent_and_usage_errors(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*REAPER, *args], capture_output=True, text=True, timeout=30)

    out = run("--", "no-such-agent-cli-" + uuid.uuid4().hex)
    assert out.returncode == 127 and "command not found" in out.stderr
    plain = tmp_path / "not-executable"
    plain.write_text("#!/bin/sh\n")
    assert run("--", str(plain)).returncode == 126
    for bad in ([], ["--"], ["--grace", "soon", "--", "true"], ["--grace", "-1", "--", "true"]):
        out = run(*bad)
        assert out.returncode == 2 and "usage:" in out.stderr, bad
    assert run("--grace=0", "--", "true").returncode == 0
    assert reaper.parse(["--grace", "2.5", "--", "a", "--", "b"]) == (2.5, ["a", "--", "b"])


def test_stdio_is_inherited_and_the_environment_passed_through() -> None:
    out = subprocess.run(
        [*REAPER, "--", "sh", "-c", 'read x; echo "got-$x $HATCH_RUN_KEY"; echo err >&2'],
        input="hi\n",
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "HATCH_RUN_KEY": "k-1"},
    )
    assert (out.returncode, out.stdout, out.stderr) == (0, "got-hi k-1\n", "err\n")


# -- signal forwarding -----------------------------------------------------------------------

SIGNAL_AGENT = r"""
import signal, sys
from pathlib import Path
for sig, code in ((signal.SIGUSR1, 42), (signal.SIGWINCH, 43), (signal.SIGINT, 44)):
    signal.signal(sig, lambda *_, code=code: sys.exit(code))
Path(sys.argv[1]).write_text("ready")
while True:
    signal.pause()
"""


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGUSR1, 42), (signal.SIGWINCH, 43), (signal.SIGINT, 44)]
)
def test_a_signal_sent_to_the_reaper_is_forwarded_to_the_agent(
    tmp_path: Path, sig: int, code: int
) -> None:
    ready = tmp_path / "ready"
    proc = run_reaper(sys.executable, "-c", SIGNAL_AGENT, str(ready), grace=5)
    poll(ready.exists, what="the agent to be ready")
    proc.send_signal(sig)  # kill(2) of the reaper alone: only the reaper can pass it on
    assert proc.wait(timeout=30) == code


def test_agent_runs_in_the_reapers_process_group_and_session() -> None:
    proc = subprocess.Popen(
        [*REAPER, "--", sys.executable, "-c",
         "import os; p = os.getppid(); print(p, os.getpgrp(), os.getsid(0), os.getpgid(p), os.getsid(p))"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    out, _ = proc.communicate(timeout=30)
    assert out.split() == [str(proc.pid)] * 5  # the reaper is the parent; one group, one session


def test_the_reaper_is_a_child_subreaper() -> None:
    code = (
        "import ctypes; from hatchctl.runtime import reaper; assert reaper.set_child_subreaper()\n"
        "v = ctypes.c_int(0); libc = ctypes.CDLL(None)\n"
        "assert libc.prctl(37, ctypes.byref(v), 0, 0, 0) == 0  # PR_GET_CHILD_SUBREAPER\n"
        "print(v.value)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert (out.returncode, out.stdout.strip()) == (0, "1"), out.stderr


def test_isolated_mode_keeps_a_worktree_from_replacing_the_reaper(tmp_path: Path) -> None:
    """The reaper runs outside any sandbox with the worktree as its working directory, which
    the agent controls. ``python -m`` puts the working directory first on sys.path, so a
    worktree's hatchctl/ (or ctypes.py, imported when the reaper starts...) would run instead:
    ``-I`` (or ``-P``) is required in the command that starts the reaper. A launch's own
    command (confinement.reaper_prefix: ``-I -S -c``, the package's directory first on
    sys.path) runs the real reaper too."""
    (tmp_path / "hatchctl" / "runtime").mkdir(parents=True)
    (tmp_path / "hatchctl" / "__init__.py").write_text("print('SHADOW')\n")
    (tmp_path / "hatchctl" / "runtime" / "__init__.py").write_text("")
    (tmp_path / "hatchctl" / "runtime" / "reaper.py").write_text("print('SHADOW')\n")
    (tmp_path / "ctypes.py").write_text("print('SHADOW')\n")

    def run(argv: list[str]) -> str:
        argv = [*argv, "echo", "real"]
        return subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=30).stdout

    assert "SHADOW" in run([sys.executable, "-m", "hatchctl.runtime.reaper", "--"])  # real hazard
    assert run([sys.executable, "-I", "-m", "hatchctl.runtime.reaper", "--"]) == "real\n"
    launch = confinement.reaper_prefix(SimpleNamespace(limits=SimpleNamespace(kill_grace=1)))  # type: ignore[arg-type]
    assert launch[:4] == [sys.executable, "-I", "-S", "-c"]
    assert run(launch) == "real\n"


# -- a TTY agent stays interactive in a real tmux pane ---------------------------------------


@pytest.fixture
def tmux_server() -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    socket = f"test-{uuid.uuid4().hex[:12]}"
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "HATCH_JOB_KEY")}

    def tmux(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=10,
            env=env,
        )

    yield tmux
    tmux("kill-server")


def start_pane(tmux: Callable[..., subprocess.CompletedProcess[str]], argv: list[str]) -> None:
    """The pane runs bash, which runs the reaper as run_agent.sh does, then shows the exit status
    (tmux's own #{pane_dead_status} is sometimes left empty, with or without a reaper). Like
    run_agent.sh it is bash, not sh: on Ctrl-C bash waits for its child (dash would die)."""
    command = shlex.join([*REAPER, "--grace", "1", "--", *argv]) + '; echo "exit=$?"; exec sleep 60'
    out = tmux("new-session", "-d", "-s", "t", "-x", "120", "-y", "20", "bash", "-c", command)
    assert out.returncode == 0, out.stderr


def screen(tmux: Callable[..., subprocess.CompletedProcess[str]]) -> str:
    return tmux("capture-pane", "-p", "-t", "t").stdout


def test_a_tty_agent_stays_interactive_in_a_tmux_pane(
    tmux_server: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    tmux = tmux_server
    # `read` from the terminal works only in the terminal's foreground process group: an agent
    # moved out of it would be stopped by SIGTTIN, one without the terminal would read nothing
    start_pane(tmux, ["bash", "-c", "read x; echo got-$x"])
    assert tmux("send-keys", "-t", "t", "hi", "Enter").returncode == 0
    poll(lambda: "got-hi" in screen(tmux), what="got-hi on the pane")
    poll(lambda: "exit=0" in screen(tmux), what="the reaper to exit with the agent's status")


CTRL_C_AGENT = r"""
import signal, sys
count = 0
def on_int(*_):
    global count
    count += 1
    print(f"int-{count}", flush=True)
signal.signal(signal.SIGINT, on_int)
print("ready", flush=True)
line = sys.stdin.readline().strip()
print(f"got-{line} ints={count}", flush=True)
"""


def test_ctrl_c_in_the_pane_reaches_the_agent_once_and_spares_the_reaper(
    tmux_server: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    tmux = tmux_server
    start_pane(tmux, [sys.executable, "-c", CTRL_C_AGENT])
    poll(lambda: "ready" in screen(tmux), what="the agent to be ready")
    tmux("send-keys", "-t", "t", "C-c")
    poll(lambda: "int-1" in screen(tmux), what="the agent to see Ctrl-C")
    tmux("send-keys", "-t", "t", "hi", "Enter")
    poll(lambda: "got-hi ints=1" in screen(tmux), what="the agent to read a line after Ctrl-C")
    assert "int-2" not in screen(tmux)  # the terminal's SIGINT was not forwarded a second time
    poll(lambda: "exit=0" in screen(tmux), what="the reaper to exit with the agent's status")


def test_one_proc_pass_gives_each_trees_cpu_like_psutil() -> None:
    """cpu_seconds_many (one /proc pass for all trees) agrees with psutil tree by tree."""
    import contextlib
    import subprocess
    import sys
    import time

    import psutil

    from hatchctl.runtime import psinfo

    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
    child = f"{burn}time.sleep(30)\n"
    code = f"import subprocess, sys, time\n{burn}subprocess.Popen([sys.executable, '-c', {child!r}])\ntime.sleep(30)\n"
    trees = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2)]

    def by_psutil(pid: int) -> float:  # the reference: psutil, process by process
        total = 0.0
        for p in psinfo.tree(pid):
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    try:
        deadline = time.monotonic() + 20
        while not all(by_psutil(p.pid) >= 0.55 for p in trees):  # parent + child
            assert time.monotonic() < deadline, "the trees never burnt their CPU"
            time.sleep(0.05)
        gone = 2**22 + 7
        many = psinfo.cpu_seconds_many([p.pid for p in trees] + [gone])
        for p in trees:
            assert abs(many[p.pid] - by_psutil(p.pid)) < 0.05
            assert many[p.pid] >= 0.55
        assert many[gone] == 0.0
    finally:
        for p in trees:
            for proc in psinfo.tree(p.pid)[1:]:
                proc.kill()
            p.kill()
            p.wait()


def test_the_reaper_starts_light() -> None:
    """Every launch starts a reaper: as a launch starts it (``-I -S -c``), it imports neither
    site's path scan nor enum (signal.py), typing or contextlib, which were a third of its
    start-up; it still has what it needs to run an agent."""
    probe = (
        "import sys; sys.path[:0] = [sys.argv.pop(1)]; import hatchctl.runtime.reaper as r; "
        "print(sorted(m for m in ('site', 'enum', 'typing', 'contextlib', 'signal', 'runpy') "
        "if m in sys.modules), r.main(['--', 'true']))"
    )
    argv = [sys.executable, "-I", "-S", "-c", probe, confinement.PACKAGE_ROOT]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert out.stdout == "[] 0\n", out.stderr
