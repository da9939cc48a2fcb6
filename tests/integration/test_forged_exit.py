"""A stop that says "exited" while the agent still runs (an agent can write its own stop file:
it has its run's token) must not leave that agent running beside the next run in the same
worktree: its process tree is killed before anything else uses the worktree."""

from __future__ import annotations

import sys
from pathlib import Path

from hatchctl.runtime import psinfo
from tests.integration.conftest import Projects, drain, kinds

LIAR = r"""
import json, os, signal, time
doc = {"task_id": os.environ["HATCH_TASK_ID"], "role": os.environ["HATCH_ROLE"],
       "iteration": int(os.environ["HATCH_ITERATION"]), "attempt": int(os.environ["HATCH_ATTEMPT"]),
       "reason": "exit", "exit_code": 1, "run_id": int(os.environ["HATCH_RUN_ID"]),
       "token": os.environ["HATCH_RUN_TOKEN"]}
tmp = os.environ["HATCH_STOP_FILE"] + ".x"
open(tmp, "w").write(json.dumps(doc))
os.replace(tmp, os.environ["HATCH_STOP_FILE"])
print("claimed to have exited; still running", flush=True)
while True:
    signal.pause()
"""


def test_an_exit_stop_from_a_live_agent_kills_it_first(projects: Projects, tmp_path: Path) -> None:
    agent = tmp_path / "liar.py"
    agent.write_text(LIAR)
    p = projects.make(
        {"L": {}},
        {
            "agents": {"factory": {"command": [sys.executable, str(agent)]}},
            "limits": {"max_strikes": 1, "restart": {"max_restarts": 1}},
        },
    )
    _, tasks, deps = drain(p)
    assert "exited_but_alive" in kinds(deps, "L")
    runs = deps.store.runs("L")
    assert len(runs) == 2  # restarted once, then struck: never two at once
    for r in runs:
        assert psinfo.marked(deps.run_key(r.id)) == []
    events = deps.store.events("L")
    alive = [e for e in events if e.kind == "exited_but_alive"]
    assert all(e.data["kill"]["survivors"] == [] for e in alive)
    assert tasks["L"].state == "failed"
