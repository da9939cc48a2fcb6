"""The simulated agent's view of its spec: the ``sim:`` script, title, acceptance and LOC cap,
read without pydantic. `hatchctl sim-agent` starts once per simulated run, and building the
spec's pydantic models cost it about 0.1 s of CPU each time; the supervisor has already
validated the spec (state/spec.py, state/simscript.py), so this only reads it."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SLOW_SECONDS = 1.0
NOISY_LINES = 200
LOC_CAP = 500


def pick(steps: list[Any], iteration: int, attempt: int) -> str:
    """Per role, a list indexed by iteration (the last entry repeats); each entry is a
    behaviour, or a list of behaviours indexed by attempt (the last repeats)."""
    if not steps:
        return "ok"
    step = steps[min(max(iteration, 1), len(steps)) - 1]
    if isinstance(step, list):
        return str(step[min(max(attempt, 1), len(step)) - 1]) if step else "ok"
    return str(step)


@dataclass
class Script:
    files: dict[str, str] = field(default_factory=dict)
    append: dict[str, str] = field(default_factory=dict)
    broken_files: dict[str, str] = field(default_factory=dict)
    factory: list[Any] = field(default_factory=lambda: ["ok"])
    qa: list[Any] = field(default_factory=lambda: ["ok"])
    slow_seconds: float = SLOW_SECONDS
    noisy_lines: int = NOISY_LINES
    commit_message: str = ""
    interactive: bool | None = None

    def behaviour(self, role: str, iteration: int, attempt: int) -> str:
        return pick(self.factory if role == "factory" else self.qa, iteration, attempt)


@dataclass
class SimSpec:
    title: str
    loc_cap: int | None
    acceptance: str | list[str] | None
    sim: Script

    def acceptance_argv(self) -> list[str] | None:
        if self.acceptance is None:
            return None
        if isinstance(self.acceptance, list):
            return [str(a) for a in self.acceptance]
        return shlex.split(self.acceptance)


def read_sim_spec(path: Path) -> SimSpec:
    """The spec at ``path``; ValueError with the reason when it cannot be read as one."""
    import yaml  # only here: importing this module (spec.py does) needs no YAML

    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].strip() != "---":
        raise ValueError(f"{path}:1: missing YAML front matter")
    end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
    if end is None:
        raise ValueError(f"{path}:1: front matter is not closed with ---")
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load("\n".join(lines[1:end]), Loader=loader)  # noqa: S506 (a safe loader)
    except (yaml.YAMLError, RecursionError) as exc:
        raise ValueError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}:2: front matter must be a mapping")
    sim = data.get("sim") or {}
    known = Script.__dataclass_fields__
    return SimSpec(
        title=str(data.get("title", "")),
        loc_cap=data.get("loc_cap", LOC_CAP),
        acceptance=data.get("acceptance"),
        sim=Script(**{k: v for k, v in sim.items() if k in known})
        if isinstance(sim, dict)
        else Script(),
    )
