"""Property-based tests: any input to the spec, config, summary and stop parsers (and durations)
gives a value or one clear error line; never an exception escaping, never a hang (a hang trips
the suite's per-test time limit)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hatchctl.config import parse_config
from hatchctl.errors import ConfigError, SummaryError
from hatchctl.state.durations import MAX_SECONDS, parse_duration
from hatchctl.state.spec import parse_spec
from hatchctl.state.summary import load_stop, load_summary

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["30s", "1h", "nan", "inf", "-1s", "1e400", "9" * 400, "10m5s", ""]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
SPEC_KEYS = ["id", "title", "depends_on", "priority", "files", "acceptance", "tdd", "loc_cap",
             "timeout", "sim", "extra"]  # fmt: skip


def one_line(message: str) -> None:
    assert message and "\n" not in message and "Traceback" not in message


@FUZZ
@given(st.text(max_size=400))
def test_any_text_is_a_spec_or_problems(text: str) -> None:
    result = parse_spec(text, Path("specs/x.md"))
    assert (result.spec is None) == bool(result.problems)
    for problem in result.problems:
        one_line(problem)


@FUZZ
@given(st.dictionaries(st.sampled_from(SPEC_KEYS), values, max_size=8), st.text(max_size=200))
def test_any_front_matter_is_a_spec_or_problems(front: dict[str, object], body: str) -> None:
    try:
        dumped = yaml.safe_dump(front, allow_unicode=True)
    except (yaml.YAMLError, ValueError):
        return
    result = parse_spec(f"---\n{dumped}---\n{body}\n", Path("specs/x.md"))
    for problem in result.problems:
        one_line(problem)
    if result.spec is not None:
        assert result.spec.timeout is None or 0 <= result.spec.timeout <= MAX_SECONDS
        assert -1_000_000 <= result.spec.priority <= 1_000_000


def toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if math.isinf(v) else repr(v))
    if isinstance(v, int):
        return str(v)
    return json.dumps(str(v))


LIMIT_KEYS = ["tick", "max_active", "run_timeout", "idle_timeout", "kill_grace", "max_strikes",
              "test_timeout", "submit_delay", "delivery_tries", "bogus"]  # fmt: skip


@FUZZ
@given(st.dictionaries(st.sampled_from(LIMIT_KEYS), scalars.filter(lambda v: v is not None)))
def test_any_limits_are_a_config_or_one_error_line(limits: dict[str, object]) -> None:
    text = "[limits]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in limits.items())
    try:
        cfg = parse_config(text, Path("hatch.toml"))
    except ConfigError as exc:
        one_line(str(exc))
        return
    lim = cfg.limits
    for name in ("tick", "run_timeout", "idle_timeout", "kill_grace", "test_timeout"):
        seconds = getattr(lim, name)
        assert math.isfinite(seconds) and 0 <= seconds <= MAX_SECONDS


@FUZZ
@given(st.text(max_size=300))
def test_any_text_is_a_config_or_one_error_line(text: str) -> None:
    try:
        parse_config(text, Path("hatch.toml"))
    except ConfigError as exc:
        one_line(str(exc))


@FUZZ
@given(st.one_of(values, st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_any_summary_or_stop_is_a_value_or_one_error_line(tmp_path: Path, doc: object) -> None:
    path = tmp_path / "summary.json"
    raw = doc if isinstance(doc, str) else json.dumps(doc, default=str)
    path.write_text(raw, encoding="utf-8", errors="surrogatepass")
    try:
        load_summary(path, task_id="T", role="factory", iteration=1)
    except SummaryError as exc:
        one_line(str(exc))
    try:
        load_stop(path)
    except SummaryError as exc:
        one_line(str(exc))


@FUZZ
@given(st.integers(min_value=1, max_value=200_000), st.sampled_from(["[", '{"a":']))
def test_deeply_nested_json_is_one_error_line(tmp_path: Path, depth: int, opener: str) -> None:
    path = tmp_path / "deep.json"
    path.write_text(opener * depth)
    for load in (
        lambda: load_stop(path),
        lambda: load_summary(path, task_id="T", role="qa", iteration=1),
    ):
        try:
            load()
        except SummaryError as exc:
            one_line(str(exc))


@FUZZ
@given(values)
def test_any_duration_is_finite_and_bounded_or_an_error(value: object) -> None:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        one_line(str(exc))
        return
    assert math.isfinite(seconds) and 0 <= seconds <= MAX_SECONDS
