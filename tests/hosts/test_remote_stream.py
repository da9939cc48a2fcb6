"""A host's watcher stream ships the content of each ``.stop`` it sees written, with the run's
summary before it (engine/remoteship.py), so the controller records the stop without another
round trip (engine/remotecollect.py): only regular files of safe names within their caps, only
in blocks of the stream's own nonce; a forged stop that comes this way is refused exactly as
one read over ssh. A host whose clock is an hour behind (its ``date`` and the mtimes it stamps)
does not make a summary written during the run look older than the run."""

from __future__ import annotations

import json
import os
import queue
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest

from hatchctl.engine import remotefiles
from hatchctl.engine.remoteship import Block, Shipped, none_line
from hatchctl.engine.remotewatch import HostWatch
from hatchctl.hosts.ssh import SshHost
from hatchctl.state.summary import MAX_AGENT_FILE
from tests.hosts.conftest import section
from tests.hosts.sshd import SshServer, make_server, unavailable
from tests.hosts.test_remote_run import SIM, host_config, host_server_cleaned, spec
from tests.hosts.test_remotewatch import STOP, mode, there, wait_for, write_stop
from tests.integration.conftest import Projects, drain, projects

__all__ = ["mode", "projects", "there"]  # fixtures
SKEW = 3600  # seconds the skewed host's clock is behind
SUMMARY = "T-1/factory.i1/summary.json"


def start_watch(host: SshHost, hatch: Path, local_io: Path) -> HostWatch:
    w = HostWatch(host, PurePosixPath(hatch), queue.Queue(), local_io=local_io)
    w.start()
    wait_for(lambda: w.connected.is_set(), "the first listing")
    return w


def shipped_after(w: HostWatch, there: Path, rel: str, text: str) -> tuple[Shipped | None, object]:
    """Write the stop ``rel`` and wait for it on the stream (listed); what was shipped."""
    before = w.reported(rel)
    write_stop(there, rel, text)
    mtime = wait_for(lambda: (m := w.reported(rel)) != before and m, f"{rel} listed")
    return w.shipments.take(rel), mtime


def test_a_stop_and_its_summary_are_shipped_whole_and_nothing_else(
    mode: str, host: SshHost, there: Path, tmp_path: Path
) -> None:
    w = start_watch(host, there, tmp_path / "io")
    try:
        summary = json.dumps({"status": "completed", "notes": "x" * 5000}) + "\n"
        (there / "io" / SUMMARY).write_text(summary)
        got, mtime = shipped_after(w, there, STOP, '{"reason": "exit"}\n')
        assert got is not None and got.data == b'{"reason": "exit"}\n' and got.mtime == mtime
        assert got.summary is not None and got.summary.data == summary.encode()
        stamp = (there / "io" / SUMMARY).stat().st_mtime
        assert abs(got.summary.mtime_here() - stamp) < 5  # the same clock: about the same
        # no summary there: the stream says so (nothing to ask the host)
        (there / "io" / SUMMARY).unlink()
        got, _ = shipped_after(w, there, STOP, "two\n")
        assert got is not None and got.summary is None and got.no_summary
        # a summary that is a link or too big is not shipped: the controller asks (not "none")
        outside = tmp_path / "secret"
        outside.write_text("not for the controller\n")
        (there / "io" / SUMMARY).symlink_to(outside)
        got, _ = shipped_after(w, there, STOP, "three\n")
        assert got is not None and got.summary is None and not got.no_summary
        (there / "io" / SUMMARY).unlink()
        (there / "io" / SUMMARY).write_bytes(b"y" * (MAX_AGENT_FILE + 1))
        got, _ = shipped_after(w, there, STOP, "four\n")
        assert got is not None and got.summary is None and not got.no_summary
        # a stop over its cap is listed, not shipped (read over ssh, bounded, as before)
        got, _ = shipped_after(w, there, STOP, "z" * (remotefiles.STOP_LIMIT + 1))
        assert got is None
        # a file name with a newline cannot open a block: the nonce is the stream's own
        forged = f"F {'0' * 32} stop 1.0 3 1.0 T-9/factory.i1/T-9.factory.i1.a1.stop"
        weird = there / "io" / "T-1" / "factory.i1" / f"x\n{forged}\neHl6\nE {'0' * 32}\n.stop"
        weird.parent.mkdir(parents=True)  # the name's slashes: directories
        weird.write_text("xyz")
        other = "T-2/qa.i1/T-2.qa.i1.a1.stop"
        got, _ = shipped_after(w, there, other, "other\n")
        assert got is not None and got.data == b"other\n"
        assert w.shipments.take("T-9/factory.i1/T-9.factory.i1.a1.stop") is None
    finally:
        w.stop()


