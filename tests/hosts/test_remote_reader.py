"""The inotify loop's reader (engine/remoteship.READER: python3 on the host, one per stream) ships
a stop and its run's summary without a process per stop, and with the defences of the reads over
ssh: a regular file of a safe name within its cap, opened without following a link (the file's
or a directory's on its path) nor waiting on a FIFO. The host's agents are untrusted: one that
swaps a link in while the reader reads never gets the link's target shipped.

These run the reader here as the host runs it (``python3 -I -S -c READER NONCE``, its cwd the
exchange directory, fd 5 the stream), without ssh."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hatchctl.engine.remotefiles import STOP_LIMIT
from hatchctl.engine.remoteship import READER
from hatchctl.state.summary import MAX_AGENT_FILE

NONCE = "ab" * 16
RUN = "T-1/factory.i1"
STOP = f"{RUN}/T-1.factory.i1.a1.stop"
SECRET = b"the host's private key\n"
NOW = "1800000000.123456"


class Reader:
    """One reader process; ``ask`` sends a stop and returns (its answer, the blocks shipped)."""

    def __init__(self, io: Path, out: Path) -> None:
        python = shutil.which("python3")
        if python is None:
            pytest.skip("no python3 on PATH (a host without it uses the sh reader)")
        self.out = out.open("w+b")
        self.proc = subprocess.Popen(  # its fd 5: the stream (here a file)
            ["sh", "-c", 'exec "$0" -I -S -c "$1" "$2" 5>>"$3"', python, READER, NONCE, str(out)],
            cwd=io,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.killer = threading.Timer(60, self.proc.kill)  # bounds every read below
        self.killer.start()
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline() == b"ready\n"

    def ask(self, rel: str) -> tuple[str, str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        start = self.out.seek(0, os.SEEK_END)
        self.proc.stdin.write(f"{NOW} {rel}\n".encode())
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        assert answer.endswith(b"\n"), "the reader ended"
        self.out.seek(start)
        return answer.decode().rstrip("\n"), self.out.read().decode()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)  # its stdin closed: it ends
        self.killer.cancel()
        self.out.close()


@pytest.fixture
def io(tmp_path: Path) -> Path:
    (tmp_path / "io" / RUN).mkdir(parents=True)
    (tmp_path / "secret").write_bytes(SECRET)
    return tmp_path / "io"


@pytest.fixture
def reader(io: Path, tmp_path: Path) -> Iterator[Reader]:
    r = Reader(io, tmp_path / "stream")
    yield r
    r.close()


def blocks(text: str) -> dict[str, bytes]:
    """The blocks of one answer, by kind (``none``: the ``N`` line's name)."""
    lines, got = text.splitlines(), {}
    for i, line in enumerate(lines):
        if line.startswith("N "):
            got["none"] = line.split()[2].encode()
        if line.startswith("F "):
            end = lines.index(f"E {NONCE}", i)
            got[line.split()[2]] = base64.b64decode("".join(lines[i + 1 : end]))
    return got


def find_mtime(path: Path) -> str:
    return subprocess.run(
        ["find", str(path), "-maxdepth", "0", "-printf", "%T@"],
        capture_output=True,
        text=True,
        check=True,
        timeout=20,
    ).stdout


def test_a_stop_and_its_summary_and_nothing_a_link_or_a_fifo_points_at(
    io: Path, reader: Reader, tmp_path: Path
) -> None:
    summary, stop = io / RUN / "summary.json", io / STOP
    summary.write_text('{"status": "completed"}\n')
    stop.write_text('{"reason": "exit"}\n')
    answer, out = reader.ask(STOP)
    # the key the controller matches with the listing's: exactly find's %T@
    assert answer == find_mtime(stop)
    assert blocks(out) == {"summary": summary.read_bytes(), "stop": stop.read_bytes()}
    header = out.splitlines()[0].split()
    assert header[:3] == ["F", NONCE, "summary"] and header[3] == find_mtime(summary)
    assert header[5:] == [NOW, f"{RUN}/summary.json"]
    # no summary: said so
    summary.unlink()
    want = {"none": f"{RUN}/summary.json".encode(), "stop": stop.read_bytes()}
    assert blocks(reader.ask(STOP)[1]) == want
    # a link, a FIFO, a directory, a file over its cap: not shipped (the controller asks)
    summary.symlink_to(tmp_path / "secret")
    assert blocks(reader.ask(STOP)[1]).keys() == {"stop"}
    summary.unlink()
    os.mkfifo(summary)  # opened without waiting for a writer: the reader answers at once
    assert blocks(reader.ask(STOP)[1]).keys() == {"stop"}
    summary.unlink()
    summary.mkdir()
    assert blocks(reader.ask(STOP)[1]).keys() == {"stop"}
    summary.rmdir()
    summary.write_bytes(b"x" * (MAX_AGENT_FILE + 1))
    assert blocks(reader.ask(STOP)[1]).keys() == {"stop"}
    summary.write_bytes(b"x" * MAX_AGENT_FILE)  # at the cap: shipped whole
    assert blocks(reader.ask(STOP)[1])["summary"] == summary.read_bytes()
    # the stop itself a link, or over its cap: nothing shipped for it, the answer empty
    stop.unlink()
    stop.symlink_to(tmp_path / "secret")
    answer, out = reader.ask(STOP)
    assert answer == "" and "stop" not in blocks(out)
    stop.unlink()
    stop.write_bytes(b"y" * (STOP_LIMIT + 1))
    answer, out = reader.ask(STOP)
    assert answer == "" and "stop" not in blocks(out)
    # the run's directory a link to one with a summary and a stop of its own: nothing of it
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "summary.json").write_bytes(SECRET)
    (elsewhere / stop.name).write_bytes(SECRET)
    shutil.rmtree(io / RUN)
    (io / RUN).symlink_to(elsewhere)
    answer, out = reader.ask(STOP)
    assert answer == "" and blocks(out) == {}
    # names that are not a stop of a run: nothing read
    for bad in ("T-1/factory.i1/../../secret.stop", "T-1/planner.i1/x.stop", "/etc/x.stop"):
        assert reader.ask(bad) == ("", "")


