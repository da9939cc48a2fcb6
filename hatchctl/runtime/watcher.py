"""inotify (via watchdog) on the runs' exchange directories (recursively: stop files and
summaries), the spec directory and the wake file.

Events are pushed, as ``(kind, path)``, into a queue the supervisor waits on: kind ``"stop"`` for a
run's ``.stop`` file (so it can be handled before unrelated work), ``"fs"`` for anything else. The
supervisor also stats the files of its live runs on every tick, so a missed event only costs one
tick.

Only the events that say a file is complete are asked of the kernel (created, moved into place,
closed after writing): reads of these files (the supervisor's own) and every single write() do not
wake the watcher.
"""

from __future__ import annotations

import queue
import warnings
from pathlib import Path

from watchdog.events import (
    FileClosedEvent,
    FileCreatedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from hatchctl import logsetup

# what the kernel is asked for: IN_CREATE, IN_MOVED_*, IN_CLOSE_WRITE (not IN_OPEN, IN_ACCESS,
# IN_CLOSE_NOWRITE, IN_MODIFY on every write(), IN_ATTRIB)
EVENTS: list[type[FileSystemEvent]] = [FileCreatedEvent, FileMovedEvent, FileClosedEvent]


def kind_of(path: str) -> str:
    return "stop" if path.endswith(".stop") else "fs"


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
        self.sink.put((kind_of(path), path))


class Watcher:
    def __init__(
        self,
        dirs: list[Path],
        sink: queue.Queue[tuple[str, str]],
        *,
        recursive: list[Path] | None = None,
    ) -> None:
        self.dirs = dirs
        self.recursive = recursive or []
        self.sink = sink
        self._observer: Observer | None = None  # type: ignore[valid-type]
        self.log = logsetup.get(component="watcher")

    def start(self) -> None:
        # watchdog warns when a directory created under a recursive watch is added twice (its
        # own race, harmless: the watch is simply replaced)
        warnings.filterwarnings("ignore", message="Callback with id", category=RuntimeWarning)
        observer = Observer()
        handler = _Handler(self.sink)
        for d in self.dirs:
            d.mkdir(parents=True, exist_ok=True)
            observer.schedule(handler, str(d), recursive=False, event_filter=EVENTS)
        for d in self.recursive:
            d.mkdir(parents=True, exist_ok=True)
            observer.schedule(handler, str(d), recursive=True, event_filter=EVENTS)
        observer.daemon = True
        observer.start()
        self._observer = observer
        self.log.info("watcher_started", dirs=[str(d) for d in (*self.dirs, *self.recursive)])

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
