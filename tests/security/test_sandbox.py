"""Attacks by an agent on everything outside its own task, run for real under the bwrap sandbox
(and, where a defence does not rest on the sandbox, without it).

Each hostile agent is a small Python program that tries its attacks, prints one line per attack
(``ATTACK <name> blocked|SUCCEEDED``) into its pane log, then does honest work through the real
sim agent, so the task can still complete.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

import pytest

from hatchctl.runtime import sandbox
from tests.conftest import git
from tests.integration.conftest import Projects, drain, kinds

ADD = {"calc.py": "def add(a, b):\n    return a + b\n"}
ACCEPT = "python3 -c 'import calc; assert calc.add(2, 3) == 5'"

needs_bwrap = pytest.mark.skipif(
    sandbox.probe() is not None, reason=f"no bwrap sandbox here: {sandbox.probe()}"
)

HOSTILE = r"""
import json, os, sqlite3, subprocess, sys
root = os.environ["ATTACK_ROOT"]
hatch = os.path.join(root, ".hatch")

def attempt(name, fn):
    try:
        fn()
        print(f"ATTACK {name} SUCCEEDED", flush=True)
    except Exception as exc:
        print(f"ATTACK {name} blocked ({type(exc).__name__})", flush=True)

def run(*argv):
    subprocess.run(list(argv), check=True, capture_output=True, timeout=20)

def write_main():
    with open(os.path.join(root, "PWNED"), "w") as f:
        f.write("pwned")

def db(sql):
    def go():
        path = os.path.join(hatch, "hatch.db")
        if not os.path.exists(path):
            raise FileNotFoundError(path)
        con = sqlite3.connect(path)
        con.execute(sql)
        con.commit()
    return go

def tmux():
    sock = os.environ["ATTACK_SOCKET"]
    if not os.path.exists(sock):
        raise FileNotFoundError(sock)
    run("tmux", "-S", sock, "new-window", "-d", "touch " + os.environ["ATTACK_CANARY"])

def secret():
    open(os.path.join(hatch, "secret"), "rb").read()

def other_worktree():
    os.listdir(os.path.join(hatch, "worktrees", os.environ["ATTACK_VICTIM"]))

def see_processes():
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    if int(os.environ["ATTACK_SUPERVISOR_PID"]) and str(os.environ["ATTACK_SUPERVISOR_PID"]) in pids:
        return
    raise PermissionError("the supervisor is not visible")

attempt("write_main_checkout", write_main)
attempt("commit_on_main", lambda: run("git", "-C", root, "commit", "--allow-empty", "-qm", "pwn"))
attempt("move_main_from_worktree", lambda: run("git", "update-ref", "refs/heads/main", "HEAD"))
attempt("move_other_branch", lambda: run("git", "update-ref", "refs/heads/hatch/" + os.environ["ATTACK_VICTIM"], "HEAD"))
attempt("db_mark_completed", db("UPDATE tasks SET state='completed'"))
attempt("db_insert_command", db("INSERT INTO commands (kind) VALUES ('pause')"))
attempt("read_secret", secret)
attempt("list_other_worktree", other_worktree)
attempt("tmux_new_window", tmux)
attempt("see_supervisor_process", see_processes)
os.execvp("hatchctl", ["hatchctl", "sim-agent", *sys.argv[1:]])
"""

ATTACKS = (
    "write_main_checkout",
    "commit_on_main",
    "move_main_from_worktree",
    "db_mark_completed",
    "db_insert_command",
    "read_secret",
    "list_other_worktree",
    "tmux_new_window",
    "see_supervisor_process",
)


def _log(project_root: Path, task: str) -> str:
    logs = sorted((project_root / ".hatch" / "logs" / "factory").glob(f"{task}.factory.*.log"))
    return "".join(p.read_text(errors="replace") for p in logs)


@needs_bwrap
def test_a_sandboxed_agent_cannot_reach_the_project_the_db_tmux_or_other_tasks(
    projects: Projects, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = tmp_path / "hostile.py"
    agent.write_text(HOSTILE)
    canary = tmp_path / "CANARY"
    p = projects.make(
        {
            "EVIL": {"files": list(ADD), "acceptance": ACCEPT, "sim": {"files": ADD}},
            "VICTIM": {"sim": {"files": {"v.txt": "v\n"}}},
        },
        {
            "agents": {"factory": {"command": [sys.executable, str(agent)]}},
            "limits": {"max_active": 2},
        },
    )
    main_before = git(p.root, "rev-parse", "refs/heads/main")
    monkeypatch.setenv("ATTACK_ROOT", str(p.root))
    monkeypatch.setenv("ATTACK_VICTIM", "VICTIM")
    monkeypatch.setenv("ATTACK_CANARY", str(canary))
    monkeypatch.setenv("ATTACK_SUPERVISOR_PID", str(os.getpid()))
    monkeypatch.setenv("ATTACK_SOCKET", f"/tmp/tmux-{os.getuid()}/{p.tmux_socket}")
    code, tasks, deps = drain(p)
    log = _log(p.root, "EVIL")
    for name in ATTACKS:
        assert f"ATTACK {name} blocked" in log, f"{name}:\n{log[-3000:]}"
    # nothing outside the task changed, and the pipeline went on as if nothing happened
    assert not (p.root / "PWNED").exists() and not canary.exists()
    assert git(p.root, "rev-parse", "refs/heads/main") == main_before
    assert code == 0, {t: (x.state, x.last_error) for t, x in tasks.items()}
    assert tasks["EVIL"].state == "completed" and tasks["VICTIM"].state == "completed"
    assert "branch_taken_back" in kinds(deps, "EVIL")
    # moving another task's branch only moved it in EVIL's private shadow of refs/heads/hatch
    assert "ATTACK move_other_branch" in log
    victim_tip = git(p.root, "show", "--name-only", "--format=", "refs/heads/hatch/VICTIM")
    assert victim_tip.split() == ["v.txt"]
    with sqlite3.connect(p.paths.db) as con:
        assert con.execute("SELECT COUNT(*) FROM commands").fetchone()[0] == 0
    assert deps.store.meta("paused") != "1"
    launched = [e for e in deps.store.events("EVIL") if e.to_state == "running"]
    assert launched and all(e.data.get("sandbox") == "bwrap" for e in launched)


TAMPER = r"""
import os, subprocess, sys
root = os.environ["ATTACK_ROOT"]
subprocess.run(["git", "-C", root, "tag", "evil-tag"], check=True, timeout=20)
subprocess.run(["git", "-C", root, "update-ref", "refs/heads/main", os.environ["ATTACK_OLD"]],
               check=True, timeout=20)