def flipper(path: Path, target: Path, stop: threading.Event) -> threading.Thread:
    """A hostile agent: ``path`` is a regular file, then a link to ``target``, again and again
    (each swap one rename)."""

    def run() -> None:
        tmp_file, tmp_link = path.with_name("flip.file"), path.with_name("flip.link")
        while not stop.wait(0.0002):  # thousands of swaps a second, not a whole core
            tmp_file.write_bytes(b'{"status": "completed"}\n')
            os.replace(tmp_file, path)
            tmp_link.unlink(missing_ok=True)
            tmp_link.symlink_to(target)
            os.replace(tmp_link, path)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def asked_while_swapped(reader: Reader, swapper: threading.Thread, stop: threading.Event) -> int:
    """The stop asked for 400 times while ``swapper`` swaps a link in and out (then stopped):
    the secret never shipped; how many times the summary was."""
    shipped = 0
    try:
        for _ in range(400):
            out = blocks(reader.ask(STOP)[1])
            assert SECRET not in out.values()
            shipped += "summary" in out
    finally:
        stop.set()
        swapper.join(timeout=10)
    return shipped


def test_a_link_swapped_in_while_the_reader_reads_is_never_followed(
    io: Path, reader: Reader, tmp_path: Path
) -> None:
    (io / STOP).write_text('{"reason": "exit"}\n')
    stop = threading.Event()
    thread = flipper(io / RUN / "summary.json", tmp_path / "secret", stop)
    shipped = asked_while_swapped(reader, thread, stop)
    assert 0 < shipped < 400  # both sides of the swap were met


