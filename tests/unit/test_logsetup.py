from __future__ import annotations

import json
from pathlib import Path

import pytest

from hatchctl import logsetup


def test_json_lines_rotation_and_silence_on_terminal(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "logs" / "hatchctl.jsonl"
    logsetup.configure(path, max_bytes=10_000, backups=2)
    log = logsetup.get(component="test")
    for i in range(400):
        log.info("run_launched", task_id="T-1", run_id=i, padding="x" * 40)
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    assert (
        first["event"] == "run_launched"
        and first["task_id"] == "T-1"
        and first["component"] == "test"
    )
    assert first["level"] == "info" and "timestamp" in first
    assert path.stat().st_size <= 10_000
    rotated = sorted(p.name for p in path.parent.iterdir())
    assert rotated == ["hatchctl.jsonl", "hatchctl.jsonl.1", "hatchctl.jsonl.2"]
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    logsetup.configure(None)
    log.info("discarded")
    out, err = capfd.readouterr()
    assert out == "" and err == ""
