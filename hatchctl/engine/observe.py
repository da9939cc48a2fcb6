"""What hatchctl learns about a live run besides its stop: that it waits for the user (Claude
Code's Notification hook writes ``<stop>.wait``), and its metrics (tokens, turns, model, cost)
from Claude Code's transcript, Codex's session file or the summary. Every file read here is
agent-written: read with O_NOFOLLOW, regular files only, bounded."""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hatchctl import agents
from hatchctl.agents.codex import codex_home
from hatchctl.engine import remotesample
from hatchctl.engine.deps import Deps
from hatchctl.errors import SummaryError, TmuxError
from hatchctl.runtime.logfile import strip_ansi, tail_bytes
from hatchctl.state import metrics, secret
from hatchctl.state.rows import RunRow
from hatchctl.state.summary import StopSignal, Summary, read_agent_file

TRANSCRIPT_LIMIT = 64 * 1024 * 1024
SESSION_DIR_LIMIT = 5000  # entries looked at in one day's directory of Codex sessions
SESSION_CANDIDATES = 20  # recent session files opened to find the run's
SESSION_META_LIMIT = 1024 * 1024  # the first line (session_meta, ~22 KiB with 0.169.0)
_ROLLOUT_RE = re.compile(r"rollout-[0-9T:-]+-[0-9a-f-]+\.jsonl")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _wait_file(deps: Deps, run: RunRow) -> Path:
    return deps.project.root / (run.stop_path + ".wait")


def check_waiting(deps: Deps, run: RunRow) -> RunRow:
    """Record a new Notification (the run waits for input): event ``agent_waiting`` and a
    notification. Returns the run as it is now."""
    path = _wait_file(deps, run)
    try:
        mtime = path.lstat().st_mtime
    except FileNotFoundError:
        return run
    started = run.running_at or run.started_at
    if mtime < started or (run.waiting_since is not None and mtime <= run.waiting_since):
        return run
    try:
        doc = json.loads(read_agent_file(path, "wait file", 64 * 1024))
    except (SummaryError, ValueError):
        return run
    if not isinstance(doc, dict) or not secret.token_ok(deps.secret, run.id, doc.get("token")):
        with deps.store.tx() as tx:
            tx.event("forged_signal", task_id=run.task_id, run_id=run.id, data={"file": "wait"})
        path.unlink(missing_ok=True)
        return run
    message = str(doc.get("message") or "waiting for input")[:300]
    path.unlink(missing_ok=True)  # consumed: one notification is one agent_waiting
    try:  # output up to now (the prompt being drawn) is not the agent moving on
        size = (deps.project.root / run.log_path).stat().st_size
    except FileNotFoundError:
        size = run.log_size
    with deps.store.tx() as tx:
        run = tx.update_run(run.id, waiting_since=mtime, waiting_reason=message, log_size=size)
        tx.event("agent_waiting", task_id=run.task_id, run_id=run.id, data={"message": message})
    deps.notifier.send("agent_waiting", task_id=run.task_id, role=run.role, message=message)
    return run


def clear_waiting(deps: Deps, run: RunRow, why: str) -> RunRow:
    if run.waiting_since is None:
        return run
    with deps.store.tx() as tx:
        run = tx.update_run(run.id, waiting_since=None, waiting_reason=None)
        tx.event("agent_resumed", task_id=run.task_id, run_id=run.id, data={"why": why})
    return run


def transcript_path(run: RunRow, stop: StopSignal) -> str | None:
    """What a stop tells besides the stop itself: the transcript's path, when it is a new,
    plausible one (recorded with the stop's transition)."""
    extra = stop.model_extra or {}
    path = extra.get("transcript_path")
    if (
        isinstance(path, str)
        and path.startswith("/")
        and path.endswith(".jsonl")
        and len(path) < 1024
        and "\0" not in path
        and path != run.transcript_path
    ):
        return path
    return None


def _lines(path: Path) -> Iterator[bytes]:
    try:
        fd = os.open(path, _FILE_FLAGS)
    except OSError as exc:
        raise SummaryError(f"transcript {path.name}: {exc.strerror}") from None
    yield from _fd_lines(fd, path.name)