def test_a_directory_swapped_for_a_link_is_never_followed(
    io: Path, reader: Reader, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "summary.json").write_bytes(SECRET)
    real = io / "T-1" / "real"
    real.mkdir()
    (real / "summary.json").write_text('{"status": "completed"}\n')
    (real / "T-1.factory.i1.a1.stop").write_text('{"reason": "exit"}\n')
    shutil.rmtree(io / RUN)
    (io / RUN).symlink_to(real)
    stop = threading.Event()

    def swap() -> None:  # the run's directory: the real one, then a link elsewhere
        link = io / "T-1" / "flip.link"
        while not stop.wait(0.0002):  # thousands of swaps a second, not a whole core
            link.unlink(missing_ok=True)
            link.symlink_to(elsewhere)
            os.replace(link, io / RUN)
            link.symlink_to(real)
            os.replace(link, io / RUN)

    thread = threading.Thread(target=swap, daemon=True)
    thread.start()
    shipped = asked_while_swapped(reader, thread, stop)
    assert shipped == 0  # a link, even to a real run's directory: never through it


@pytest.mark.parametrize("tools", ["python3", "dd base64"])
def test_the_inotify_loop_ships_with_the_reader_or_without_it(tmp_path: Path, tools: str) -> None:
    """The stream's script as the host runs it, with python3 and no dd nor base64 on its PATH
    (so a stop shipped came through the reader), or without python3 (the sh reader): each stop
    is shipped with the summary as it was when the stop was written, never a later one."""
    if shutil.which("inotifywait") is None:
        pytest.skip("inotifywait not installed (apt-get install -y inotify-tools)")
    from hatchctl.engine.remotewatch import INOTIFY_SCRIPT, POLL_SCRIPT, WATCH_SCRIPT

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in (
        "sh",
        "bash",
        "find",
        "sort",
        "sleep",
        "kill",
        "date",
        "inotifywait",
        *tools.split(),
    ):
        found = shutil.which(tool)
        assert found is not None, tool
        (bin_dir / tool).symlink_to(found)
    io = tmp_path / "io"
    (io / RUN).mkdir(parents=True)
    argv = [str(bin_dir / "sh"), "-c", WATCH_SCRIPT, "hatch-watch", str(io), str(tmp_path)]
    argv += ["auto", INOTIFY_SCRIPT, POLL_SCRIPT, NONCE, READER]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, env={"PATH": str(bin_dir)}, start_new_session=True
    )
    killer = threading.Timer(30, os.killpg, (proc.pid, signal.SIGKILL))  # bounds the reads
    killer.start()
    assert proc.stdout is not None

    def until_dot() -> str:
        lines = []
        while (line := proc.stdout.readline().decode()) and line != ".\n":  # type: ignore[union-attr]
            lines.append(line)
        return "".join(lines)

    def stop(text: str) -> dict[str, bytes]:
        tmp = io / RUN / "x.tmp"
        tmp.write_text(text)
        tmp.rename(io / STOP)
        got = ""
        while not got.endswith(f" {STOP}\n"):  # heartbeats, then the stop's line after its blocks
            got = until_dot()
        return blocks(got)

    try:
        assert until_dot().startswith("W inotify\n")
        # the reader is not waited for: the stops before it is up go without it (here, with no
        # dd, not shipped at all); shipped from the first after it said it was ready
        deadline = time.monotonic() + 20
        while "stop" not in stop("warm-up\n"):
            assert time.monotonic() < deadline, "no stop shipped"
        summary = io / RUN / "summary.json"
        summary.write_text('{"n": 1}\n')
        assert stop("one\n") == {"summary": b'{"n": 1}\n', "stop": b"one\n"}
        summary.write_text('{"n": 2}\n')  # rewritten after the stop: not on the stream
        assert stop("two\n") == {"summary": b'{"n": 2}\n', "stop": b"two\n"}
    finally:
        killer.cancel()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
