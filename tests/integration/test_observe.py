"""Metrics and needs-input detection through the same hooks Claude Code runs (the sim agent runs
the hooks of .claude/settings.local.json like Claude Code does, and keeps a transcript in the
same JSONL shape)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.conftest import Projects, drain, hatchctl_here, kinds, notify_recorder

ADD = {"calc.py": "def add(a, b):\n    return a + b\n"}
HOOK = {"agents": {"factory": {"stop": "claude-hook"}, "qa": {"stop": "claude-hook"}}}


def test_metrics_from_the_transcript_are_stored_summed_and_shown(projects: Projects) -> None:
    p = projects.make({"A": {"files": list(ADD), "sim": {"files": ADD}}}, HOOK)
    code, tasks, deps = drain(p)
    assert code == 0 and tasks["A"].state == "completed"
    runs = deps.store.runs("A")
    assert {r.role for r in runs} == {"factory", "qa"}
    for r in runs:
        m = r.metrics
        assert r.transcript_path and r.transcript_path.endswith(".jsonl")
        assert m["source"] == "claude-transcript" and m["model"] == "claude-sonnet-sim"
        assert m["turns"] >= 1 and m["tokens_in"] >= 1000 and m["tokens_out"] >= 200
        assert m["cache_read"] >= 3000 and m["cost_usd"] > 0 and m["wall_seconds"] >= 0
    out = hatchctl_here("-C", str(p.root), "status", "--json")  # (read-only: in this process)
    doc = json.loads(out.stdout)
    task = next(t for t in doc["tasks"] if t["id"] == "A")
    assert task["metrics"]["tokens_in"] == sum(r.metrics["tokens_in"] for r in runs)
    assert doc["metrics"]["turns"] == sum(r.metrics["turns"] for r in runs)
    table = hatchctl_here("-C", str(p.root), "status").stdout
    assert "USAGE" in table and "tok" in table and "$" in table


def test_an_agent_at_a_permission_prompt_is_waiting_not_stalled(
    projects: Projects, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.jsonl"
    p = projects.make(
        {"W": {"sim": {"files": ADD, "factory": ["needs_input"]}}},
        {
            **HOOK,
            "notify": {"command": notify_recorder(notes)},
            "limits": {
                "idle_timeout": "2s",
                "max_strikes": 1,
                "restart": {"max_restarts": 0},
            },
        },
    )
    _, tasks, deps = drain(p)
    waiting = [e for e in deps.store.events("W") if e.kind == "agent_waiting"]
    assert waiting and "permission" in waiting[0].data["message"]
    run = deps.store.runs("W")[0]
    assert run.reason == "waiting_for_input"  # its own reason, not a silent idle timeout
    assert run.waiting_reason and "permission" in run.waiting_reason
    assert tasks["W"].state == "failed"
    assert "waiting_for_input" in json.dumps(tasks["W"].errors)  # why the restarts ran out
    sent = [json.loads(line) for line in notes.read_text().splitlines() if line.strip()]
    assert any(n.get("event") == "agent_waiting" for n in sent)
    assert "forged_signal" not in kinds(deps, "W")
