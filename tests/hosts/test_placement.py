"""Placement (labels, then free slots, then load, then hatch.toml's order; lost hosts left out)
and the watcher's reading of what a host prints (untrusted: anything odd is ignored)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hatchctl.config import HostSection
from hatchctl.engine import placement
from hatchctl.engine.remotewatch import parse_line, parse_log_line
from hatchctl.hosts.base import Host
from hatchctl.hosts.local import LocalHost
from hatchctl.hosts.ssh import SshHost
from tests.integration.conftest import Projects, drain, projects

__all__ = ["projects"]  # the fixture, shared with the integration tests


def hosts(tmp_path: Path) -> list[Host]:
    def ssh(name: str, max_active: int, labels: list[str]) -> SshHost:
        section = HostSection(ssh=f"u@{name}", root="/srv/h", max_active=max_active, labels=labels)
        return SshHost(name, section, project_root=tmp_path, state_dir=tmp_path / ".hatch")

    return [LocalHost(tmp_path, max_active=1), ssh("a", 2, ["gpu"]), ssh("b", 3, ["gpu", "big"])]


def names(found: list[Host]) -> list[str]:
    return [h.name for h in found]


def test_labels_then_free_slots_then_load_then_order(tmp_path: Path) -> None:
    hs = hosts(tmp_path)
    choose = placement.choose
    assert names(placement.eligible(hs, ["gpu"])) == ["a", "b"]
    assert names(placement.eligible(hs, ["gpu", "big"])) == ["b"]
    assert names(placement.eligible(hs, [])) == ["local", "a", "b"]
    assert names(placement.eligible(hs, [], remote_ok=False)) == ["local"]
    assert choose(hs, [], {}).name == "b"  # type: ignore[union-attr]  # 3 free slots
    assert choose(hs, [], {"b": 2}).name == "a"  # type: ignore[union-attr]  # 2 free against 1

    # equal free slots: the lower load per core wins, once every host so tied has a sample
    def pick(live: dict[str, int], loads: dict[str, float], labels: tuple[str, ...] = ()) -> str:
        found = choose(hs, labels, live, loads=loads)
        assert found is not None
        return found.name

    loads = {"local": 0.9, "a": 3.0, "b": 1.5}
    assert pick({"b": 1}, loads, ("gpu",)) == "b"  # a and b 2 free each: b's load is lower
    assert pick({"b": 1}, {"a": 3.0}, ("gpu",)) == "a"  # b not sampled yet: hatch.toml's order
    assert pick({"a": 1, "b": 2}, loads) == "local"  # one free slot each
    assert pick({"a": 1, "b": 2}, {**loads, "b": 0.5}) == "b"
    assert pick({"b": 3}, {**loads, "local": 0.0}) == "a"  # free slots first: 2 against 1
    assert choose(hs, ["gpu"], {"a": 2, "b": 3}) is None  # full: the run waits
    assert choose(hs, ["gpu"], {}, down=["a", "b"]) is None  # lost hosts get nothing
    assert choose(hs, ["big"], {}, remote_ok=False) is None
    assert placement.capacity(hs) == 6
    assert placement.capacity(hs, down=["b"]) == 3


@pytest.mark.parametrize(
    "line",
    [
        "1764130000.5 T-1/factory.i1/T-1.factory.i1.a1.stop",
        "1764130000 T-1/qa.i12/x.stop",
    ],
)
def test_a_listing_line_is_a_stop_path_and_its_mtime(line: str) -> None:
    parsed = parse_line(line)
    assert parsed is not None and line.endswith(parsed[0]) and line.startswith(parsed[1])


@pytest.mark.parametrize(
    "line",
    [
        "",
        ".",
        "1764130000.5 ../T-1/factory.i1/a.stop",
        "1764130000.5 /etc/factory.i1/a.stop",
        "1764130000.5 T-1/factory.i1/../../a.stop",
        "1764130000.5 T-1/planner.i1/a.stop",
        "1764130000.5 T-1/factory.i1/a.summary",
        "1764130000.5 T-1/factory.i1/sub/a.stop",
        "nan T-1/factory.i1/a.stop",
        "1764130000.5 T-1/factory.i1/a b.stop",
        "1764130000.5 T-1/factory.i1/a.stop\x1b[2J",
    ],
)
def test_anything_else_a_host_prints_is_ignored(line: str) -> None:
    assert parse_line(line) is None


def test_a_log_listing_line_is_a_log_path_and_its_size() -> None:
    assert parse_log_line("L 1234 factory/T-1.factory.i1.a1.log") == (
        "factory/T-1.factory.i1.a1.log",
        1234,
    )
    for bad in ("L -1 factory/a.log", "L 1 ../a.log", "L 1 factory/../a.log", "L 1 x/a.log"):
        assert parse_log_line(bad) is None, bad
    assert parse_line("L 1 factory/a.log") is None


def test_a_task_no_host_can_take_fails_at_once_saying_why(projects: Projects) -> None:
    project = projects.make({"T-1": {"host_labels": ["gpu"]}})  # no [hosts.NAME] has gpu
    code, tasks, deps = drain(project, time_limit=30)
    assert code == 1 and tasks["T-1"].state == "failed"
    assert "no host can run its factory: host_labels ['gpu']" in (tasks["T-1"].last_error or "")
    assert deps.store.runs("T-1") == []