def _fd_lines(fd: int, name: str) -> Iterator[bytes]:
    """The lines of the open file ``fd`` (closed at the end), up to TRANSCRIPT_LIMIT bytes."""
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise SummaryError(f"transcript {name} is not a regular file")
        f.seek(0)
        read = 0
        for line in f:
            read += len(line)
            if read > TRANSCRIPT_LIMIT:
                break
            yield line


def _open_dir(name: str, dir_fd: int | None, *, follow: bool = False) -> int | None:
    try:
        return os.open(name, _DIR_FLAGS & ~os.O_NOFOLLOW if follow else _DIR_FLAGS, dir_fd=dir_fd)
    except OSError:  # missing, or a symbolic link / not a directory: not followed
        return None


def _day_dirs(since: float, until: float) -> list[tuple[str, str, str]]:
    """sessions/YYYY/MM/DD directories a session started in [since, until] can be in (Codex
    names them by its local date; UTC as well, in case its zone differs from ours)."""
    out: list[tuple[str, str, str]] = []
    for t in (since, min(until, since + 600), until):
        for day in (datetime.fromtimestamp(t), datetime.fromtimestamp(t, UTC)):
            key = (f"{day.year:04d}", f"{day.month:02d}", f"{day.day:02d}")
            if key not in out:
                out.append(key)
    return out


def _session_start(first: bytes, worktrees: set[str]) -> float | None:
    """When the session whose first line is ``first`` started, if it ran in the worktree."""
    try:
        doc = json.loads(first)
    except (ValueError, RecursionError):  # RecursionError: nested too deep (a planted file)
        return None
    if not isinstance(doc, dict) or doc.get("type") != "session_meta":
        return None
    payload = doc.get("payload")
    if not isinstance(payload, dict):
        return None
    if payload.get("cwd") not in worktrees or not isinstance(payload.get("timestamp"), str):
        return None
    try:
        return datetime.fromisoformat(payload["timestamp"]).timestamp()
    except ValueError:
        return None


def codex_session(
    home: Path, worktree: Path, since: float, until: float
) -> tuple[str, dict[str, Any]] | None:
    """(name, metrics) of the newest Codex session under ``home`` that ran in ``worktree`` and
    started within [since, until]; None when there is none. The agent can write in ``home``
    (it must, for its sessions), so nothing under it is trusted: every directory below ``home``
    and the file are opened without following links, only recent regular files are opened, and
    each is read within bounds. A planted file can still claim any numbers: the metrics are
    informational, never used for a decision."""
    worktrees = {str(worktree), os.path.realpath(worktree)}
    found: list[tuple[float, str, int]] = []  # (mtime, name, directory fd)
    fds: list[int] = []
    try:
        base = _open_dir(str(home), None, follow=True)  # the user's choice (may be a link)
        if base is None:
            return None
        fds.append(base)
        sessions = _open_dir("sessions", base)
        if sessions is None:
            return None
        fds.append(sessions)
        for parts in _day_dirs(since, until):
            fd: int | None = sessions
            for part in parts:
                fd = _open_dir(part, fd)
                if fd is None:
                    break
                fds.append(fd)
            if fd is None:
                continue
            with os.scandir(fd) as entries:
                for n, entry in enumerate(entries):
                    if n >= SESSION_DIR_LIMIT:
                        break
                    if not _ROLLOUT_RE.fullmatch(entry.name):
                        continue
                    with contextlib.suppress(OSError):
                        st = os.stat(entry.name, dir_fd=fd, follow_symlinks=False)
                        if stat.S_ISREG(st.st_mode) and st.st_mtime >= since:
                            found.append((st.st_mtime, entry.name, fd))
        found.sort(reverse=True)
        for _, name, dir_fd in found[:SESSION_CANDIDATES]:
            try:
                file_fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
            except OSError:
                continue
            with os.fdopen(os.dup(file_fd), "rb") as f:
                first = (
                    f.readline(SESSION_META_LIMIT)
                    if stat.S_ISREG(os.fstat(f.fileno()).st_mode)
                    else b""
                )
            started = _session_start(first, worktrees)
            if started is None or not since <= started <= until:
                os.close(file_fd)
                continue
            return name, metrics.from_codex_session(_fd_lines(file_fd, name))
        return None
    finally:
        for fd in fds:
            os.close(fd)


