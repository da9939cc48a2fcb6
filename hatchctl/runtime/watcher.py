"""inotify (via watchdog) on the hook and summary directories and the wake file.

Events are pushed, as paths, into a queue the supervisor waits on; the supervisor also stats the
files of its live runs on every tick, so a missed event only costs one tick.
"""

from __future__ import annotations

import queue
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from hatchctl import logsetup


class _Handler(FileSystemEventHandler):
    def __init__(self, sink: queue.Queue[tuple[str, str]]) -> None:
        self.sink = sink

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type not in ("created", "modified", "moved", "closed"):
            return
        raw = getattr(event, "dest_path", "") or event.src_path
        path = raw.decode() if isinstance(raw, bytes) else str(raw)
        if path.endswith(".tmp"):
            return
        self.sink.put(("fs", path))


class Watcher:
    def __init__(self, dirs: list[Path], sink: queue.Queue[tuple[str, str]]) -> None:
        self.dirs = dirs
        self.sink = sink
        self._observer: Observer | None = None  # type: ignore[valid-type]
        self.log = logsetup.get(component="watcher")

    def start(self) -> None:
        observer = Observer()
        handler = _Handler(self.sink)
        for d in self.dirs:
            d.mkdir(parents=True, exist_ok=True)
            observer.schedule(handler, str(d), recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer
        self.log.info("watcher_started", dirs=[str(d) for d in self.dirs])

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
