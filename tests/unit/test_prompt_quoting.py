"""The acceptance command in a prompt is shown exactly as hatchctl runs it: a shell that is given
the shown text runs the same argv (it used to be joined with spaces, which a shell splits and
interprets differently)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hatchctl.engine.prompt import render
from hatchctl.state.spec import TaskSpec
from tests.conftest import offline_deps

CASES = [
    ["sh", "-c", "! grep -q \"print(u'HEADER'\" a.py && python -m unittest -q"],
    ["python3", "-c", "import sys; print(sys.argv)", "two words", "$HOME", "`id`", ""],
    "python3 -m unittest tests.test_services",
]


@pytest.mark.parametrize("acceptance", CASES)
def test_a_shell_given_the_prompt_text_runs_the_same_argv(
    tmp_path: Path, acceptance: str | list[str]
) -> None:
    deps = offline_deps(tmp_path)
    task = deps.store.task("T")
    assert task is not None
    spec = TaskSpec(id="T", title="t", acceptance=acceptance)
    shown = render(
        "$acceptance",
        spec=spec,
        task=task,
        role="factory",
        iteration=1,
        attempt=1,
        worktree=tmp_path,
        summary_file=tmp_path / "s.json",
        stop_file=tmp_path / "s.stop",
        handover_file=None,
    )
    out = subprocess.run(
        ["bash", "-c", f"printf '%s\\0' {shown}"], capture_output=True, text=True, timeout=10
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\0")[:-1] == spec.acceptance_argv()
