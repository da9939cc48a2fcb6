"""``hatchctl`` with no command: the control room."""

from __future__ import annotations

import argparse

from hatchctl.errors import HatchError


def main(args: argparse.Namespace) -> int:
    raise HatchError("the control room UI is not implemented yet; use `hatchctl status`")
