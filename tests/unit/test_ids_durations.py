from __future__ import annotations

import pytest

from hatchctl.errors import InvalidIdError
from hatchctl.state.durations import format_duration, parse_duration
from hatchctl.state.ids import check_task_id, is_valid_task_id, run_name


@pytest.mark.parametrize("good", ["INV-002", "a", "A.b_c-9", "x" * 64])
def test_valid_ids(good: str) -> None:
    assert check_task_id(good) == good


@pytest.mark.parametrize(
    "bad",
    [
        "../x",
        "a b",
        "$(rm)",
        "",
        "-lead",
        ".hidden",
        "x" * 65,
        "a/b",
        "a..b",
        "a.lock",
        "a.",
        "é",
        7,
        None,
    ],
)
def test_invalid_ids_refused(bad: object) -> None:
    assert not is_valid_task_id(bad)
    with pytest.raises(InvalidIdError, match="invalid task id"):
        check_task_id(bad)


def test_run_name_validates_its_parts() -> None:
    assert run_name("T-1", "qa", 2, 3) == "T-1.qa.i2.a3"
    with pytest.raises(InvalidIdError):
        run_name("T-1", "boss", 1, 1)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("10m", 600),
        ("1h", 3600),
        ("1h30m", 5400),
        ("250ms", 0.25),
        ("0.5s", 0.5),
        (12, 12),
        ("7", 7),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "10 minutes", "m10", "-5s", -1, True, "1x", [1]])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(bad)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (5, 65, 3700, None)] == ["5s", "1m05s", "1h01m", "-"]
