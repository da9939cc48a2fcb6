"""``preset = "command"`` (the default): any program, run exactly as ``[agents.<role>]`` says.

Nothing is filled in: ``command`` defaults to ``["hatchctl", "sim-agent"]`` (AgentSection's own
default), the prompt is the last argument, the run stops when the program exits. hatchctl knows
nothing of the program's screens, credentials or version; doctor checks that it exists.
"""

from __future__ import annotations

from typing import Any

from hatchctl.agents import Preset


class CommandPreset(Preset):
    def defaults(self) -> dict[str, Any]:
        return {}


PRESET = CommandPreset(name="command", title="any command")
