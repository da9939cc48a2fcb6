"""Disk full, fast and without a mount: real ENOSPC (/dev/full), real SQLITE_FULL (a page
limit on a real store), the threshold probe and the disk_full state on a real store, and a log
handler that counts what it cannot write instead of printing tracebacks."""

from __future__ import annotations

import errno
import json
import sqlite3
from pathlib import Path

import pytest

from hatchctl import logsetup
from hatchctl.config import parse_config
from hatchctl.engine.diskguard import MIB, DiskGuard, free_bytes, is_disk_full
from hatchctl.errors import ConfigError, StoreError
from tests.conftest import offline_deps

DEV_FULL = Path("/dev/full")
needs_dev_full = pytest.mark.skipif(not DEV_FULL.exists(), reason="no /dev/full on this machine")


def enospc() -> OSError:
    try:
        with DEV_FULL.open("wb", buffering=0) as f:
            f.write(b"x")
    except OSError as exc:
        return exc
    raise AssertionError("/dev/full accepted a write")


@needs_dev_full
def test_is_disk_full_anywhere_in_the_chain(tmp_path: Path) -> None:
    err = enospc()
    assert err.errno == errno.ENOSPC and is_disk_full(err)
    try:  # wrapped the way the store wraps errors: `raise StoreError(...) from None`
        try:
            raise err
        except OSError:
            raise StoreError("cannot write the state") from None
    except StoreError as wrapped:
        assert is_disk_full(wrapped)
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))

    # a real SQLITE_FULL through the real store: what it raises is "cannot rollback", the
    # disk-full error is its context (what killed the supervisor in issue 10)
    store = offline_deps(tmp_path, active=None).store
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages + 1}")
    with pytest.raises(Exception) as full:
        with store.tx() as tx:
            for _ in range(50):
                tx.event("padding", data={"pad": "x" * 5000})
    assert is_disk_full(full.value), repr(full.value)

    for other in (
        OSError(errno.ENOENT, "No such file or directory"),
        sqlite3.OperationalError("database is locked"),
        ValueError("nope"),
        None,
    ):
        assert not is_disk_full(other)


def test_min_free_mb_is_range_checked() -> None:
    cfg = parse_config("[limits]\nmin_free_mb = 0\n", Path("hatch.toml"))
    assert cfg.limits.min_free_mb == 0
    assert parse_config("", Path("hatch.toml")).limits.min_free_mb == 64
    for bad in ("-1", "2000000", "nan", '"64MB"'):
        with pytest.raises(ConfigError, match="min_free_mb"):
            parse_config(f"[limits]\nmin_free_mb = {bad}\n", Path("hatch.toml"))


def _meta(guard: DiskGuard) -> tuple[str | None, str]:
    store = guard.deps.store
    return store.meta("paused"), store.meta("pause_reason") or ""


def test_threshold_probe_pauses_and_space_returning_resumes(tmp_path: Path) -> None:
    deps = offline_deps(tmp_path, "[limits]\nmin_free_mb = 0\n")
    deps.project.paths.ensure()
    guard = DiskGuard(deps)
    assert guard.shortage() is None  # 0 disables the probe
    guard.prepare()
    assert guard.reserve.stat().st_size == MIB

    free = free_bytes(guard.dir)
    assert free is not None and free > 0
    guard.min_free = free + 1024 * MIB  # a threshold this disk cannot meet: "full"
    calls: list[str] = []
    assert not guard.pass_allowed(on_return=lambda: calls.append("back"))
    assert guard.full and not guard.reserve.exists()  # the reserve made room for the pause
    paused, reason = _meta(guard)
    assert paused == "1" and reason.startswith("disk_full: ") and "min_free_mb" in reason
    successor = DiskGuard(deps)  # a supervisor started while the pause stands lifts it too
    successor.adopt()
    assert successor.full
    for _ in range(3):  # while full: only the probe; no second event
        assert not guard.pass_allowed(on_return=lambda: calls.append("back"))
    kinds = [e.kind for e in deps.store.events()]
    assert kinds.count("disk_full") == 1 and calls == []

    guard.min_free = 1  # space has returned
    assert guard.pass_allowed(on_return=lambda: calls.append("back"))
    assert calls == ["back"] and not guard.full
    assert _meta(guard) == ("0", "")
    returned = [e for e in deps.store.events() if e.kind == "disk_space_returned"]
    assert len(returned) == 1 and returned[0].data["resumed"] is True
    assert guard.reserve.stat().st_size == MIB  # written back: the test write
    assert not (guard.dir / ".disk_probe").exists()


@needs_dev_full
def test_a_users_pause_stays_and_a_disk_with_room_is_not_full(tmp_path: Path) -> None:
    deps = offline_deps(tmp_path)
    deps.project.paths.ensure()
    guard = DiskGuard(deps)
    # "No space left" in an error while this disk has room (a stale error, or a command's
    # output an agent controls) does not pause anything
    assert not guard.entered(enospc()) and not guard.full
    assert not (guard.dir / ".disk_probe").exists()  # the test write leaves nothing

    with deps.store.tx() as tx:
        tx.set_meta("paused", "1")
        tx.set_meta("pause_reason", "paused by user")
    guard.enter("test: full")
    assert _meta(guard) == ("1", "paused by user")
    assert guard.poll()  # space is there: the state ends, the user's pause does not
    assert _meta(guard) == ("1", "paused by user")
    returned = [e for e in deps.store.events() if e.kind == "disk_space_returned"]
    assert returned[0].data["resumed"] is False


def test_log_handler_counts_what_it_cannot_write_and_says_so_once(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    if not DEV_FULL.exists():
        pytest.skip("no /dev/full on this machine")
    real = tmp_path / "real.jsonl"
    path = tmp_path / "hatchctl.jsonl"
    path.symlink_to(DEV_FULL)  # every write: ENOSPC
    logsetup.configure(path)
    try:
        log = logsetup.get(component="test")
        for i in range(300):
            log.error("supervisor_pass_failed", n=i)
        out, err = capfd.readouterr()
        assert out == "" and err == ""  # no "--- Logging error ---" storm
        path.unlink()
        path.symlink_to(real)  # writing works again
        log.info("disk_space_returned")
        log.info("next")
    finally:
        logsetup.configure(None)
    lines = [json.loads(x) for x in real.read_text().splitlines()]
    assert [x["event"] for x in lines] == ["log_records_dropped", "disk_space_returned", "next"]
    assert lines[0]["count"] == 300