# -- a host whose clock is an hour behind ----------------------------------------------------
@pytest.fixture(scope="module")
def skewed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """A loopback sshd whose sessions find a ``date`` an hour behind first on their PATH."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("skewed")
    real = shutil.which("date")
    assert real is not None
    (base / "bin").mkdir()
    fake = base / "bin" / "date"
    fake.write_text(f'#!/bin/sh\nexec {real} -d "@$(( $({real} +%s) - {SKEW} ))" "$@"\n')
    fake.chmod(0o755)
    server = make_server(base / "sshd", env={"PATH": f"{base / 'bin'}:{os.environ['PATH']}"})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def skewed_host(skewed: SshServer, tmp_path: Path) -> Iterator[SshHost]:
    (tmp_path / "remote").mkdir()
    h = SshHost(
        "loop",
        section(skewed, tmp_path / "remote"),
        project_root=tmp_path / "project",
        state_dir=tmp_path / "project" / ".hatch",
    )
    yield h
    h.close()


def behind(path: Path) -> None:
    """Stamp ``path`` as the skewed host's clock would have when writing it now."""
    at = time.time() - SKEW
    os.utime(path, (at, at))


def test_a_skewed_hosts_summary_is_as_fresh_as_it_is_there(
    mode: str, skewed_host: SshHost, there: Path, tmp_path: Path
) -> None:
    assert skewed_host.run(["date", "+%s"], timeout=20).stdout.strip() < str(
        int(time.time()) - SKEW + 60
    )
    path = there / "io" / SUMMARY
    path.write_text('{"status": "completed"}\n')
    behind(path)
    # read over ssh (the fallback): its age by the host's clock, taken from the time here
    got = remotefiles.read_stamped(skewed_host, PurePosixPath(path), 4096, timeout=20)
    assert got is not None and abs(got[0] - path.stat().st_mtime) < 1e-3
    assert abs(got[1] - time.time()) < 60 and got[2] == '{"status": "completed"}\n'
    # shipped on the stream: the same
    w = start_watch(skewed_host, there, tmp_path / "io")
    try:
        write_stop(there, STOP, "one\n")
        shipped = wait_for(lambda: w.shipments.take(STOP), "the stop shipped")
        assert shipped.summary is not None
        assert abs(float(shipped.summary.mtime) - path.stat().st_mtime) < 1e-3
        assert abs(shipped.summary.mtime_here() - time.time()) < 60
    finally:
        w.stop()


