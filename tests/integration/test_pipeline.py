"""The factory -> QA pipeline end to end: real tmux, real git, the real sim agent."""

from __future__ import annotations

import json
from pathlib import Path

from hatchctl.engine.commands import Commands
from hatchctl.engine.jobs import INTEGRATION_DIR
from tests.conftest import git
from tests.integration.conftest import Projects, drain, kinds

ADD = {
    "calc.py": "def add(a, b):\n    return a + b\n",
    "test_calc.py": "import unittest\nfrom calc import add\n\n\nclass T(unittest.TestCase):\n"
    "    def test_add(self):\n        self.assertEqual(add(1, 2), 3)\n",
}
ACCEPT = "python3 -m unittest test_calc"


def test_happy_path_factory_qa_merge(projects: Projects) -> None:
    p = projects.make({"A": {"files": list(ADD), "acceptance": ACCEPT, "sim": {"files": ADD}}})
    code, tasks, deps = drain(p)
    assert code == 0
    a = tasks["A"]
    assert (a.state, a.iteration, a.strikes, a.restarts) == ("completed", 1, 0, 0)
    k = kinds(deps, "A")
    for kind in (
        "task_started",
        "worktree_ready",
        "handover",
        "verified",
        "merged",
        "task_completed",
    ):
        assert kind in k, kind
    runs = deps.store.runs("A")
    assert [(r.role, r.state) for r in runs] == [("factory", "succeeded"), ("qa", "succeeded")]
    integ = p.paths.worktrees / INTEGRATION_DIR
    assert (integ / "calc.py").read_text() == ADD["calc.py"]
    assert git(p.root, "merge-base", "--is-ancestor", "hatch/A", "hatch/integration") == ""
    assert not p.paths.worktree("A").exists()  # removed after the merge
    assert (p.root / "specs" / "A.md").exists()  # the planning dir survived the unmount
    snapshot = json.loads(p.paths.snapshot.read_text())
    assert snapshot["counts"]["completed"] == 1
    stop = json.loads((p.root / runs[0].stop_path).read_text())
    assert stop["reason"] == "exit" and stop["exit_code"] == 0
    log = (p.root / runs[0].log_path).read_bytes()
    assert b"sim-agent" in log and b"\x1b[" in log  # raw terminal bytes kept on disk


def test_false_claim_no_summary_and_bad_summary_are_each_a_named_failure(
    projects: Projects,
) -> None:
    """Three agents' failures, three tasks of one drain (one supervisor, not three): a false
    claim is an unverified claim naming the commit (F); an exit without a summary is
    no_summary (N); a bad summary is reported with the reason (B)."""
    p = projects.make(
        {
            "F": {"acceptance": ACCEPT, "sim": {"files": ADD, "factory": ["false_claims"]}},
            "N": {"sim": {"files": {"n.txt": "n\n"}, "factory": ["no_summary"]}},
            "B": {"sim": {"files": {"b.txt": "b\n"}, "factory": ["bad_summary"]}},
        },
        {"limits": {"max_strikes": 1}},
    )
    _, tasks, deps = drain(p)
    f = tasks["F"]
    assert f.state == "failed" and f.failure_class == "agent"
    summary = json.loads(p.paths.summary_file("F", "factory", 1).read_text())
    phantom = summary["commits"][-1]
    assert f"claimed commit {phantom} does not exist" in (f.last_error or "")
    assert f.errors[0]["reason"] == "unverified_claim"
    assert [r.role for r in deps.store.runs("F")] == ["factory"]  # QA never ran
    assert p.paths.worktree("F").exists()  # a failed task's worktree is kept for inspection

    assert tasks["N"].state == "failed" and tasks["N"].errors[0]["reason"] == "no_summary"
    assert [r.state for r in deps.store.runs("N")] == ["failed"]

    b = tasks["B"]
    assert b.state == "failed" and b.errors[0]["reason"] == "bad_summary"
    assert "is invalid" in b.errors[0]["detail"]


