"""Disk full under a running supervisor (issue 10), on a real small tmpfs: the supervisor stays
up, pauses with disk_full without a storm of tracebacks, and resumes by itself when space
returns; the task completes with one run per attempt."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hatchctl.engine.diskguard import free_bytes
from tests.conftest import HATCHCTL
from tests.integration.conftest import Projects, wait_for

SIZE_MB = 32
MIN_FREE_MB = 4
ADD = {"calc.py": "def add(a, b):\n    return a + b\n"}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 32 MiB tmpfs, always unmounted afterwards; a skip with the reason where the machine
    does not allow mounting one."""
    if os.geteuid() != 0:
        pytest.skip("the disk-full fault test mounts a small tmpfs, which needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    try:
        out = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m,mode=0700", "tmpfs", str(mnt)],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.strip() or out.returncode}")
    try:
        yield mnt
    finally:
        done = subprocess.run(["umount", str(mnt)], capture_output=True, timeout=30)
        if done.returncode != 0:  # something still has a file open in it: detach it anyway
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=30)


def fill(path: Path) -> None:
    """Allocate every free byte of ``path``'s filesystem in one file; prove it is full (a
    larger allocation fails with ENOSPC first)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        free = free_bytes(path.parent) or 0
        with pytest.raises(OSError) as too_much:
            os.posix_fallocate(fd, 0, free + (8 << 20))
        assert too_much.value.errno == errno.ENOSPC
        size = 0
        deadline = time.monotonic() + 10
        while (free := free_bytes(path.parent) or 0) > 0 and time.monotonic() < deadline:
            try:  # one call: from plenty of space to none at once
                os.posix_fallocate(fd, size, free)
                size += free
            except OSError as exc:  # someone wrote meanwhile: measure again
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


def db_state(db: Path) -> dict[str, Any]:
    """The state database, read-only (the supervisor owns it)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        runs = conn.execute("SELECT role, iteration, attempt FROM runs").fetchall()
        running = conn.execute("SELECT COUNT(*) FROM runs WHERE state = 'running'").fetchone()
        rows = conn.execute("SELECT kind, data FROM events ORDER BY id").fetchall()
        events = [r[0] for r in rows]
        full = [json.loads(r[1]) for r in rows if r[0] == "disk_full"]
        task = conn.execute("SELECT state FROM tasks WHERE id = 'D'").fetchone()
    finally:
        conn.close()
    return {
        "meta": meta,
        "runs": runs,
        "running": running[0],
        "events": events,
        "disk_full": full,
        "task": task[0] if task else None,
    }


def polled(db: Path) -> dict[str, Any]:
    """:func:`db_state` while the supervisor may still be creating the database."""
    try:
        return db_state(db) if db.exists() else {"meta": {}, "running": 0}
    except sqlite3.OperationalError:  # no tables yet
        return {"meta": {}, "running": 0}


@pytest.mark.parametrize(
    "min_free_mb",
    [
        pytest.param(MIN_FREE_MB, id="found_by_the_probe"),
        # the probe off: found by a write failing (SQLite's "cannot rollback" after
        # SQLITE_FULL, what killed the supervisor in issue 10)
        pytest.param(0, id="found_by_a_failed_write"),
    ],
)
def test_disk_full_pauses_quietly_and_resumes_by_itself(
    small_disk: Path, tmp_path: Path, min_free_mb: int
) -> None:
    projects = Projects(small_disk)
    p = projects.make(
        {"D": {"files": list(ADD), "sim": {"files": ADD, "factory": ["slow"], "slow_seconds": 3}}},
        {"limits": {"min_free_mb": min_free_mb}},
    )
    out_path = tmp_path / "supervisor.out"  # off the small disk: what it prints is measured
    err_path = tmp_path / "supervisor.err"
    with out_path.open("w") as out, err_path.open("w") as err:
        sup = subprocess.Popen(
            [*HATCHCTL, "-C", str(p.root), "run", "--until-drained", "--max-time", "60s"],
            stdout=out,
            stderr=err,
        )
    db = p.paths.db
    filler = small_disk / "filler"
    try:
        wait_for(lambda: polled(db)["running"] == 1, what="the factory to run")
        assert (p.paths.hatch / "disk_reserve").is_file()
        fill(filler)
        wait_for(
            lambda: polled(db)["meta"].get("pause_reason", "").startswith("disk_full"),
            what="the pause for disk_full",
        )
        runs_at_pause = db_state(db)["runs"]
        status = subprocess.run(
            [*HATCHCTL, "-C", str(p.root), "status", "--json"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert status.returncode == 0, status.stderr  # (in the room the reserve gave back)
        doc = json.loads(status.stdout)
        assert doc["paused"] and doc["pause_reason"].startswith("disk_full")
        fd = os.open(small_disk / "more", os.O_WRONLY | os.O_CREAT, 0o600)
        try:  # still full: the reserve the supervisor gave back for its own writes is 1 MiB
            with pytest.raises(OSError) as still_full:
                os.posix_fallocate(fd, 0, 2 << 20)
            assert still_full.value.errno == errno.ENOSPC
        finally:
            os.close(fd)
        # the fault holds for a while (5 ticks, each a probe): no storm, no crash, no launch
        time.sleep(0.5)
        assert sup.poll() is None, err_path.read_text()
        assert db_state(db)["runs"] == runs_at_pause
        assert err_path.stat().st_size == 0, err_path.read_text()[:2000]

        filler.unlink()
        assert sup.wait(timeout=60) == 0, err_path.read_text() + out_path.read_text()
        state = db_state(db)
        assert state["task"] == "completed"
        assert state["meta"].get("paused") == "0"
        attempts = Counter(state["runs"])
        assert all(n == 1 for n in attempts.values()), attempts  # no duplicate run
        assert set(runs_at_pause) <= set(state["runs"])
        assert state["events"].count("disk_full") == 1
        if min_free_mb == 0:
            assert state["disk_full"][0]["detail"].startswith("a pass failed"), state["disk_full"]
        assert state["events"].count("disk_space_returned") == 1
        assert err_path.read_text() == ""  # nothing on stderr: no "--- Logging error ---"
        log = p.paths.orchestrator_log.read_text()
        assert len(log) < 200_000
        assert log.count('"event": "disk_full"') <= 1  # its line may have found no room
        assert log.count('"event": "disk_space_returned"') == 1
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait(timeout=10)
        filler.unlink(missing_ok=True)
        (small_disk / "more").unlink(missing_ok=True)
        projects.cleanup()
