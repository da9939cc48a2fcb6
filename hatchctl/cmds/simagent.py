"""``hatchctl sim-agent``."""

from __future__ import annotations

import argparse


def main(args: argparse.Namespace) -> int:
    from hatchctl.runtime.simagent import main as sim_main

    return sim_main(args.interactive)
