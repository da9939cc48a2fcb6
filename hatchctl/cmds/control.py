"""Write commands: kill, restart, retry, pause, resume, down (sent to the running supervisor)."""

from __future__ import annotations

import argparse

from hatchctl.errors import SupervisorError


def _refuse(args: argparse.Namespace) -> int:
    raise SupervisorError(
        "no supervisor is running for this project (start one with `hatchctl run`)"
    )


kill = restart = retry = pause = resume = down = _refuse
