"""`hatchctl plan`: the planner agent (the simulated one, then a hostile script) writes specs in a
directory of its own; they are checked with the project's specs and held until approved. A plan
with a cycle is refused with the cycle spelled out; nothing enters the specs directory before
`--approve`; the planner cannot write anywhere else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import hatchctl
from tests.integration.conftest import Projects, hatchctl_here

PLANNER = {"agents": {"planner": {"command": ["hatchctl", "sim-agent"], "sandbox": "auto"}}}


def feature(path: Path, name: str, specs: dict[str, dict[str, object]]) -> Path:
    """A feature description whose sim block has the simulated planner write ``specs``."""
    lines = ["---", f"feature: {name}", f"title: Feature {name}", "sim:", "  files:"]
    for tid, front in specs.items():
        body = yaml.safe_dump({"id": tid, "title": f"Task {tid}", **front}, sort_keys=False)
        text = f"---\n{body}---\nDo {tid}.\n"
        lines += [f"    {tid}.md: |"] + [f"      {line}" for line in text.splitlines()]
    path.write_text("\n".join([*lines, "---", f"Build {name}.", ""]))
    return path


def specs_in(root: Path) -> set[str]:
    return {p.stem for p in (root / "specs").glob("*.md")}


def test_plan_refuses_a_cycle_then_holds_a_good_plan_until_approved(
    projects: Projects, tmp_path: Path
) -> None:
    p = projects.make({"A": {}}, config=PLANNER)
    root = p.root
    cyclic = feature(
        tmp_path / "loop.md",
        "loop",
        {
            "L-1": {"depends_on": ["L-3"]},
            "L-2": {"depends_on": ["L-1"]},
            "L-3": {"depends_on": ["L-2"]},
        },
    )
    out = hatchctl("-C", str(root), "plan", str(cyclic))
    assert out.returncode == 1, out.stderr
    assert "dependency cycle: L-1 -> L-3 -> L-2 -> L-1" in out.stdout, out.stdout
    assert specs_in(root) == {"A"}  # nothing entered the queue
    listed = hatchctl_here("-C", str(root), "plan", "--list")  # (read-only: run in this process)
    assert "loop  refused" in listed.stdout
    out = hatchctl("-C", str(root), "plan", "--approve", "loop")
    assert out.returncode != 0 and "not proposed" in out.stderr
    assert hatchctl("-C", str(root), "plan", "--reject", "loop").returncode == 0
    assert "no plans" in hatchctl_here("-C", str(root), "plan", "--list").stdout

    good = feature(
        tmp_path / "search.md",
        "search",
        {"S-1": {"depends_on": ["A"]}, "S-2": {"depends_on": ["S-1"]}},
    )
    out = hatchctl("-C", str(root), "plan", str(good))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 task(s), held for your approval" in out.stdout
    assert "S-2  Task S-2  after S-1" in out.stdout
    assert specs_in(root) == {"A"}  # held: not in the queue yet
    status = hatchctl_here("-C", str(root), "status").stdout
    assert "plan search: proposed, 2 spec(s) (hatchctl plan --approve search)" in status
    again = hatchctl("-C", str(root), "plan", str(good))
    assert again.returncode != 0 and "exists (proposed)" in again.stderr

    out = hatchctl("-C", str(root), "plan", "--approve", "search")
    assert out.returncode == 0, out.stderr
    assert specs_in(root) == {"A", "S-1", "S-2"}
    written = (root / "specs" / "S-1.md").read_text()
    assert "feature: search" in written  # the plan's feature, added where the planner left it out
    assert (root / "specs" / "S-1.md").stat().st_mode & 0o777 == 0o600
    assert hatchctl_here("-C", str(root), "validate").returncode == 0
    status = json.loads(hatchctl_here("-C", str(root), "status", "--json").stdout)
    assert {t["id"] for t in status["tasks"]} >= {"A", "S-1", "S-2"}
    kinds = hatchctl_here("-C", str(root), "events", "--json").stdout
    for kind in ("plan_refused", "plan_rejected", "plan_proposed", "plan_approved"):
        assert kind in kinds


@pytest.mark.parametrize("sandbox", ["auto", "none"])
def test_a_hostile_planner_writes_nowhere_but_its_own_directory(
    projects: Projects, tmp_path: Path, sandbox: str
) -> None:
    """Under the sandbox it cannot write the specs or .hatch/; without it (the user's choice),
    a spec it slips into the queue is caught and the plan refused."""
    script = tmp_path / "evil-planner.sh"
    script.write_text(
        "#!/bin/bash\n"
        'root="$1"\n'
        'echo "---\nid: EVIL\ntitle: evil\n---\nx" > "$root/specs/EVIL.md" 2>/dev/null\n'
        'echo owned > "$root/.hatch/owned" 2>/dev/null\n'
        "ln -s /etc/passwd LINK.md\n"
        "mkfifo FIFO.md\n"
        'printf -- "---\\nid: OK-1\\ntitle: ok\\n---\\nDo it.\\n" > OK-1.md\n'
        "exit 0\n"
    )
    script.chmod(0o755)
    p = projects.make(
        {"A": {}},
        config={"agents": {"planner": {"command": ["bash", str(script)], "sandbox": sandbox}}},
    )
    root = p.root
    # the planner is given the project root as its first argument: it knows where to aim
    toml = (
        (root / "hatch.toml")
        .read_text()
        .replace(f'command = ["bash", "{script}"]', f'command = ["bash", "{script}", "{root}"]')
    )
    (root / "hatch.toml").write_text(toml)
    desc = tmp_path / "x.md"
    desc.write_text("Plan something.\n")
    out = hatchctl("-C", str(root), "plan", str(desc), timeout=60)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "LINK.md: cannot read: LINK.md is a symbolic link (not followed)" in out.stdout
    assert "FIFO.md: cannot read: FIFO.md is not a regular file" in out.stdout
    if sandbox == "none":
        assert "the specs directory changed while the planner ran: EVIL.md (added)" in out.stdout
        return
    assert specs_in(root) == {"A"}
    assert not (root / ".hatch" / "owned").exists()