def test_qa_rejection_starts_next_iteration_with_findings(projects: Projects) -> None:
    p = projects.make({"A": {"acceptance": ACCEPT, "sim": {"files": ADD, "qa": ["reject", "ok"]}}})
    code, tasks, deps = drain(p)
    a = tasks["A"]
    assert code == 0 and (a.state, a.iteration, a.strikes) == ("completed", 2, 1)
    assert a.errors[0]["reason"] == "qa_rejected"
    handover = json.loads(p.paths.handover_file("A", "factory", 2).read_text())
    assert handover["qa_findings"] and "simulated finding" in handover["qa_findings"][0]
    prompt = p.paths.prompt_file("A", "factory", 2, 1).read_text()
    assert "simulated finding" in prompt  # the findings reach the next factory
    roles = [(r.role, r.iteration) for r in deps.store.runs("A")]
    assert roles == [("factory", 1), ("qa", 1), ("factory", 2), ("qa", 2)]


def test_three_strikes_fail_block_dependent_then_retry(projects: Projects) -> None:
    failing = {
        # fails on the broken file, passes on the good one: as ACCEPT does, without starting
        # an interpreter for each of its ~10 runs (sim agent, verification, recheck)
        "acceptance": "grep -q 'return a + b' calc.py",
        "sim": {
            "files": ADD,
            "broken_files": {"calc.py": "def add(a, b):\n    return 0\n"},
            "factory": ["fail_tests"],
        },
    }
    p = projects.make(
        {
            "A": failing,
            "B": {"depends_on": ["A"], "sim": {"files": {"b.txt": "b\n"}}},
            "C": {"depends_on": ["B"]},
        }
    )
    code, tasks, deps = drain(p)
    assert code == 1
    a = tasks["A"]
    assert (a.state, a.strikes, a.failure_class) == ("failed", 3, "code")
    assert [e["iteration"] for e in a.errors] == [1, 2, 3]  # every previous error is kept
    assert tasks["B"].state == "blocked" and tasks["C"].state == "blocked"
    # fix the spec, retry: A completes and its dependents are unblocked and run
    (p.root / "specs" / "A.md").write_text(
        (p.root / "specs" / "A.md").read_text().replace("fail_tests", "ok")
    )
    deps.store.close()
    from tests.integration.conftest import build_deps

    deps = build_deps(p)
    from hatchctl.state.sync import sync_specs

    sync_specs(deps.store, p.load_specs().specs)
    assert "pending again" in Commands(deps, lambda: None, lambda: None).retry("A")
    code, tasks, deps = drain(p)
    assert code == 0, {t.id: (t.state, t.last_error) for t in tasks.values()}
    assert tasks["A"].strikes == 0 and len(tasks["A"].errors) == 4  # 3 errors + the retry marker


def test_fast_path_and_red_violation(projects: Projects) -> None:
    passing = "true"  # passes at once (an interpreter's start would prove nothing more)
    p = projects.make(
        {"DONE": {"acceptance": passing}, "RED": {"acceptance": passing, "tdd": True}}
    )
    _, tasks, deps = drain(p)
    assert tasks["DONE"].state == "completed"
    assert deps.store.runs("DONE") == []  # no agent was started
    red = tasks["RED"]
    assert (red.state, red.failure_class) == ("failed", "red_violation")
    assert red.strikes == 1 and "already passes" in (red.last_error or "")
    assert deps.store.runs("RED") == []


