"""A feature as a whole: its tasks in dependency order, what a hold applies to, whether it is
ready for its one review (and why not), and the combined diffstat."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from hatchctl.errors import HatchError
from hatchctl.state import featureops


@dataclass
class T:
    id: str
    state: str = "pending"
    phase: str | None = None
    held: int = 0
    depends_on: list[str] = field(default_factory=list)
    feature: str | None = "calc"


def ids(tasks: list[T]) -> list[str]:
    return [t.id for t in tasks]


def test_tasks_of_a_feature_in_dependency_order_and_an_unknown_one_named() -> None:
    tasks = [
        T("D", depends_on=["B", "C"]),
        T("C", depends_on=["A"]),
        T("B"),
        T("A", depends_on=["X"]),  # X is in another feature: no edge here
        T("X", feature="docs"),
        T("E", feature=None),
    ]
    assert ids(featureops.tasks_of(tasks, "calc")) == ["A", "B", "C", "D"]
    assert ids(featureops.tasks_of(tasks, "docs")) == ["X"]
    with pytest.raises(HatchError, match=r"no feature 'cal' \(features: calc, docs\)"):
        featureops.tasks_of(tasks, "cal")
    with pytest.raises(HatchError, match="no task has a feature"):
        featureops.tasks_of([T("A", feature=None)], "calc")
    cycle = [T("B", depends_on=["A"]), T("A", depends_on=["B"]), T("C", depends_on=["B"])]
    assert ids(featureops.dependency_order(cycle)) == ["A", "B", "C"]  # all kept, by id


def test_hold_targets_and_the_toggle() -> None:
    tasks = [
        T("A", state="completed"),
        T("B", state="active", phase="review", held=1),
        T("C", state="blocked"),
        T("D", state="failed", held=1),  # finished, but held: unhold takes it too
    ]
    assert ids(featureops.hold_targets(tasks, "hold")) == ["B", "C"]
    assert ids(featureops.hold_targets(tasks, "unhold")) == ["B", "C", "D"]
    assert featureops.toggle_verb(tasks) == "hold"  # C is not held
    tasks[2].held = 1
    assert featureops.toggle_verb(tasks) == "unhold"
    assert featureops.toggle_verb([T("A", state="completed")]) is None


def test_readiness_names_each_task_not_ready_and_why() -> None:
    tasks = featureops.tasks_of(
        [
            T("A", state="active", phase="review"),
            T("B", state="completed"),
            T("C", state="active", phase="merge"),  # approved already: done with its review
            T("D", depends_on=["A"]),  # cannot start before A is approved and merged
            T("E", state="active", phase="factory", held=1),
        ],
        "calc",
    )
    r = featureops.readiness(tasks)
    assert not r.ready and ids(r.waiting) == ["A"] and ids(r.done) == ["B", "C"]
    assert [(t.id, why) for t, why in r.not_ready] == [
        ("E", "active (phase factory), held"),  # in dependency order: D comes after A
        ("D", "pending, waits for A to be approved and merged"),
    ]
    line = featureops.not_ready_line("calc", r)
    assert "D is pending, waits for A" in line and "E is active (phase factory), held" in line

    ready = featureops.readiness(
        [T("A", state="completed"), T("B", state="active", phase="review")]
    )
    assert ready.ready and ids(ready.waiting) == ["B"]
    none_waiting = featureops.readiness([T("A", state="completed")])
    assert not none_waiting.ready and not none_waiting.not_ready
    assert (
        featureops.not_ready_line("calc", none_waiting)
        == "nothing in feature calc waits for review"
    )


def test_combined_diffstat_sums_each_path_over_the_tasks() -> None:
    lines = featureops.combine_numstat(
        ["3\t1\tsrc/a.py\n1\t0\tREADME.md\n", "2\t2\tsrc/a.py\n-\t-\tlogo.png\n", ""]
    )
    assert lines == [
        "README.md | +1 -0",
        "logo.png  | binary",
        "src/a.py  | +5 -3",
        "3 file(s) changed, 6 insertion(s), 3 deletion(s)",
    ]
    assert featureops.combine_numstat([]) == ["no changes"]