def test_a_task_on_a_host_an_hour_behind_completes(
    projects: Projects, skewed: SshServer, tmp_path: Path
) -> None:
    """The agent's summary is stamped with the host's clock (an hour behind): fresh all the
    same (compared with the run's start in the host's clock, by its age there)."""
    (tmp_path / "remote").mkdir()
    fake_date = skewed.directory.parent / "bin" / "date"  # the host's clock, an hour behind
    stamp = f'touch -d "@$({fake_date} +%s)" "$HATCH_SUMMARY_FILE"'
    agent = ["sh", "-c", f'"$0" "$@"; rc=$?; {stamp}; exit $rc', *SIM]
    config = host_config(skewed, tmp_path / "remote")
    config["agents"] = {a: {"command": agent, "sandbox": "none"} for a in ("factory", "qa")}
    project = projects.make({"T-1": {**spec(), "host_labels": ["gpu"]}}, config=config)
    with host_server_cleaned(project):
        code, tasks, deps = drain(project, time_limit=60)
    assert code == 0 and tasks["T-1"].state == "completed", tasks["T-1"].last_error
    runs = deps.store.runs("T-1")
    assert [(r.role, r.host, r.state) for r in runs] == [
        ("factory", "loop", "succeeded"),
        ("qa", "loop", "succeeded"),
    ]
    summary = project.root / runs[0].summary_path  # its mtime here: in this machine's clock
    assert abs(summary.stat().st_mtime - runs[0].ended_at) < 60  # type: ignore[operator]
    collected = [e for e in deps.store.events("T-1") if e.kind == "remote_stop_collected"]
    assert [e.data["summary"] for e in collected] == [True, True]


# -- a whole run: stops on the stream; a forged one refused ----------------------------------
DISPATCH = r"""
import os, pathlib, sys, time
name = "forger.py" if os.environ["HATCH_TASK_ID"] == "EVIL" else "victim.py"
sys.argv[0] = name
exec(compile(pathlib.Path(os.path.join(HERE, name)).read_text(), name, "exec"))
"""
FORGER = r"""
import json, os, pathlib, sys, time
io = pathlib.Path(os.environ["HATCH_STATE_DIR"], "io", "VICTIM", "factory.i1")
deadline = time.monotonic() + 30
while not READY.exists() and time.monotonic() < deadline:
    time.sleep(0.02)
doc = {"task_id": "VICTIM", "role": "factory", "iteration": 1, "attempt": 1, "reason": "exit",
       "exit_code": 1, "at": "", "run_id": 0, "token": "0" * 32}
tmp = io / "forged.tmp"
tmp.write_text(json.dumps(doc))
os.replace(tmp, io / "VICTIM.factory.i1.a1.stop")
os.execv(sys.executable, [sys.executable, "-m", "hatchctl", "sim-agent", *sys.argv[1:]])
"""
VICTIM = r"""
import os, sys, time
READY.write_text("ready")
deadline = time.monotonic() + 30
while not COLLECTED.exists() and time.monotonic() < deadline:  # the forged stop, brought here
    time.sleep(0.02)
os.execv(sys.executable, [sys.executable, "-m", "hatchctl", "sim-agent", *sys.argv[1:]])
"""


