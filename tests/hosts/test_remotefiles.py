"""What the controller reads from a host is bounded and never follows a link nor blocks on a
FIFO (a host's files are written by its agents); what it writes lands atomically, private."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path, PurePosixPath

from hatchctl.engine import remotefiles
from hatchctl.hosts.ssh import SshHost
from tests.hosts.test_remote_reader import flipper


def test_reads_are_bounded_regular_files_and_writes_are_private(
    host: SshHost, tmp_path: Path
) -> None:
    root = tmp_path / "remote"
    (root / "big").write_bytes(b"x" * 300_000)
    (root / "secret").write_text("not for the controller\n")
    (root / "link").symlink_to(root / "secret")
    os.mkfifo(root / "fifo")
    (root / "dir").mkdir()

    def read(name: str, limit: int = 1000, end: bool = False) -> tuple[float, str] | None:
        return remotefiles.read(host, PurePosixPath(root / name), limit, timeout=20, end=end)

    got = read("big", 4096)
    assert got is not None and got[1] == "x" * 4096
    assert abs(got[0] - (root / "big").stat().st_mtime) < 0.01
    (root / "big").write_bytes(b"a" * 10 + b"z" * 10)
    tail = read("big", 5, end=True)
    assert tail is not None and tail[1] == "zzzzz"
    for name in ("link", "fifo", "dir", "missing"):  # answered at once, nothing read
        assert read(name) is None, name
    target = PurePosixPath(root / "new dir" / "it's $(x).txt")
    remotefiles.put(host, target, "line; $(touch pwned)\n", timeout=20)
    written = Path(str(target))
    assert written.read_text() == "line; $(touch pwned)\n"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert stat.S_IMODE(written.parent.stat().st_mode) == 0o700
    assert not list(root.rglob("pwned")) and not list(root.rglob("*.tmp"))


def test_a_read_never_follows_a_link_swapped_in_after_its_check(
    host: SshHost, tmp_path: Path
) -> None:
    """A hostile agent on the host swaps ``summary.json`` between a regular file and a link to
    a secret as fast as it can while the controller reads it over ssh: the secret never comes
    back (the read opens the file without following a link, after checking it is not one)."""
    root = tmp_path / "remote"
    secret = b"the host's private key\n"
    (root / "secret").write_bytes(secret)
    path = root / "summary.json"
    stop = threading.Event()
    thread = flipper(path, root / "secret", stop)
    seen = set()
    try:
        for _ in range(60):
            for end in (False, True):
                got = remotefiles.read(host, PurePosixPath(path), 4096, timeout=20, end=end)
                seen.add(None if got is None else got[1])
            stamped = remotefiles.read_stamped(host, PurePosixPath(path), 4096, timeout=20)
            seen.add(None if stamped is None else stamped[2])
    finally:
        stop.set()
        thread.join(timeout=10)
    assert secret.decode() not in seen
    assert '{"status": "completed"}\n' in seen  # the regular file was read
