"""Files an agent can write are read and written without following links or blocking on FIFOs."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from hatchctl.engine.jobs import write_no_follow
from hatchctl.errors import SummaryError, UnsafePath
from hatchctl.state.summary import load_stop, load_summary, read_agent_file

STOP = {"task_id": "T", "role": "qa", "iteration": 1, "attempt": 1, "reason": "exit"}
SUMMARY = {"task_id": "T", "role": "factory", "iteration": 1, "status": "completed"}


def in_thread(fn: Callable[[], object], timeout: float = 10.0) -> BaseException | None:
    """Run ``fn`` in a thread; fail (instead of hanging the test) if it does not return."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            fn()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert outcome, "blocked: the call did not return"
    return outcome[0]


def one_line_error(fn: Callable[[], object]) -> str:
    exc = in_thread(fn)
    assert isinstance(exc, SummaryError), exc
    assert "\n" not in str(exc)
    return str(exc)


def test_regular_files_are_read(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text(json.dumps(SUMMARY))
    (tmp_path / "x.stop").write_text(json.dumps(STOP))
    assert load_summary(tmp_path / "s.json", task_id="T", role="factory", iteration=1).status == (
        "completed"
    )
    assert load_stop(tmp_path / "x.stop").reason == "exit"
    assert read_agent_file(tmp_path / "x.stop") == json.dumps(STOP).encode()


def test_a_link_is_never_followed_even_to_a_valid_file(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text(json.dumps(SUMMARY))
    (tmp_path / "s.json").symlink_to(real)
    msg = one_line_error(
        lambda: load_summary(tmp_path / "s.json", task_id="T", role="factory", iteration=1)
    )
    assert "s.json is a symbolic link" in msg


def test_a_link_to_dev_zero_is_one_error_not_an_endless_read(tmp_path: Path) -> None:
    (tmp_path / "x.stop").symlink_to("/dev/zero")
    assert "is a symbolic link" in one_line_error(lambda: load_stop(tmp_path / "x.stop"))


def test_a_fifo_is_one_error_not_a_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "x.stop"
    os.mkfifo(fifo)
    assert "is not a regular file" in one_line_error(lambda: load_stop(fifo))
    summary = tmp_path / "s.json"
    os.mkfifo(summary)
    msg = one_line_error(lambda: load_summary(summary, task_id="T", role="qa", iteration=1))
    assert "is not a regular file" in msg


def test_directories_and_huge_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "d.stop").mkdir()
    assert "is not a regular file" in one_line_error(lambda: load_stop(tmp_path / "d.stop"))
    big = tmp_path / "big.json"
    with big.open("wb") as fh:
        fh.truncate((1 << 20) + 1)  # sparse: the size is checked, not the disk
    assert "larger than" in one_line_error(
        lambda: load_summary(big, task_id="T", role="qa", iteration=1)
    )
    small = tmp_path / "small"
    small.write_bytes(b"12345")
    assert read_agent_file(small, limit=5) == b"12345"
    assert "larger than 4 bytes" in one_line_error(lambda: read_agent_file(small, limit=4))


def test_missing_and_undecodable_files_keep_their_messages(tmp_path: Path) -> None:
    assert "does not exist" in one_line_error(lambda: load_stop(tmp_path / "none.stop"))
    (tmp_path / "bad.stop").write_bytes(b"\xff\xfe")
    assert "is unreadable" in one_line_error(lambda: load_stop(tmp_path / "bad.stop"))


# -- writing hatchctl's own file into a worktree ----------------------------------------------
SETTINGS = ".claude/settings.local.json"


def outside_file(tmp_path: Path) -> Path:
    target = tmp_path / "outside" / "victim.json"
    target.parent.mkdir()
    target.write_text("original\n")
    target.chmod(0o644)
    return target


def test_settings_are_written_private_and_overwritten(tmp_path: Path) -> None:
    wt = tmp_path / "wt"
    wt.mkdir()
    write_no_follow(wt, SETTINGS, '{"a": 1}')
    write_no_follow(wt, SETTINGS, "{}")  # shorter: the old content is truncated
    assert (wt / SETTINGS).read_text() == "{}"
    assert (wt / SETTINGS).stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("how", ["file_link", "dangling_link", "dir_link", "worktree_link"])
def test_settings_are_never_written_through_a_link(tmp_path: Path, how: str) -> None:
    victim = outside_file(tmp_path)
    wt = tmp_path / "wt"
    wt.mkdir()
    root = wt
    if how == "file_link":
        (wt / ".claude").mkdir()
        (wt / SETTINGS).symlink_to(victim)
    elif how == "dangling_link":
        (wt / ".claude").mkdir()
        (wt / SETTINGS).symlink_to(victim.parent / "new.json")
    elif how == "dir_link":
        (wt / ".claude").symlink_to(victim.parent)
        (victim.parent / "settings.local.json").write_text("original\n")
    else:
        root = tmp_path / "wt-link"
        root.symlink_to(wt)
    with pytest.raises(UnsafePath, match="unsafe path: .* is a symbolic link"):
        write_no_follow(root, SETTINGS, "{}")
    assert victim.read_text() == "original\n" and victim.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in victim.parent.iterdir()) == sorted(
        ["victim.json", *(["settings.local.json"] if how == "dir_link" else [])]
    )
    if how == "dir_link":
        assert (victim.parent / "settings.local.json").read_text() == "original\n"


def test_a_fifo_or_a_hard_link_at_the_settings_path_is_refused(tmp_path: Path) -> None:
    wt = tmp_path / "wt"
    (wt / ".claude").mkdir(parents=True)
    os.mkfifo(wt / SETTINGS)
    exc = in_thread(lambda: write_no_follow(wt, SETTINGS, "{}"))
    assert isinstance(exc, UnsafePath), exc
    (wt / SETTINGS).unlink()
    victim = outside_file(tmp_path)
    os.link(victim, wt / SETTINGS)
    with pytest.raises(UnsafePath, match="not a regular file of its own"):
        write_no_follow(wt, SETTINGS, "{}")
    assert victim.read_text() == "original\n"
    (wt / SETTINGS).unlink()
    (wt / ".claude").rmdir()
    (wt / ".claude").write_text("a file where a directory belongs\n")
    with pytest.raises(UnsafePath, match=r"\.claude is a symbolic link or not a directory"):
        write_no_follow(wt, SETTINGS, "{}")
