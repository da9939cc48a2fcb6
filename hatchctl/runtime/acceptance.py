"""Run a task's acceptance command (an argv list, never a shell string) with a timeout."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hatchctl.errors import CommandError, CommandTimeout
from hatchctl.runtime import proc

Confine = Callable[[Path, list[str]], list[str]]  # (workdir, argv) -> the argv to run


@dataclass(frozen=True)
class AcceptanceResult:
    passed: bool
    timed_out: bool
    returncode: int | None
    output_tail: str
    seconds: float

    def describe(self) -> str:
        if self.timed_out:
            return f"acceptance timed out after {self.seconds:.1f}s"
        last = self.output_tail.strip().splitlines()[-1:]
        return f"acceptance exited {self.returncode}" + (f": {last[0][:200]}" if last else "")


def run_acceptance(
    argv: list[str], cwd: Path, timeout: float, *, confine: Confine | None = None
) -> AcceptanceResult:
    """Run ``argv`` in ``cwd``. It is code an agent wrote: ``confine`` wraps it (a sandbox
    with only ``cwd`` writable) where the project's sandbox is on."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for name in ("TMUX", "TMUX_PANE"):
        env.pop(name, None)
    full = confine(cwd, argv) if confine is not None else argv
    try:
        result = proc.run(full, timeout=timeout, cwd=cwd, env=env, check=False)
    except CommandTimeout as exc:
        return AcceptanceResult(False, True, None, exc.output[-4000:], timeout)
    except CommandError as exc:  # not found / not executable
        return AcceptanceResult(False, False, exc.returncode, str(exc), 0.0)
    return AcceptanceResult(
        result.returncode == 0, False, result.returncode, result.output[-4000:], result.seconds
    )
