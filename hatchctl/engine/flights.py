"""At most one background task at a time per key, each in a daemon thread: what the
supervisor's loop starts on a host (a pane's screen capture, a Notification file's read, a
round of CPU samples) and takes the result of on a later pass, never waiting for it. The task
puts its own result where its owner takes it (engine/remotesample.py, remotesignals.py).
``close`` starts nothing more and waits for the tasks under way, each bounded by its own
timeout."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class Flights(Generic[K]):
    def __init__(self, name: str) -> None:
        self.name = name  # the threads' names: hatch-NAME-KEY
        self.lock = threading.Lock()
        self.threads: dict[K, threading.Thread] = {}  # key -> its task under way
        self.closed = False

    def idle(self, key: K) -> bool:
        """Whether a task for ``key`` could start now: none runs for it and this is open."""
        with self.lock:
            return not self.closed and not self._alive(key)

    def busy(self, key: K) -> bool:
        """A task for ``key`` is under way."""
        with self.lock:
            return self._alive(key)

    def start(self, key: K, task: Callable[[], None]) -> bool:
        """``task`` started in a thread of its own for ``key``; False (nothing started) when one
        runs for ``key`` already or this is closed."""
        with self.lock:
            if self.closed or self._alive(key):
                return False
            thread = threading.Thread(
                target=self._run, args=(key, task), name=f"hatch-{self.name}-{key}", daemon=True
            )
            self.threads[key] = thread
            thread.start()
        return True

    def close(self) -> None:
        """No task from now on; the ones under way waited for."""
        with self.lock:
            self.closed = True
            threads = list(self.threads.values())
        for thread in threads:
            thread.join()

    def _alive(self, key: K) -> bool:
        thread = self.threads.get(key)
        return thread is not None and thread.is_alive()

    def _run(self, key: K, task: Callable[[], None]) -> None:
        try:
            task()
        finally:  # (a task that raised is over too: the key is free again)
            with self.lock:
                if self.threads.get(key) is threading.current_thread():
                    del self.threads[key]
