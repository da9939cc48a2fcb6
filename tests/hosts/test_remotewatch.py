"""A host's watcher stream (engine/remotewatch.py) on the loopback sshd, in both modes: inotify
(the host has inotifywait) and the 0.2 s poll (forced by HATCH_REMOTE_WATCH=poll, as on a host
without it). A stop written there reaches the controller's queue; a log growing there is
copied here as it grows, byte for byte, bounded, never through a link; the stream's remote
side (inotifywait included) ends when the controller stops it."""

from __future__ import annotations

import functools
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import TypeVar

import psutil
import pytest

from hatchctl.engine import remotefiles
from hatchctl.engine.remotefiles import LogMirror
from hatchctl.engine.remotewatch import MODE_ENV, HostWatch
from hatchctl.errors import HostError
from hatchctl.hosts.ssh import SshHost

T = TypeVar("T")
STOP = "T-1/factory.i1/T-1.factory.i1.a1.stop"
LOG = "factory/T-1.factory.i1.a1.log"


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def inotifywaits(directory: Path, name: str = "inotifywait") -> list[int]:
    """The inotifywait processes watching ``directory`` (they run as ``inotifywait ... .``
    with their cwd there); with ``name`` python, the stream's reader (its cwd there too)."""
    found = []
    for p in psutil.process_iter(["pid", "name"]):
        if p.info["name"] == name or (name == "python" and p.info["name"].startswith(name)):
            try:
                if p.cwd() == str(directory):
                    found.append(p.info["pid"])
            except psutil.Error:
                continue
    return found


