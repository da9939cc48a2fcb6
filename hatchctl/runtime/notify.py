"""The configured notify command: JSON on stdin, a timeout, run off the supervisor's thread."""

from __future__ import annotations

import json
import threading
from typing import Any

from hatchctl import logsetup
from hatchctl.errors import CommandError
from hatchctl.runtime import proc


class Notifier:
    def __init__(self, command: list[str], timeout: float) -> None:
        self.command = command
        self.timeout = timeout
        self.log = logsetup.get(component="notify")
        self._threads: list[threading.Thread] = []

    def send(self, event: str, **data: Any) -> None:
        if not self.command:
            return
        payload = json.dumps({"event": event, **data}, sort_keys=True, default=str)
        t = threading.Thread(target=self._run, args=(event, payload), daemon=True, name="notify")
        t.start()
        self._threads = [x for x in self._threads if x.is_alive()] + [t]

    def _run(self, event: str, payload: str) -> None:
        try:
            proc.run(self.command, timeout=self.timeout, input_text=payload)
            self.log.info("notify_sent", notify_event=event)
        except CommandError as exc:
            self.log.warning("notify_failed", notify_event=event, error=str(exc))

    def drain(self, timeout: float = 5.0) -> None:
        for t in self._threads:
            t.join(timeout)
