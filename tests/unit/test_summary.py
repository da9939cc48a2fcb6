from __future__ import annotations

import json
from pathlib import Path

import pytest

from hatchctl.errors import SummaryError
from hatchctl.state.summary import load_stop, load_summary

GOOD = {
    "schema_version": 1,
    "task_id": "T-1",
    "role": "factory",
    "iteration": 2,
    "status": "completed",
    "commits": ["abc1234"],
    "implementation_files": ["a.py"],
    "test_results": {"passed": 3, "failed": 0},
    "loc_analysis": {"actual": 10, "cap": 200},
    "handover_notes": "done",
    "custom_field": {"kept": True},
}


def write(tmp: Path, data: object) -> Path:
    path = tmp / "s.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_valid_summary_keeps_unknown_fields(tmp_path: Path) -> None:
    s = load_summary(write(tmp_path, GOOD), task_id="T-1", role="factory", iteration=2)
    assert s.commits == ["abc1234"] and s.model_extra == {"custom_field": {"kept": True}}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "is not a JSON object"),
        (
            {**GOOD, "status": "approved"},
            "status 'approved' is not one of completed|partial|failed",
        ),
        ({**GOOD, "iteration": 0}, "iteration"),
        ({k: v for k, v in GOOD.items() if k != "task_id"}, "task_id"),
        (
            {**GOOD, "task_id": "OTHER"},
            "is for OTHER/factory/iteration 2, expected T-1/factory/iteration 2",
        ),
        ({**GOOD, "test_results": {"passed": -1, "failed": 0}}, "test_results.passed"),
    ],
)
def test_broken_summaries_are_one_line_errors(tmp_path: Path, data: object, message: str) -> None:
    with pytest.raises(SummaryError) as info:
        load_summary(write(tmp_path, data), task_id="T-1", role="factory", iteration=2)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_missing_summary(tmp_path: Path) -> None:
    with pytest.raises(SummaryError, match="does not exist"):
        load_summary(tmp_path / "nope.json", task_id="T-1", role="qa", iteration=1)


def test_stop_files(tmp_path: Path) -> None:
    stop = load_stop(
        write(
            tmp_path,
            {
                "task_id": "T",
                "role": "qa",
                "iteration": 1,
                "attempt": 2,
                "reason": "hook",
                "exit_code": None,
                "session_id": "s1",
            },
        )
    )
    assert stop.reason == "hook" and stop.model_extra == {"session_id": "s1"}
    with pytest.raises(SummaryError, match="reason"):
        load_stop(
            write(
                tmp_path,
                {"task_id": "T", "role": "qa", "iteration": 1, "attempt": 2, "reason": "bye"},
            )
        )
    with pytest.raises(SummaryError, match="not valid JSON"):
        load_stop(write(tmp_path, ""))


@pytest.mark.parametrize("version", [2, 999, 0])
def test_an_unknown_schema_version_is_refused(tmp_path: Path, version: int) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({**GOOD, "schema_version": version}))
    with pytest.raises(SummaryError, match=f"schema_version {version} is not supported"):
        load_summary(path, task_id=GOOD["task_id"], role=GOOD["role"], iteration=GOOD["iteration"])
