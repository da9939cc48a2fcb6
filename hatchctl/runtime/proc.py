"""The one way hatchctl runs an external command: an argv list, a timeout, no shell.

On timeout the command's whole process group is killed (it runs in a new session) and
CommandTimeout is raised, at most ``DRAIN_AFTER_KILL`` later; a non-zero exit raises CommandError unless ``check=False``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hatchctl.errors import CommandError, CommandTimeout

# After a timeout's kill, how long its output is still read: a process outside the killed group
# may hold the pipes open for as long as it lives (an ssh master keeps a session's until
# ServerAlive gives up), and the caller is not made to wait for it.
DRAIN_AFTER_KILL = 2.0


@dataclass(frozen=True)
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return (self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr).strip()


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def run(
    argv: list[str],
    *,
    timeout: float,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
    check: bool = True,
    error: type[CommandError] = CommandError,
) -> Result:
    """Run ``argv`` (a list; never a shell string) and wait at most ``timeout`` seconds."""
    if isinstance(argv, str):  # defensive: a string here would be a bug, never split it
        raise TypeError("argv must be a list of arguments")
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except FileNotFoundError:
        raise error(argv, 127, "", f"command not found: {argv[0]}") from None
    except OSError as exc:
        raise error(argv, 126, "", f"cannot run {argv[0]}: {exc.strerror}") from None
    try:
        out, err = proc.communicate(input_text, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        try:
            out, err = proc.communicate(timeout=DRAIN_AFTER_KILL)
        except subprocess.TimeoutExpired:  # a pipe held outside the group (an ssh master's
            for stream in (proc.stdout, proc.stderr):  # session, a setsid child): not waited for
                if stream is not None:
                    stream.close()
            proc.wait()
            out, err = "", ""
        raise CommandTimeout(argv, timeout, (out or "") + (err or "")) from None
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    result = Result(argv, proc.returncode, out or "", err or "", time.monotonic() - start)
    if check and proc.returncode != 0:
        raise error(argv, proc.returncode, result.output)
    return result
