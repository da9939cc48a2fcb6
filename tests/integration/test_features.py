"""`feature:` groups tasks; status and status --json roll each feature up."""

from __future__ import annotations

import json

from tests.integration.conftest import Projects, drain, hatchctl_here


def test_features_roll_up_in_status(projects: Projects) -> None:
    p = projects.make(
        {
            "A": {"feature": "calc", "sim": {"files": {"a.txt": "a\n"}}},
            "B": {"feature": "calc", "sim": {"factory": ["crash"]}},
            "C": {"feature": "calc", "depends_on": ["B"]},
            "D": {"feature": "docs", "sim": {"files": {"d.txt": "d\n"}}},
            "E": {"sim": {"files": {"e.txt": "e\n"}}},  # in no feature
        },
        config={"limits": {"max_strikes": 1, "restart": {"max_restarts": 0}}},
    )
    _, _, deps = drain(p)
    deps.store.close()
    # (read-only queries: run in this process, tests.integration.conftest.hatchctl_here)
    doc = json.loads(hatchctl_here("-C", str(p.root), "status", "--json").stdout)
    calc, docs = doc["features"]["calc"], doc["features"]["docs"]
    assert (calc["total"], calc["completed"], calc["failed"], calc["blocked"]) == (3, 1, 1, 1)
    assert calc["tasks"] == ["A", "B", "C"] and calc["metrics"]["wall_seconds"] > 0
    assert (docs["total"], docs["completed"]) == (1, 1)
    assert set(doc["features"]) == {"calc", "docs"}
    out = hatchctl_here("-C", str(p.root), "status").stdout
    assert "feature calc  1/3 done  1 failed  1 blocked" in out
    bad = p.root / "specs" / "X.md"
    bad.write_text("---\nid: X\ntitle: x\nfeature: '../etc'\n---\nx\n")
    out = hatchctl_here("-C", str(p.root), "validate")
    assert out.returncode != 0 and "X.md:4: feature" in out.stdout + out.stderr
