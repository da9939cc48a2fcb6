"""Every bad input: one clear line on stderr, a non-zero exit, never a traceback.

Each call is its own `python -m hatchctl` process, forked from an interpreter that imported
hatchctl once (tests/forkrun.py)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.conftest import make_repo, write_spec
from tests.forkrun import Hatchctl


def one_line_error(out: object, needle: str) -> None:
    stderr = out.stderr  # type: ignore[attr-defined]
    assert out.returncode != 0  # type: ignore[attr-defined]
    assert "Traceback" not in stderr and "Traceback" not in out.stdout  # type: ignore[attr-defined]
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("hatchctl: ") and needle in lines[0], lines[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "proj")
    (root / "hatch.toml").write_text('[project]\nname = "p1"\n[limits]\ndb_busy_timeout = "0.3s"\n')
    write_spec(root / "specs", "A")
    return root


def test_missing_hatch_toml(tmp_path: Path, hatchctl: Hatchctl) -> None:
    one_line_error(hatchctl("status", cwd=tmp_path), "no hatch.toml found")


def test_unknown_config_key(project: Path, hatchctl: Hatchctl) -> None:
    (project / "hatch.toml").write_text("[limits]\nmax_actve = 2\n")
    one_line_error(hatchctl("-C", str(project), "status"), "unknown key 'limits.max_actve'")


def test_unreadable_db(project: Path, hatchctl: Hatchctl) -> None:
    (project / ".hatch").mkdir()
    (project / ".hatch" / "hatch.db").write_bytes(b"garbage" * 1000)
    one_line_error(hatchctl("-C", str(project), "status"), "cannot open state database")


def test_locked_db(project: Path, hatchctl: Hatchctl) -> None:
    assert hatchctl("-C", str(project), "status").returncode == 0
    blocker = sqlite3.connect(project / ".hatch" / "hatch.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        # a reader is not blocked by a writer (WAL): status shows the state it can read...
        assert hatchctl("-C", str(project), "status").returncode == 0
        # ...and says so in one line when it has to write (a new spec to add) and cannot
        write_spec(project / "specs", "B")
        one_line_error(hatchctl("-C", str(project), "status"), "is locked by another process")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def test_invalid_task_id_argument(project: Path, hatchctl: Hatchctl) -> None:
    one_line_error(hatchctl("-C", str(project), "events", "--task", "../etc"), "invalid task id")
    one_line_error(hatchctl("-C", str(project), "logs", "$(rm -rf x)"), "invalid task id")


def test_usage_error_is_one_line(project: Path, hatchctl: Hatchctl) -> None:
    out = hatchctl("-C", str(project), "status", "--bogus")
    one_line_error(out, "unrecognized arguments")
    assert out.returncode == 2


def test_dash_c_not_a_directory(tmp_path: Path, hatchctl: Hatchctl) -> None:
    one_line_error(hatchctl("-C", str(tmp_path / "nope"), "status"), "not a directory")


def test_validate_reports_all_problems(project: Path, hatchctl: Hatchctl) -> None:
    specs = project / "specs"
    write_spec(specs, "B", "depends_on: [C]\n")
    write_spec(specs, "C", "depends_on: [B]\n")
    write_spec(specs, "D", "depends_on: [GHOST]\n")
    (specs / "D2.md").write_text("---\nid: D\ntitle: dup\n---\n")
    (specs / "bad.md").write_text("---\nid: a b\ntitle: t\n---\n")
    (specs / "broken.md").write_text("---\nid: E\ntitle: : :\n  - x\n---\n")
    out = hatchctl("-C", str(project), "validate")
    assert out.returncode == 1
    assert "Traceback" not in out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert any(ln.startswith(f"{specs}/B.md:4: dependency cycle: B -> C -> B") for ln in lines)
    assert any(ln.startswith(f"{specs}/D.md:4: unknown dependency 'GHOST'") for ln in lines)
    assert any(ln.startswith(f"{specs}/D2.md:2: duplicate id 'D'") for ln in lines)
    assert any(ln.startswith(f"{specs}/bad.md:2: id: invalid id 'a b'") for ln in lines)
    assert any(ln.startswith(f"{specs}/broken.md:") and "invalid YAML" in ln for ln in lines)
    assert len(lines) == 5


def test_validate_clean_exits_zero(project: Path, hatchctl: Hatchctl) -> None:
    out = hatchctl("-C", str(project), "validate")
    assert out.returncode == 0 and "1 specs are valid" in out.stdout


def test_status_json_shape(project: Path, hatchctl: Hatchctl) -> None:
    out = hatchctl("-C", str(project), "status", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert set(doc) >= {"project", "supervisor", "paused", "counts", "tasks"}
    assert doc["supervisor"] == {"running": False, "pid": None}
    assert set(doc["counts"]) == {"pending", "active", "blocked", "completed", "failed"}
    task = doc["tasks"][0]
    for key in (
        "id",
        "title",
        "state",
        "phase",
        "iteration",
        "attempt",
        "strikes",
        "restarts",
        "depends_on",
        "branch",
        "worktree",
        "pane_id",
        "failure_class",
        "last_error",
        "errors",
    ):
        assert key in task
    assert task["state"] == "pending"


def test_events_json_lines(project: Path, hatchctl: Hatchctl) -> None:
    hatchctl("-C", str(project), "status")
    out = hatchctl("-C", str(project), "events", "--json")
    events = [json.loads(ln) for ln in out.stdout.splitlines()]
    assert events and set(events[0]) == {
        "id",
        "at",
        "task_id",
        "run_id",
        "kind",
        "from",
        "to",
        "data",
    }
    assert events[0]["kind"] == "task_created" and events[0]["task_id"] == "A"


def test_write_commands_without_supervisor(project: Path, hatchctl: Hatchctl) -> None:
    one_line_error(hatchctl("-C", str(project), "kill", "A"), "no supervisor is running")
    one_line_error(hatchctl("-C", str(project), "pause"), "no supervisor is running")


def test_hostile_spec_files_are_problems_not_hangs(project: Path, hatchctl: Hatchctl) -> None:
    """A FIFO and a link to /dev/zero among the specs, a duplicate key, an overflowing priority,
    a huge title: validate names each (file:line) and exits 1 at once."""
    specs = project / "specs"
    os.mkfifo(specs / "fifo.md")
    (specs / "zero.md").symlink_to("/dev/zero")
    write_spec(specs, "DUP", front="title: again\n")
    write_spec(specs, "BIG", front="priority: 999999999999999999999999999999\n")
    write_spec(specs, "LONG", front=f"timeout: {'9' * 400}\n")
    (specs / "T.md").write_text("---\nid: T\ntitle: " + "x" * 1_000_000 + "\n---\nbody\n")
    out = hatchctl("-C", str(project), "validate", timeout=30)
    assert out.returncode == 1 and "Traceback" not in out.stderr + out.stdout
    text = out.stdout + out.stderr
    for needle in (
        "fifo.md:1: cannot read",
        "zero.md:1: cannot read",
        "duplicate key 'title'",
        "DUP.md",
        "BIG.md:4: priority",
        "LONG.md:4: timeout",
        "T.md:1: cannot read",  # larger than a spec may be
    ):
        assert needle in text, (needle, text[-2000:])


@pytest.mark.parametrize(
    ("limits", "needle"),
    [
        ('tick = "nan"', "limits.tick"),
        ('tick = "1000h"', "limits.tick"),
        ("run_timeout = nan", "limits.run_timeout"),
        (f"idle_timeout = {'9' * 400}", "limits.idle_timeout"),
    ],
)
def test_insane_numbers_in_config_are_one_line(
    project: Path, limits: str, needle: str, hatchctl: Hatchctl
) -> None:
    (project / "hatch.toml").write_text(f"[limits]\n{limits}\n")
    one_line_error(hatchctl("-C", str(project), "status"), needle)


def test_what_would_fail_every_launch_is_refused_at_start(
    tmp_path: Path, hatchctl: Hatchctl
) -> None:
    """No commits yet, the integration branch checked out by the user, an agent that exists but
    cannot be executed: one line at once, not restarts burnt one by one."""
    empty = tmp_path / "empty"
    empty.mkdir()
    subprocess.run(["git", "init", "-q", str(empty)], check=True, timeout=30)
    (empty / "hatch.toml").write_text("")
    write_spec(empty / "specs", "A")
    one_line_error(
        hatchctl("-C", str(empty), "run", "--until-drained", "--max-time", "10s"),
        "needs at least one commit",
    )
    root = make_repo(tmp_path / "proj")
    write_spec(root / "specs", "A")
    (root / "hatch.toml").write_text('[project]\nintegration_branch = "main"\n')
    one_line_error(
        hatchctl("-C", str(root), "run", "--until-drained", "--max-time", "10s"),
        "checked out in",
    )
    agent = root / "agent.sh"
    agent.write_text("#!/bin/sh\nexit 0\n")
    agent.chmod(0o644)
    (root / "hatch.toml").write_text('[agents.factory]\ncommand = ["./agent.sh"]\n')
    one_line_error(
        hatchctl("-C", str(root), "run", "--until-drained", "--max-time", "10s"),
        "not executable",
    )
