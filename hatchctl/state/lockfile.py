"""``supervisor.lock``: an flock held by the one supervisor of a project, with its pid inside.

A lock left by a dead process is free (the kernel drops flocks with their owner) and is taken
over; a live holder is refused with its pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path

from hatchctl.errors import SupervisorError


@dataclass(frozen=True)
class LockInfo:
    held: bool
    pid: int | None


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip().split()
        return int(text[0]) if text else None
    except (OSError, ValueError):
        return None


def _pid_alive(pid: int | None) -> bool:
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def probe(path: Path) -> LockInfo:
    """Is a supervisor holding the lock? Never takes the lock for longer than a syscall."""
    if not path.exists():
        return LockInfo(False, None)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return LockInfo(False, None)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return LockInfo(True, _read_pid(path))
        fcntl.flock(fd, fcntl.LOCK_UN)
        return LockInfo(False, None)
    finally:
        os.close(fd)


class SupervisorLock:
    """Held for the lifetime of a supervisor process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self.took_over_from: int | None = None

    def acquire(self, wait: float = 2.0) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + wait
        previous = _read_pid(self.path)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _read_pid(self.path)
                # A live holder is another supervisor; a probe's brief shared lock is not.
                if (_pid_alive(holder) and holder != os.getpid()) or time.monotonic() > deadline:
                    os.close(fd)
                    raise SupervisorError(
                        f"another supervisor is already running for this project (pid {holder})"
                    ) from None
                time.sleep(0.02)
        if previous and previous != os.getpid() and not _pid_alive(previous):
            self.took_over_from = previous
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None
