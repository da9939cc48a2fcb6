"""A host's process table as the CPU round reads it (engine/remotesample.py: every
/proc/<pid>/stat printed by one grep, each line after its file's name), parsed here: a tree's
CPU summed from its pane's pid; a process cannot pass for another by the name it gives itself;
an output that is not whole gives no table."""

from __future__ import annotations

import os
import subprocess
import sys

from hatchctl.engine import remotesample
from hatchctl.runtime import psinfo


def stat(pid: int, name: bytes, ppid: int, utime: int, stime: int) -> bytes:
    """A /proc/<pid>/stat line as Linux writes it (52 fields)."""
    rest = [b"S", b"%d" % ppid, *[b"0"] * 9, b"%d" % utime, b"%d" % stime, *[b"0"] * 36]
    return b"%d (" % pid + name + b") " + b" ".join(rest)


def grep_output(tick: bytes, uptime: bytes, records: dict[int, bytes]) -> bytes:
    lines = [tick, b"uptime:" + uptime]
    for pid, record in records.items():  # grep -H: every line of the file after its name
        lines += [b"%d/stat:" % pid + part for part in record.split(b"\n")]
    return b"\n".join(lines) + b"\n"


def test_a_tree_is_summed_from_the_host_table_with_its_clock_and_ticks() -> None:
    out = grep_output(
        b"100",
        b"5000.25 9000.00",
        {
            10: stat(10, b"bash", 1, 1, 1),  # the pane's process
            11: stat(11, b"python3 (x) y", 10, 250, 50),  # a name with spaces and parens
            12: stat(12, b"cc1", 11, 100, 0),
            13: stat(13, b"other", 1, 9999, 0),  # not in the tree
        },
    )
    parsed = remotesample.parse_table(out)
    assert parsed is not None
    clock, table = parsed
    assert clock == 5000.25
    assert table[11] == (10, 3.0)
    seconds = psinfo.tree_seconds(table, psinfo.children_of(table), 10)
    assert abs(seconds - (0.02 + 3.0 + 1.0)) < 1e-9
    # another tick rate on the host (getconf CLK_TCK): its ticks, not ours
    _, table = remotesample.parse_table(out.replace(b"100\n", b"250\n", 1)) or (0, {})
    assert table[11] == (10, 300 / 250)


def test_a_name_with_a_newline_cannot_pass_for_another_process() -> None:
    # pid 20 names itself "x\n10 (y": its record goes on a second line that starts like pid
    # 10's, with its own ppid and CPU (a busy agent making another run's pane look busy)
    forged = stat(20, b"x\n10 (y", 1, 5000, 0)
    out = grep_output(b"100", b"1.0 1.0", {10: stat(10, b"bash", 1, 1, 0), 20: forged})
    parsed = remotesample.parse_table(out)
    assert parsed is not None
    _, table = parsed
    assert table[10] == (1, 0.01)  # pid 10 as its own file says
    assert 20 not in table  # its record, cut in two, is no record (no sample of it)
    # its own pid after the newline: the second line is its real record
    honest = stat(20, b"x\n20 (y", 1, 5000, 0)
    out = grep_output(b"100", b"1.0 1.0", {20: honest})
    _, table = remotesample.parse_table(out) or (0, {})
    assert table[20] == (1, 50.0)


def test_an_output_that_is_not_whole_gives_no_table() -> None:
    whole = grep_output(b"100", b"7.5 1.0", {10: stat(10, b"bash", 1, 1, 0)})
    assert remotesample.parse_table(whole) is not None
    no_clock = b"100\n10/stat:" + stat(10, b"bash", 1, 1, 0) + b"\n"
    assert remotesample.parse_table(no_clock) is None
    cut = whole + b"9" * remotesample.TABLE_LIMIT  # cut at the limit by head -c
    assert remotesample.parse_table(cut[: remotesample.TABLE_LIMIT]) is None
    no_getconf = whole.split(b"\n", 1)[1]  # getconf missing there: Linux's 100
    _, table = remotesample.parse_table(no_getconf) or (0, {})
    assert table[10] == (1, 0.01)


def test_the_script_reads_this_machines_table_as_psinfo_does() -> None:
    """TABLE_SCRIPT run here (the host is this machine): this process is found in it, with the
    CPU psinfo reads from /proc/<pid>/stat: some, and no more than psinfo's read after it."""
    out = subprocess.run(
        ["sh", "-c", remotesample.TABLE_SCRIPT], capture_output=True, timeout=30, check=True
    ).stdout
    parsed = remotesample.parse_table(out)
    assert parsed is not None
    clock, table = parsed
    assert clock > 0
    mine = table[os.getpid()]
    after = psinfo.cpu_seconds_many([os.getpid()])[os.getpid()]
    assert mine[0] == os.getppid()
    assert 0 < mine[1] <= after


def test_a_real_process_named_so_is_left_out() -> None:
    """The same with a real process (its name written to /proc/self/comm) and the real grep:
    this process is read as itself, the one that named itself after it is not in the table."""
    me = os.getpid()
    forger = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"open('/proc/self/comm', 'w').write('x\\n{me} (y'); print(flush=True); input()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert forger.stdout is not None and forger.stdout.readline() == "\n"  # renamed
        with open(f"/proc/{forger.pid}/comm", "rb") as f:
            assert f.read() == f"x\n{me} (y\n".encode()
        out = subprocess.run(
            ["sh", "-c", remotesample.TABLE_SCRIPT], capture_output=True, timeout=30, check=True
        ).stdout
        assert f"{forger.pid}/stat:{me} (y)".encode() in out  # the line that would pass for me
        parsed = remotesample.parse_table(out)
        assert parsed is not None
        _, table = parsed
        assert table[me][0] == os.getppid()  # mine, not the forger's (its parent is me)
        assert forger.pid not in table
    finally:
        forger.kill()
        forger.wait()
