"""runtime/proc.run's timeout: the command's group is killed and CommandTimeout raised, even
when a process outside that group (here a setsid child; in real use an ssh master's session)
keeps the command's output pipes open for as long as it lives. Real processes."""

from __future__ import annotations

import signal
import uuid

import psutil
import pytest

from hatchctl.errors import CommandTimeout
from hatchctl.runtime import proc


def _holding(marker: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if marker in " ".join(p.info["cmdline"] or ()):
            found.append(p)
    return found


def test_a_timeout_returns_although_an_escaped_child_holds_the_pipes() -> None:
    marker = f"3600.{uuid.uuid4().int % 10**9:09d}"  # a unique sleep: the escaped child
    argv = ["sh", "-c", f'setsid sleep {marker} & echo started; exec sleep "$1"', "sh", marker]
    try:
        with pytest.raises(CommandTimeout) as caught:
            proc.run(argv, timeout=0.5)
        # before: communicate() read the pipes until the escaped sleep ended (an hour; the
        # suite's time limit fails the test first)
        escaped = [p for p in _holding(marker) if p.is_running()]
        assert escaped, "the setsid child is outside the killed group and still holds the pipes"
        assert caught.value.timeout == 0.5 and "timed out after 0.5s" in str(caught.value)
    finally:
        for p in _holding(marker):
            p.send_signal(signal.SIGKILL)