os.execvp("hatchctl", ["hatchctl", "sim-agent", *sys.argv[1:]])
"""


def test_without_the_sandbox_a_changed_ref_fails_the_task_and_is_restored(
    projects: Projects, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = tmp_path / "tamper.py"
    agent.write_text(TAMPER)
    p = projects.make(
        {"T": {"files": list(ADD), "acceptance": ACCEPT, "sim": {"files": ADD}}},
        {"agents": {"factory": {"command": [sys.executable, str(agent)], "sandbox": "none"}}},
    )
    main_before = git(p.root, "rev-parse", "refs/heads/main")
    monkeypatch.setenv("ATTACK_ROOT", str(p.root))
    monkeypatch.setenv("ATTACK_OLD", git(p.root, "rev-parse", "main~1"))
    _, tasks, deps = drain(p)
    t = tasks["T"]
    assert t.state == "failed" and t.errors[-1]["reason"] == "ref_tampering", t.errors
    assert "refs/heads/main" in t.errors[-1]["detail"] and "refs/tags/evil-tag" in t.last_error
    assert git(p.root, "rev-parse", "refs/heads/main") == main_before  # restored
    assert git(p.root, "tag", "--list", "evil-tag") == ""
    strike = [e for e in deps.store.events("T") if e.kind == "strike"][-1]
    assert strike.data["reason"] == "ref_tampering"


FORGER = r"""
import json, os, pathlib, sys, time
io = pathlib.Path(os.environ["ATTACK_ROOT"], ".hatch", "io", "VICTIM", "factory.i1")
stop = io / "VICTIM.factory.i1.a1.stop"
deadline = time.monotonic() + 30
while not io.is_dir() and time.monotonic() < deadline:
    time.sleep(0.02)
doc = {"task_id": "VICTIM", "role": "factory", "iteration": 1, "attempt": 1, "reason": "exit",
       "exit_code": 1, "at": "", "run_id": 0, "token": "0" * 32}
tmp = stop.with_name("forged.tmp")
tmp.write_text(json.dumps(doc))
os.replace(tmp, stop)
pathlib.Path(os.environ["ATTACK_FLAG"]).write_text("forged")
os.execvp("hatchctl", ["hatchctl", "sim-agent", *sys.argv[1:]])
"""

VICTIM = r"""
import os, pathlib, sys, time
flag = pathlib.Path(os.environ["ATTACK_FLAG"])
deadline = time.monotonic() + 30
while not flag.exists() and time.monotonic() < deadline:
    time.sleep(0.02)
os.execvp("hatchctl", ["hatchctl", "sim-agent", *sys.argv[1:]])
"""


def test_a_stop_file_forged_for_another_task_is_recorded_and_ignored(
    projects: Projects, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the sandbox one agent can write another task's stop file; without that run's
    token it counts for nothing: the victim's agent goes on and its task completes."""
    dispatch = tmp_path / "agent.py"
    (tmp_path / "forger.py").write_text(FORGER)
    (tmp_path / "victim.py").write_text(VICTIM)
    dispatch.write_text(
        "import os, runpy, sys\n"
        f"name = 'forger.py' if os.environ['HATCH_TASK_ID'] == 'EVIL' else 'victim.py'\n"
        f"runpy.run_path(os.path.join({str(tmp_path)!r}, name), run_name='__main__')\n"
    )
    p = projects.make(
        {
            "EVIL": {"sim": {"files": {"e.txt": "e\n"}}},
            "VICTIM": {"sim": {"files": {"v.txt": "v\n"}}},
        },
        {
            "agents": {"factory": {"command": [sys.executable, str(dispatch)], "sandbox": "none"}},
            "limits": {"max_active": 2},
        },
    )
    monkeypatch.setenv("ATTACK_ROOT", str(p.root))
    monkeypatch.setenv("ATTACK_FLAG", str(tmp_path / "forged.flag"))
    code, tasks, deps = drain(p)
    assert (tmp_path / "forged.flag").exists()
    forged = [e for e in deps.store.events("VICTIM") if e.kind == "forged_signal"]
    assert forged and "token" in json.dumps(forged[0].data)
    assert code == 0 and tasks["VICTIM"].state == "completed" and tasks["VICTIM"].strikes == 0
    victim_runs = deps.store.runs("VICTIM")
    assert victim_runs[0].exit_code == 0  # its own, real exit: not the forged exit 1
