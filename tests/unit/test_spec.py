from __future__ import annotations

from pathlib import Path

from hatchctl.state.spec import find_cycles, load_specs, parse_spec
from tests.conftest import write_spec


def test_parse_full_spec(tmp_path: Path) -> None:
    text = (
        "---\nid: INV-002\ntitle: Inventory\ndepends_on: [INV-001]\npriority: 70\n"
        "files: [src/a.py]\nacceptance: python3 -m unittest tests.test_a\ntdd: true\n"
        "loc_cap: 200\ntimeout: 30m\nsim: {factory: [ok, [crash, ok]], qa: [reject, ok]}\n---\nBuild it.\n"
    )
    result = parse_spec(text, tmp_path / "INV-002.md")
    assert result.problems == []
    spec = result.spec
    assert spec is not None
    assert spec.timeout == 1800
    assert spec.acceptance_argv() == ["python3", "-m", "unittest", "tests.test_a"]
    assert spec.body == "Build it."
    assert spec.sim is not None
    assert spec.sim.behaviour("factory", 2, 1) == "crash"
    assert spec.sim.behaviour("factory", 2, 5) == "ok"
    assert spec.sim.behaviour("factory", 9, 1) == "crash"  # the last iteration entry repeats
    assert spec.sim.behaviour("qa", 1, 1) == "reject"


def test_validate_reports_every_problem_with_file_and_line(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    write_spec(specs, "A", "depends_on: [B]\n")
    write_spec(specs, "B", "depends_on: [C]\n")
    write_spec(specs, "C", "depends_on: [A]\n")
    write_spec(specs, "D", "depends_on: [NOPE]\n")
    (specs / "dup.md").write_text("---\nid: D\ntitle: again\n---\n")
    (specs / "badid.md").write_text("---\ntitle: x\nid: ../x\n---\n")
    (specs / "yaml.md").write_text("---\nid: Y\ntitle: [unclosed\n---\n")
    (specs / "keys.md").write_text("---\nid: K\ntitle: k\npriorty: 3\n---\n")
    (specs / "missing.md").write_text("---\nid: M\n---\n")
    result = load_specs(specs)
    text = "\n".join(result.problems)
    assert f"{specs}/A.md:4: dependency cycle: A -> B -> C -> A" in text
    assert f"{specs}/D.md:4: unknown dependency 'NOPE'" in text
    assert f"{specs}/dup.md:2: duplicate id 'D'" in text
    assert f"{specs}/badid.md:3: id: invalid id '../x'" in text
    assert f"{specs}/yaml.md:" in text and "invalid YAML" in text
    assert f"{specs}/keys.md:4: unknown key 'priorty'" in text
    assert f"{specs}/missing.md:1: missing required key 'title'" in text
    assert len(result.problems) == 7


def test_bad_ids_in_dependencies_and_files(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    write_spec(specs, "X", "depends_on: ['$(rm)']\nfiles: [../../etc/passwd]\n")
    problems = load_specs(specs).problems
    assert any("invalid dependency id '$(rm)'" in p for p in problems)
    assert any("must be a relative path" in p for p in problems)


def test_unknown_sim_behaviour_is_a_problem(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    write_spec(specs, "S", "sim: {factory: [explode]}\n")
    problems = load_specs(specs).problems
    assert len(problems) == 1 and "sim.factory.0" in problems[0] and "S.md:4:" in problems[0]


def test_find_cycles_reports_each_once() -> None:
    cycles = find_cycles({"A": ["B"], "B": ["A"], "C": ["C2"], "C2": ["C"], "D": []})
    assert sorted(" -> ".join(c) for c in cycles) == ["A -> B -> A", "C -> C2 -> C"]
