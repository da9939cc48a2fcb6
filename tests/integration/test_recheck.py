"""A merge git calls clean can still lose a task's behaviour: after each merge the merged
task's acceptance and every completed task's acceptance run on the integration branch."""

from __future__ import annotations

from hatchctl.engine.jobs import INTEGRATION_DIR
from tests.conftest import git
from tests.integration.conftest import Projects, drain

CALC = "RATE = 2\n\n\ndef price(n):\n    return n * RATE\n"
TEST_A = (
    "import unittest\n\nfrom calc import price\n\n\nclass A(unittest.TestCase):\n"
    "    def test_price(self):\n        self.assertEqual(price(3), 6)\n"
)
TEST_B = (
    "import unittest\n\nimport calc\n\n\nclass B(unittest.TestCase):\n"
    "    def test_rate(self):\n        self.assertEqual(calc.RATE, 3)\n"
)


def _specs() -> dict[str, dict[str, object]]:
    return {
        # A: a feature whose behaviour (price(3) == 6) rests on RATE
        "A": {
            "priority": 90,
            "acceptance": "python3 -m unittest test_a",
            "sim": {"files": {"test_a.py": TEST_A}},
        },
        # B, after A: changes RATE in a line A never touched: no conflict, B's own check passes
        "B": {
            "priority": 10,
            "depends_on": ["A"],
            "acceptance": "python3 -m unittest test_b",
            "sim": {
                "files": {"calc.py": CALC.replace("RATE = 2", "RATE = 3"), "test_b.py": TEST_B}
            },
        },
    }


def test_a_clean_merge_that_breaks_a_merged_task_is_undone_and_retried_with_the_check(
    projects: Projects,
) -> None:
    p = projects.make(_specs(), config={"limits": {"max_strikes": 2}}, files={"calc.py": CALC})
    _, tasks, deps = drain(p)
    assert tasks["A"].state == "completed"
    b = tasks["B"]
    assert (b.state, b.failure_class, b.strikes) == ("failed", "regression", 2)
    strikes = [e.data for e in deps.store.events("B") if e.kind == "strike"]
    assert [s["reason"] for s in strikes] == ["behaviour_lost", "behaviour_lost"]
    assert "A's acceptance fails on the integration branch" in strikes[0]["detail"]
    # the second round was told why: the failing check is in its handover
    handover = p.paths.handover_file("B", "factory", 2)
    assert "A's acceptance fails" in handover.read_text()
    # the merge was undone: A's behaviour holds on the integration branch
    integ = p.paths.worktrees / INTEGRATION_DIR
    assert "RATE = 2" in (integ / "calc.py").read_text()
    assert git(integ, "status", "--porcelain") == ""
    assert "hatch: merge hatch/B" not in git(integ, "log", "--format=%s")


def test_without_the_recheck_the_same_merge_would_pass(projects: Projects) -> None:
    """The control: git and B's own acceptance call this merge fine."""
    p = projects.make(_specs(), config={"project": {"recheck": "own"}}, files={"calc.py": CALC})
    _, tasks, _ = drain(p)
    assert tasks["A"].state == tasks["B"].state == "completed"
    integ = p.paths.worktrees / INTEGRATION_DIR
    assert "RATE = 3" in (integ / "calc.py").read_text()
