"""A raw inotify reader (ctypes, no dependency): the floor a file-event reaction can reach on this
machine. Watches a tree recursively and records when each file with a given suffix appeared
(moved into place or closed after writing), in wall-clock seconds like a file's mtime."""

from __future__ import annotations

import ctypes
import os
import select
import struct
import threading
import time
from pathlib import Path

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_ISDIR = 0x40000000
IN_CLOEXEC = 0o2000000
_HEADER = struct.Struct("iIII")


class RawInotify(threading.Thread):
    def __init__(self, root: Path, suffix: str) -> None:
        super().__init__(name="raw-inotify", daemon=True)
        self.libc = ctypes.CDLL("libc.so.6", use_errno=True)
        self.fd = self.libc.inotify_init1(IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.suffix = suffix
        self.dirs: dict[int, str] = {}
        self.seen: dict[str, float] = {}
        self._halt = False
        self._add_tree(str(root))

    def _add(self, path: str) -> None:
        mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE
        wd = self.libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd >= 0:
            self.dirs[wd] = path

    def _add_tree(self, root: str) -> None:
        for dirpath, _dirs, files in os.walk(root):
            self._add(dirpath)
            for name in files:  # written before the watch existed: seen "now"
                if name.endswith(self.suffix):
                    self.seen.setdefault(os.path.join(dirpath, name), time.time())

    def run(self) -> None:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        while not self._halt:
            if not poller.poll(200):
                continue
            data = os.read(self.fd, 1 << 16)
            now = time.time()
            offset = 0
            while offset < len(data):
                wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
                raw = data[offset + _HEADER.size : offset + _HEADER.size + length]
                offset += _HEADER.size + length
                name = raw.rstrip(b"\0").decode()
                parent = self.dirs.get(wd)
                if parent is None:
                    continue
                path = os.path.join(parent, name)
                if mask & IN_ISDIR and mask & (IN_CREATE | IN_MOVED_TO):
                    self._add_tree(path)
                elif name.endswith(self.suffix):
                    self.seen.setdefault(path, now)

    def stop(self) -> None:
        self._halt = True
        self.join(timeout=2)
        os.close(self.fd)
