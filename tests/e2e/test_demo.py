"""`hatchctl demo --headless` end to end, as `make demo` runs it with no terminal (each
`hatchctl` a process of its own, forked from an interpreter that imported hatchctl once:
tests/forkrun.py)."""

from __future__ import annotations

import contextlib
import json
import uuid
from pathlib import Path

from hatchctl.demo import EXPECTED, write_demo
from hatchctl.project import tmux_socket
from hatchctl.runtime.scripts import Scripts, builtin_root, mounts_under, unmount_all_under
from hatchctl.runtime.tmux import Tmux
from tests.conftest import git
from tests.forkrun import Hatchctl


def test_headless_demo_reaches_every_expected_end_state(tmp_path: Path, hatchctl: Hatchctl) -> None:
    root = tmp_path / f"demo-{uuid.uuid4().hex[:8]}"  # its own tmux socket (hatch-<dir name>)
    try:
        out = hatchctl("demo", "--headless", "--dir", str(root), timeout=110)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr
        assert "demo: every task reached its expected end state" in out.stdout
        assert "demo tests pass" in out.stdout
        assert "What to watch for:" in out.stdout  # told before it happens...
        assert "CALC-005  fails three different ways" in out.stdout
        assert "expected: blocked" in out.stdout  # ...with the end state to expect
        assert "Traceback" not in out.stdout + out.stderr

        status = hatchctl("-C", str(root), "status", "--json")
        doc = json.loads(status.stdout)
        states = {t["id"]: t for t in doc["tasks"]}
        assert {k: v["state"] for k, v in states.items()} == EXPECTED
        assert doc["supervisor"]["running"] is False
        assert (
            states["CALC-002"]["iteration"] == 2 and states["CALC-002"]["strikes"] == 1
        )  # QA rejected once
        assert states["CALC-003"]["restarts"] >= 1  # the hung agent was restarted
        assert states["CALC-005"]["strikes"] == 3
        assert [e["class"] for e in states["CALC-005"]["errors"]] == ["code", "agent", "agent"]
        assert "CALC-005" in states["CALC-006"]["last_error"]

        # the integration branch holds the merged work of every completed task that changed code
        for task_id, want in EXPECTED.items():
            if want == "completed" and task_id != "CALC-004":  # CALC-004 took the fast path
                git(root, "merge-base", "--is-ancestor", f"hatch/{task_id}", "hatch/integration")
        # the TDD chain ran in order: each cycle's branch contains the previous cycle's commit
        git(root, "merge-base", "--is-ancestor", "hatch/STATS-1", "hatch/STATS-2")
        git(root, "merge-base", "--is-ancestor", "hatch/STATS-2", "hatch/STATS-3")
        files = git(root, "ls-tree", "-r", "--name-only", "hatch/integration")
        for f in ("calc/arith.py", "calc/mul.py", "calc/power.py", "calc/stats.py"):
            assert f in files.split()
        assert "calc/div.py" not in files.split()  # the failed task's work was never merged

        logs = hatchctl("-C", str(root), "logs", "CALC-001", "--role", "factory")
        assert logs.returncode == 0 and "[0299] compiling" in logs.stdout
        assert "\x1b[" not in logs.stdout  # ANSI stripped for display...
        raw = hatchctl("-C", str(root), "logs", "CALC-001", "--role", "factory", "--raw")
        assert "\x1b[32m" in raw.stdout  # ...while the raw terminal bytes are kept on disk
        events = hatchctl("-C", str(root), "events", "--task", "CALC-005", "--json").stdout
        strikes = [json.loads(x) for x in events.splitlines() if '"strike"' in x]
        assert [e["data"]["reason"] for e in strikes if e["kind"] == "strike"] == [
            "factory_partial",
            "unverified_claim",
            "no_summary",
        ]

        # the failed task keeps its worktree, not its read-only mount; the demo recreates cleanly
        assert (root / ".hatch/worktrees/CALC-005").is_dir() and mounts_under(root) == []
        write_demo(root)
        assert mounts_under(root) == [] and not (root / ".hatch").exists()
        assert hatchctl("-C", str(root), "validate").returncode == 0
    finally:
        Tmux(tmux_socket(root.name, root.resolve())).kill_server()
        with contextlib.suppress(Exception):
            unmount_all_under(Scripts(builtin_root(), timeout=30), root)
