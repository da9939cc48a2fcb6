"""The demo's pace: the simulated agent shows its work at a watchable speed when asked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hatchctl.config import load_config
from hatchctl.demo import EXPECTED, NARRATION, narration, write_demo
from hatchctl.errors import HatchError
from hatchctl.runtime.simagent import pace_from


def test_pace_is_a_bounded_factor() -> None:
    assert pace_from("1") == 1.0
    assert pace_from("0.5") == 0.5
    for bad in ("", "x", "-1", "nan", "inf", "1e9", "0"):
        assert pace_from(bad) == 0.0


def test_write_demo_passes_the_pace_to_both_agents_and_refuses_a_wild_one(tmp_path: Path) -> None:
    write_demo(tmp_path / "d", name="pace-test", pace=1.5)
    config = load_config(tmp_path / "d" / "hatch.toml")
    assert config.agents.factory.env["HATCH_SIM_PACE"] == "1.5"
    assert config.agents.qa.env["HATCH_SIM_PACE"] == "1.5"
    with pytest.raises(HatchError, match="--pace"):
        write_demo(tmp_path / "e", name="pace-test", pace=50)


def test_narration_names_every_task_and_its_expected_end() -> None:
    assert set(NARRATION) == set(EXPECTED)
    lines = narration()
    assert len(lines) == len(EXPECTED)
    assert any("CALC-005" in x and "lie about its commits" in x and "failed" in x for x in lines)


def test_a_paced_sim_agent_prints_its_steps(tmp_path: Path) -> None:
    spec = tmp_path / "T-1.md"
    spec.write_text("---\nid: T-1\ntitle: t\nsim:\n  factory: [mute]\n---\nDo it.\n")
    env = {
        **os.environ,
        "HATCH_TASK_ID": "T-1",
        "HATCH_ROLE": "factory",
        "HATCH_ITERATION": "1",
        "HATCH_ATTEMPT": "1",
        "HATCH_WORKTREE": str(tmp_path),
        "HATCH_SUMMARY_FILE": str(tmp_path / "summary.json"),
        "HATCH_SPEC_FILE": str(spec),
        "HATCH_SIM_PACE": "0.1",
    }
    env.pop("HATCH_STOP_FILE", None)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, timeout=30)
    out = subprocess.run(
        [sys.executable, "-m", "hatchctl", "sim-agent"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    for step in ("reading the spec", "planning the change", "editing files", "running the tests"):
        assert step in out.stdout