def _codex_metrics(deps: Deps, run: RunRow) -> dict[str, Any]:
    agent = getattr(deps.project.config.agents, run.role)
    home = codex_home(agents.LaunchContext(sandbox="none", env=agents.agent_env(agent)))
    since = run.started_at - 0.01  # the session's timestamp has millisecond precision
    until = run.ended_at or deps.clock()
    try:
        found = codex_session(home, deps.project.paths.worktree(run.task_id), since, until)
    except (OSError, SummaryError) as exc:
        deps.log.warning("codex_session_unreadable", run_id=run.id, error=str(exc))
        return {}
    if found is None:
        deps.log.info("codex_session_not_found", run_id=run.id, codex_home=str(home))
        return {}
    return found[1]


def collect(deps: Deps, run: RunRow, summary: Summary | None = None) -> dict[str, Any]:
    """The run's metrics from its transcript or session file (else its summary), with its wall
    time; stored. Informational only (an agent can forge any of these sources)."""
    found: dict[str, Any] = {}
    preset = agents.for_agent(getattr(deps.project.config.agents, run.role))
    if preset.metrics_source == "codex-session":
        found = _codex_metrics(deps, run)
    elif run.transcript_path:
        try:
            found = metrics.from_claude_transcript(_lines(Path(run.transcript_path)))
        except SummaryError as exc:
            deps.log.warning("transcript_unreadable", run_id=run.id, error=str(exc))
    if not found and summary is not None and summary.metrics is not None:
        found = metrics.from_summary(summary.metrics.model_dump())
    end = run.ended_at or deps.clock()
    found["wall_seconds"] = round(max(0.0, end - (run.running_at or run.started_at)), 3)
    with deps.store.tx() as tx:
        tx.update_run(run.id, metrics=found)
    return found


def screen(deps: Deps, run: RunRow) -> str:
    """What the agent's screen shows: its live pane, else the end of its log (ANSI stripped).
    A run on a host: its pane there (engine/remotesample.py), never a pane of this machine's
    tmux server (the host's pane ids are its own), else the end of the local copy of its log."""
    if run.remote:
        shown = remotesample.screen(deps.remote, run)
        if shown is not None:
            return shown
    elif run.pane_id:
        try:
            return deps.tmux.capture(run.pane_id, 60)
        except TmuxError:
            pass
    try:
        raw = tail_bytes(deps.project.root / run.log_path, 16 * 1024)
    except OSError:
        return ""
    return strip_ansi(raw.decode("utf-8", "replace"))


def known_failure(deps: Deps, run: RunRow) -> agents.FailurePattern | None:
    """A failure the agent's preset knows by its text (e.g. Claude Code refusing root)."""
    preset = agents.for_agent(getattr(deps.project.config.agents, run.role))
    if not preset.failure_patterns:
        return None
    return preset.failure(screen(deps, run))


def busy_failure(deps: Deps, run: RunRow) -> agents.FailurePattern | None:
    """A known failure an agent keeps showing while it prints (``while_busy`` patterns)."""
    preset = agents.for_agent(getattr(deps.project.config.agents, run.role))
    patterns = [p for p in preset.failure_patterns if p.while_busy]
    if not patterns:
        return None
    shown = screen(deps, run)
    return next((p for p in patterns if re.search(p.regex, shown, re.MULTILINE)), None)


def check_screen(deps: Deps, run: RunRow) -> agents.FailurePattern | None:
    """For an agent gone quiet: a known failure on its screen (returned), or a prompt it waits
    at (the run is marked waiting, as the Notification hook would)."""
    preset = agents.for_agent(getattr(deps.project.config.agents, run.role))
    if not preset.failure_patterns and not preset.waiting_patterns:
        return None
    shown = screen(deps, run)
    found = preset.failure(shown)
    if found is not None or run.waiting_since is not None:
        return found
    pattern = preset.waiting(shown)
    if pattern is not None:
        message = f"the screen shows a prompt ({pattern[:80]})"
        with deps.store.tx() as tx:
            tx.update_run(run.id, waiting_since=tx.now, waiting_reason=message)  # quiet: no size
            tx.event(
                "agent_waiting",
                task_id=run.task_id,
                run_id=run.id,
                data={"message": message, "source": "screen"},
            )
        deps.notifier.send("agent_waiting", task_id=run.task_id, role=run.role, message=message)
    return None