@pytest.fixture(params=["inotify", "poll"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "inotify" and shutil.which("inotifywait") is None:
        pytest.skip("inotifywait not installed (apt-get install -y inotify-tools)")
    if request.param == "poll":
        monkeypatch.setenv(MODE_ENV, "poll")
    return str(request.param)


@pytest.fixture
def there(tmp_path: Path) -> Path:
    hatch = tmp_path / "remote" / "p" / ".hatch"
    (hatch / "io" / "T-1" / "factory.i1").mkdir(parents=True)  # as launch makes it
    (hatch / "logs" / "factory").mkdir(parents=True)
    return hatch


@pytest.fixture
def watch(host: SshHost, there: Path, tmp_path: Path) -> Iterator[HostWatch]:
    sink: queue.Queue[tuple[str, str]] = queue.Queue()
    mirror = LogMirror(host, timeout=20)
    w = HostWatch(host, PurePosixPath(there), sink, mirror=mirror, local_io=tmp_path / "io")
    w.start()
    try:
        yield w
    finally:
        w.stop()


def copied(path: Path, want: bytes) -> bool:
    return path.is_file() and path.read_bytes() == want


def write_stop(there: Path, rel: str, text: str) -> None:
    path = there / "io" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".9.tmp")  # as the wrapper: a temp file, then mv
    tmp.write_text(text)
    tmp.rename(path)


def stop_item(w: HostWatch, tmp_path: Path, rel: str) -> bool:
    wanted = ("stop", str(tmp_path / "io" / rel))
    while True:
        try:
            if w.sink.get(timeout=0.05) == wanted:
                return True
        except queue.Empty:
            return False


def test_stops_reach_the_controller_and_the_stream_ends_with_it(
    mode: str, watch: HostWatch, there: Path, tmp_path: Path
) -> None:
    wait_for(lambda: watch.connected.is_set(), "the first listing")
    assert watch.mode == mode
    write_stop(there, STOP, "one\n")
    wait_for(lambda: stop_item(watch, tmp_path, STOP), "the stop on the queue")
    first = watch.reported(STOP)
    assert first is not None
    assert abs(float(first) - (there / "io" / STOP).stat().st_mtime) < 1e-5
    write_stop(there, STOP, "again\n")  # written again: reported again, with its new mtime
    wait_for(lambda: watch.reported(STOP) != first, "the second stop")
    # a directory made and a stop written in it at once (inotify -r's race: the listing)
    other = "T-2/qa.i3/T-2.qa.i3.a1.stop"
    write_stop(there, other, "x\n")
    for junk in ("T-3/factory.i1/notes.txt", "T-3/planner.i1/T-3.planner.i1.a1.stop"):
        write_stop(there, junk, "ignored\n")
    wait_for(lambda: watch.reported(other), "the stop in a new directory")
    assert set(watch.stops) == {STOP, other}
    if mode == "inotify":
        assert inotifywaits(there / "io") != []
        if shutil.which("python3"):
            assert inotifywaits(there / "io", "python") != []
    watch.stop()
    wait_for(lambda: not inotifywaits(there / "io"), "the host's inotifywait to end", 10)
    wait_for(lambda: not inotifywaits(there / "io", "python"), "the host's reader to end", 10)


def test_a_live_log_is_copied_as_it_grows_bounded_and_never_through_a_link(
    mode: str, watch: HostWatch, there: Path, tmp_path: Path
) -> None:
    assert watch.mirror is not None
    remote_log, local_log = there / "logs" / LOG, tmp_path / "logs" / LOG
    watch.mirror.follow(LOG, PurePosixPath(remote_log), local_log)
    sent = b""
    for part in (b"start \x1b[1mbold\x1b[0m\n", b"\xff\xfe not utf-8 \xe2\x82", b"\xac end\n"):
        with remote_log.open("ab") as fh:
            fh.write(part)
        sent += part
        wait_for(functools.partial(copied, local_log, sent), "the copy")
    assert oct(local_log.stat().st_mode & 0o777) == "0o600"
    # more than a read's worth at once, then the run ends: the rest is copied, byte for byte
    with remote_log.open("ab") as fh:
        fh.write(os.urandom(remotefiles.CHUNK * 2 + 17))
    watch.mirror.finish(LOG, PurePosixPath(remote_log), local_log)
    assert local_log.read_bytes() == remote_log.read_bytes()
    assert watch.mirror.offset(LOG) is None  # no longer followed

    # a log that ran far ahead: its last LOG_TAIL bytes, after a line saying what was skipped
    big = there / "logs" / "factory" / "big.log"
    big.write_bytes(b"x" * (remotefiles.SKIP_AFTER + 10) + b"the end\n")
    here = tmp_path / "logs" / "factory" / "big.log"
    watch.mirror.finish("factory/big.log", PurePosixPath(big), here)
    text = here.read_bytes()
    assert text.startswith(b"\n[hatchctl: the log on host loop ran ") and text.endswith(b"end\n")
    assert len(text) < remotefiles.LOG_TAIL + 200

    # the local log replaced by a link: nothing is written through it
    target = tmp_path / "elsewhere"
    target.write_text("mine\n")
    local_log.unlink()
    local_log.symlink_to(target)
    with remote_log.open("ab") as fh:
        fh.write(b"more\n")
    with pytest.raises(HostError, match="not a regular file"):
        watch.mirror.sync(LOG, PurePosixPath(remote_log), local_log, reads=1)
    watch.mirror.finish(LOG, PurePosixPath(remote_log), local_log)  # logged, nothing written
    assert target.read_text() == "mine\n"
    # nor through a host's link: the host's log must be a regular file
    (there / "logs" / "factory" / "link.log").symlink_to(target)
    link_here = tmp_path / "logs" / "factory" / "link.log"
    watch.mirror.finish(
        "factory/link.log", PurePosixPath(there / "logs/factory/link.log"), link_here
    )
    assert not link_here.exists()


@pytest.mark.parametrize(
    ("inotifywait", "first"),
    [(None, "W poll no_inotifywait"), ("#!/bin/sh\nexit 1\n", "W poll inotifywait_failed")],
    ids=["missing", "failing"],
)
def test_a_host_without_a_working_inotifywait_polls_and_says_so(
    tmp_path: Path, inotifywait: str | None, first: str
) -> None:
    """The stream's script as the host runs it (sh, found on PATH), without inotifywait or with
    one that fails (e.g. too many watches): the 0.2 s poll, and the first line says why."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "bash", "find", "sort", "sleep", "kill"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    if inotifywait is not None:
        (bin_dir / "inotifywait").write_text(inotifywait)
        (bin_dir / "inotifywait").chmod(0o755)
    io = tmp_path / "io"
    (io / "T-1" / "qa.i1").mkdir(parents=True)
    (io / "T-1" / "qa.i1" / "T-1.qa.i1.a1.stop").write_text("{}\n")
    from hatchctl.engine.remotewatch import INOTIFY_SCRIPT, POLL_SCRIPT, WATCH_SCRIPT

    argv = [str(bin_dir / "sh"), "-c", WATCH_SCRIPT, "hatch-watch", str(io), str(tmp_path)]
    argv += ["auto", INOTIFY_SCRIPT, POLL_SCRIPT]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, env={"PATH": str(bin_dir)}, start_new_session=True
    )
    killer = threading.Timer(15, os.killpg, (proc.pid, signal.SIGKILL))  # bounds the reads
    killer.start()
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while "." not in lines and (raw := proc.stdout.readline()):
            lines.append(raw.decode().rstrip("\n"))
        assert lines[0] == first
        assert lines[1].endswith(" T-1/qa.i1/T-1.qa.i1.a1.stop")  # the first listing, at once
    finally:
        killer.cancel()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_the_hosts_inotifywait_dies_with_its_loop_even_when_the_loop_is_killed_outright(
    watch: HostWatch, there: Path
) -> None:
    """The loop on the host SIGKILLed (an OOM kill, a session killed whole: no EXIT trap runs):
    its inotifywait and reader end with it, not left watching for the next write there."""
    if shutil.which("inotifywait") is None:
        pytest.skip("inotifywait not installed (apt-get install -y inotify-tools)")
    wait_for(lambda: watch.connected.is_set(), "the first listing")
    assert watch.mode == "inotify"
    watchers = wait_for(lambda: inotifywaits(there / "io"), "the host's inotifywait")
    loop = psutil.Process(watchers[0]).parent()
    assert loop is not None and loop.name() == "bash"
    loop.kill()
    wait_for(lambda: not inotifywaits(there / "io"), "the host's inotifywait to end", 10)
    wait_for(lambda: not inotifywaits(there / "io", "python"), "the host's reader to end", 10)
