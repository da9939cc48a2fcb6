"""A worker for test_preset_claude's concurrent trust seeding, in a module of its own: each spawned
process imports it (and hatchctl.agents.claude) only, not the whole test module."""

from __future__ import annotations

from pathlib import Path

from hatchctl.agents import claude


def seed_one(args: tuple[str, str]) -> bool:
    return claude.seed_trust(Path(args[0]), [Path(args[1])], timeout=30)
