"""The sim agent reads its spec without pydantic (state/simsteps.py): for every spec the
supervisor accepts, it must see what the validated spec says."""

from __future__ import annotations

from pathlib import Path

import pytest

from hatchctl.state.simscript import SimScript
from hatchctl.state.simsteps import read_sim_spec
from hatchctl.state.spec import parse_spec

SPECS = [
    "id: A-1\ntitle: plain\n",
    "id: A-1\ntitle: t\nacceptance: python3 -m unittest 'a b'\nloc_cap: 7\n"
    "sim:\n  factory: [crash, [hang, ok], slow]\n  qa: []\n  slow_seconds: 0.2\n"
    "  files: {a.py: 'x = 1'}\n  commit_message: m\n  interactive: true\n",
    "id: A-1\ntitle: t\nacceptance: [python3, -c, pass]\nloc_cap: null\n"
    "sim:\n  factory: [[]]\n  qa: [reject, approve]\n  noisy_lines: 3\n",
]


@pytest.mark.parametrize("front", SPECS)
def test_the_sim_agent_reads_what_the_validated_spec_says(front: str, tmp_path: Path) -> None:
    path = tmp_path / "A-1.md"
    path.write_text(f"---\n{front}---\nDo it.\n")
    spec = parse_spec(path.read_text(), path).spec
    assert spec is not None
    light = read_sim_spec(path)
    sim = spec.sim or SimScript()
    assert (light.title, light.loc_cap, light.acceptance_argv()) == (
        spec.title,
        spec.loc_cap,
        spec.acceptance_argv(),
    )
    for name in ("files", "append", "broken_files", "slow_seconds", "noisy_lines"):
        assert getattr(light.sim, name) == getattr(sim, name)
    assert (light.sim.commit_message, light.sim.interactive) == (
        sim.commit_message,
        sim.interactive,
    )
    for role in ("factory", "qa"):
        for iteration in range(0, 5):
            for attempt in range(0, 4):
                assert light.sim.behaviour(role, iteration, attempt) == sim.behaviour(
                    role, iteration, attempt
                )


def test_an_unreadable_spec_is_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "x.md"
    path.write_text("no front matter\n")
    with pytest.raises(ValueError, match="front matter"):
        read_sim_spec(path)
    path.write_text("---\n[unclosed\n---\n")
    with pytest.raises(ValueError, match="invalid YAML"):
        read_sim_spec(path)