def test_tdd_chain_runs_strictly_in_order(projects: Projects) -> None:
    def cycle(n: int, fn: str, deps: list[str]) -> dict[str, object]:
        test = (
            "import unittest\nimport stats\n\n\nclass T(unittest.TestCase):\n    def test(self):\n"
        )
        test += "".join(f"        self.assertTrue(callable(stats.f{i}))\n" for i in range(1, n + 1))
        return {
            "tdd": True,
            "depends_on": deps,
            "files": ["stats.py", f"test_c{n}.py"],
            # red on the base (f{n} not there yet), green once the cycle added it: the order
            # is the claim here, not Python (a grep, not an interpreter per check: ~15 checks)
            "acceptance": f"grep -q 'def f{n}()' stats.py",
            "sim": {
                "files": {f"test_c{n}.py": test},
                "append": {"stats.py": f"def f{n}():\n    return {n}\n"},
            },
        }

    p = projects.make(
        {"C1": cycle(1, "f1", []), "C2": cycle(2, "f2", ["C1"]), "C3": cycle(3, "f3", ["C2"])}
    )
    code, tasks, deps = drain(p)
    assert code == 0, {t.id: t.last_error for t in tasks.values()}
    for prev, nxt in (("C1", "C2"), ("C2", "C3")):
        # the next cycle's branch contains the previous cycle's commits ...
        assert git(p.root, "merge-base", "--is-ancestor", f"hatch/{prev}", f"hatch/{nxt}") == ""
        # ... and it started only after the previous one completed
        done = next(e.id for e in deps.store.events(prev) if e.kind == "task_completed")
        started = next(e.id for e in deps.store.events(nxt) if e.kind == "task_started")
        assert started > done
    stats = (p.paths.worktrees / INTEGRATION_DIR / "stats.py").read_text()
    assert stats.index("def f1") < stats.index("def f2") < stats.index("def f3")


def test_crash_is_restarted_keeping_partial_work(projects: Projects) -> None:
    p = projects.make(
        {"A": {"acceptance": ACCEPT, "sim": {"files": ADD, "factory": [["crash", "ok"]]}}}
    )
    code, tasks, deps = drain(p)
    a = tasks["A"]
    assert code == 0 and (a.state, a.restarts, a.strikes) == ("completed", 1, 0)
    runs = deps.store.runs("A")
    assert [(r.role, r.attempt, r.state) for r in runs][:2] == [
        ("factory", 1, "crashed"),
        ("factory", 2, "succeeded"),
    ]
    assert runs[0].reason == "exit_1"
    resume = p.paths.prompt_file("A", "factory", 1, 2).read_text()
    assert "A previous attempt (1) ended" in resume and "simulated crash" in resume
    assert "restart_scheduled" in kinds(deps, "A")


def test_merge_conflict_fails_at_once(projects: Projects) -> None:
    p = projects.make(
        {
            "A": {"priority": 90, "sim": {"files": {"same.txt": "from A\n"}}},
            "B": {
                "priority": 10,
                "sim": {
                    "files": {"same.txt": "from B\n"},
                    "factory": ["slow"],
                    "slow_seconds": 1.0,
                },
            },
        }
    )
    _, tasks, _ = drain(p)
    assert tasks["A"].state == "completed"
    b = tasks["B"]
    assert (b.state, b.failure_class, b.strikes) == ("failed", "merge_conflict", 1)
    integ = p.paths.worktrees / INTEGRATION_DIR
    assert (
        git(integ, "status", "--porcelain") == "" and (integ / "same.txt").read_text() == "from A\n"
    )


def test_declared_files_are_never_written_by_two_tasks_at_once(projects: Projects) -> None:
    slow = {
        "files": ["shared.txt"],
        "sim": {"append": {"shared.txt": "x\n"}, "factory": ["slow"], "slow_seconds": 0.5},
    }
    p = projects.make(
        {
            "A": {**slow, "priority": 2},
            "B": {**slow, "priority": 1, "sim": {"append": {"shared.txt": "y\n"}}},
        }
    )
    _, tasks, deps = drain(p)
    assert tasks["A"].state == tasks["B"].state == "completed"
    a_done = next(e.id for e in deps.store.events("A") if e.kind == "task_completed")
    b_start = next(e.id for e in deps.store.events("B") if e.kind == "task_started")
    assert b_start > a_done  # B waited for A's lock on shared.txt
    assert Path(p.paths.worktrees / INTEGRATION_DIR / "shared.txt").read_text() == "x\ny\n"
