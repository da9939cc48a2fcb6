"""``hatchctl`` with no command: the control room."""

from __future__ import annotations

import argparse

from hatchctl.errors import HatchError
from hatchctl.project import Project


def run_ui(project: Project, *, read_only: bool) -> int:
    raise HatchError("the control room UI is not implemented yet; use `hatchctl demo --headless`")


def main(args: argparse.Namespace) -> int:
    raise HatchError("the control room UI is not implemented yet; use `hatchctl status`")
