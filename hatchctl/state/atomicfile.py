"""``write_atomic``: a file replaced whole (temp file, fsync, rename), never through a link.

Used for every file hatchctl derives and readers must see whole: ``current_state.json``
(state/snapshot.py), plans, the refs guard, launch files, a remote run's summary.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path


def write_atomic(path: Path, data: bytes, *, durable: bool = True, mode: int = 0o600) -> None:
    """temp file in the same directory (``mode``, 0600 unless said, made afresh: never through
    a link or into a file left there), fsync, rename: readers see the old or the new file,
    never none; the rename replaces a link at ``path`` itself. The temporary name is this
    thread's own. ``durable`` False: no fsync, for a file nothing needs after an OS crash (its
    callers say why)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        try:
            os.fchmod(fd, mode)  # exactly ``mode``, whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