@pytest.mark.parametrize("watch_mode", ["auto", "poll"])
def test_stops_come_on_the_stream_and_a_forged_one_is_still_refused(
    projects: Projects,
    sshd: SshServer,
    tmp_path: Path,
    watch_mode: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if watch_mode == "poll":
        monkeypatch.setenv("HATCH_REMOTE_WATCH", "poll")
    elif shutil.which("inotifywait") is None:
        pytest.skip("inotifywait not installed (apt-get install -y inotify-tools)")
    if sshd.proc is None:
        sshd.start()
    (tmp_path / "remote").mkdir()
    agents = tmp_path / "agents"
    agents.mkdir()
    config = host_config(sshd, tmp_path / "remote")
    dispatch = [sys.executable, str(agents / "dispatch.py")]
    config["agents"] = {"factory": {"command": dispatch, "sandbox": "none"}}
    config["agents"]["qa"] = {"command": SIM, "sandbox": "none"}
    gpu = {"host_labels": ["gpu"]}
    project = projects.make({"EVIL": {**spec(), **gpu}, "VICTIM": {**spec(), **gpu}}, config=config)
    local_stop = project.paths.stop_file("VICTIM", "factory", 1, 1)
    names = f"READY = __import__('pathlib').Path({str(tmp_path / 'ready')!r})\n"
    names += f"COLLECTED = __import__('pathlib').Path({str(local_stop)!r})\n"
    (agents / "dispatch.py").write_text(f"HERE = {str(agents)!r}\n{names}{DISPATCH}")
    (agents / "forger.py").write_text(FORGER)
    (agents / "victim.py").write_text(VICTIM)
    with host_server_cleaned(project):
        code, tasks, deps = drain(project, time_limit=90)
    assert code == 0, {t: tasks[t].last_error for t in tasks}
    assert tasks["VICTIM"].state == "completed" and tasks["VICTIM"].strikes == 0
    assert tasks["EVIL"].state == "completed"
    events = deps.store.events("VICTIM")
    forged = [e for e in events if e.kind == "forged_signal"]
    assert len(forged) == 1 and "token" in json.dumps(forged[0].data)
    victim = deps.store.runs("VICTIM")[0]
    assert (victim.role, victim.host, victim.state, victim.exit_code) == (
        "factory",
        "loop",
        "succeeded",
        0,  # its own, real exit: not the forged exit 1
    )
    collected = [e for e in events if e.kind == "remote_stop_collected"]
    ours = [e for e in collected if e.run_id == victim.id]
    assert ours[0].data["via"] == "stream"  # the forged stop came on the stream, and was refused
    assert len(ours) == 2  # then the real one
    if watch_mode == "auto":  # inotify: every stop is on the controller before its pane is gone
        every = [e for t in ("EVIL", "VICTIM") for e in deps.store.events(t)]
        vias = [e.data["via"] for e in every if e.kind == "remote_stop_collected"]
        assert vias == ["stream"] * 5
    log = project.paths.orchestrator_log.read_text()
    assert log.count('"remote_results_fetched"') >= 4  # each branch fetched before it was used


def test_only_a_whole_well_formed_block_of_the_streams_nonce_is_taken() -> None:
    nonce = "ab" * 16
    name = "T-1/factory.i1/T-1.factory.i1.a1.stop"

    def block(header: str, lines: list[str]) -> Shipped | bool | None:
        b = Block.start(header, nonce)
        if b is None:
            return None
        for line in lines:
            got = b.feed(line)
            if got is not True:
                return got
        return True

    ok = block(f"F {nonce} stop 12.5 3 13.0 {name}", ["eHl6", f"E {nonce}"])
    assert isinstance(ok, Shipped) and ok.data == b"xyz" and ok.there == 13.0
    assert block(f"F {nonce} stop 12.5 3  {name}", ["eHl6", f"E {nonce}"]) is not None  # no clock
    for header in (
        f"F {'cd' * 16} stop 12.5 3 13.0 {name}",  # another stream's nonce
        f"F {nonce} stop 12.5 3 13.0 T-1/factory.i1/../x.stop",
        f"F {nonce} stop 12.5 3 13.0 T-1/planner.i1/x.stop",
        f"F {nonce} summary 12.5 3 13.0 T-1/factory.i1/other.json",
        f"F {nonce} stop 12.5 {remotefiles.STOP_LIMIT + 1} 13.0 {name}",  # over its cap
        f"F {nonce} summary 12.5 {MAX_AGENT_FILE + 1} 13.0 T-1/qa.i2/summary.json",
    ):
        assert block(header, ["eHl6", f"E {nonce}"]) is None, header
    head = f"F {nonce} stop 12.5 3 13.0 {name}"
    assert block(head, ["eHl6eHl6", f"E {nonce}"]) is False  # more than the size said
    assert block(head, ["eHl", f"E {nonce}"]) is False  # not base64
    assert block(head, ["eH!6", f"E {nonce}"]) is False
    assert block(head, ["1.0 T-1/factory.i1/x.stop"]) is False  # a listing line ends it
    assert block(head, ["eHl6", f"E {'cd' * 16}"]) is False
    assert none_line(f"N {nonce} T-1/factory.i1/summary.json", nonce) == SUMMARY
    assert none_line(f"N {'cd' * 16} T-1/factory.i1/summary.json", nonce) is None
