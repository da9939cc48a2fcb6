"""SshHost against a real sshd on 127.0.0.1: arguments reach the remote program literally, one
master connection carries every call, tmux runs on the host through it, and a dropped link is
HostUnreachable, then a reconnect."""

from __future__ import annotations

import stat
import threading
import uuid
from pathlib import Path, PurePosixPath

import pytest

from hatchctl.errors import CommandError, CommandTimeout, HostUnreachable
from hatchctl.hosts.ssh import SshHost
from tests.conftest import poll
from tests.hosts.sshd import SshServer

HOSTILE = [
    "; touch pwned",
    "$(touch dollar)",
    "`touch backtick`",
    "a b  c",
    'it\'s "quoted"',
    "*",
    "\\n\\",
    "",
    "line\nbreak",
    "-n",
    "|| touch or",
    "> redirected",
]


def test_hostile_arguments_reach_the_remote_program_literally(
    host: SshHost, tmp_path: Path
) -> None:
    cwd = tmp_path / "remote" / "dir with 'quote' and $(x)"
    cwd.mkdir()
    res = host.run(["printf", "%s\\0", *HOSTILE], timeout=20, cwd=PurePosixPath(cwd))
    assert res.stdout.split("\0")[:-1] == HOSTILE
    assert res.argv[0] == "printf"
    assert host.run(["pwd"], timeout=10, cwd=PurePosixPath(cwd)).stdout == f"{cwd}\n"
    assert host.run(["cat"], timeout=10, input_text="in; $(put)\n").stdout == "in; $(put)\n"
    assert sorted(p.name for p in cwd.iterdir()) == []  # nothing ran, nothing was redirected
    assert not any(p.name in ("pwned", "dollar", "backtick", "or") for p in Path.home().iterdir())
    # exit statuses are the program's, 255 included while the master lives
    assert host.run(["sh", "-c", "exit 3"], timeout=10, check=False).returncode == 3
    assert host.run(["sh", "-c", "exit 255"], timeout=10, check=False).returncode == 255
    with pytest.raises(CommandError, match="on host loop exited with 4"):
        host.run(["sh", "-c", "echo boom >&2; exit 4"], timeout=10)
    with pytest.raises(CommandTimeout):  # the program is slow; the host is fine
        host.run(["sleep", "5"], timeout=0.5)


def test_one_master_connection_serves_every_call(host: SshHost, sshd: SshServer) -> None:
    # an earlier test's master may still be closing (`ssh -O exit` does not wait for it)
    poll(lambda: sshd.connections() == 0, 10, "earlier connections to close")
    pid = host.connect(timeout=20)
    control = host.control_path.parent
    assert stat.S_IMODE(control.stat().st_mode) == 0o700
    assert host.control_path.is_socket()
    for i in range(5):
        assert host.run(["echo", str(i)], timeout=10).stdout == f"{i}\n"
    assert host.master_pid() == pid
    assert sshd.connections() == 1  # one TCP connection on the server for all six
    host.close()
    poll(lambda: host.master_pid() is None, 10, "the master to exit")


def test_tmux_on_the_host_through_ssh(host: SshHost, tmp_path: Path) -> None:
    tmux = host.tmux(f"hatch-sshtest-{uuid.uuid4().hex[:8]}", timeout=10, tag="sshtest")
    work = tmp_path / "remote" / "w"
    work.mkdir()
    try:
        assert tmux.ensure_server(work) > 0
        pane = tmux.new_window(
            "agent;",
            ["sh", "-c", 'printf "%s|%s\\n" "$HATCH_X" "$1"; exec sleep 60', "sh", "$(id); x"],
            cwd=work,
            env={"HATCH_X": "a b; $(touch pwned)"},
            index=7,
        )
        poll(
            lambda: "a b; $(touch pwned)|$(id); x" in tmux.capture(pane.pane_id),
            15,
            "the window's output",
        )
        assert [p.tag for p in tmux.list_panes() if p.pane_id == pane.pane_id] == ["sshtest"]
        tmux.kill_pane(pane.pane_id)
        poll(lambda: pane.pane_id not in {p.pane_id for p in tmux.list_panes()}, 10, "kill")
        assert not (work / "pwned").exists()
        attach = tmux.attach_argv(pane.pane_id)
        assert attach[0] == "ssh" and "-t" in attach and attach[-1].startswith("tmux -u -L ")
    finally:
        tmux.kill_server()
    assert tmux.server_pid() is None


def test_dropped_link_is_host_unreachable_then_reconnects(host: SshHost, sshd: SshServer) -> None:
    first = host.connect(timeout=20)
    caught: list[BaseException] = []

    def long_call() -> None:
        try:
            host.run(["sleep", "60"], timeout=30)
        except BaseException as exc:
            caught.append(exc)

    call = threading.Thread(target=long_call)
    call.start()
    poll(lambda: sshd.running(["sleep", "60"]), 10, "the remote program")
    try:
        sshd.stop()  # the host goes away: the listener and the connection it served
        call.join(timeout=20)
        assert not call.is_alive()
        assert len(caught) == 1 and isinstance(caught[0], HostUnreachable), caught
        assert "host loop" in str(caught[0])
        with pytest.raises(HostUnreachable, match="Connection refused"):
            host.run(["true"], timeout=20)
    finally:
        sshd.start()
    assert host.run(["echo", "back"], timeout=20).stdout == "back\n"
    second = host.master_pid()
    assert second is not None and second != first
