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
WAIT_LIMIT = 64 * 1024  # bytes of a Notification file (``<stop>.wait``)


def _wait_file(deps: Deps, run: RunRow) -> Path:
    return deps.project.root / (run.stop_path + ".wait")


def check_waiting(deps: Deps, run: RunRow) -> RunRow:
    """Record a new Notification (the run waits for input): event ``agent_waiting`` and a
    notification. Returns the run as it is now. (A run on a host: engine/remotecheck.py, the
    file its host's watcher reports, read off the loop: engine/remotesignals.py.)"""
    path = _wait_file(deps, run)
    try:
        mtime = path.lstat().st_mtime
    except FileNotFoundError:
        return run
    if not wait_is_new(run, mtime):
        return run
    try:
        said = wait_message(deps, run, read_agent_file(path, "wait file", WAIT_LIMIT))
    except SummaryError:
        return run
    if said is False:
        return run
    path.unlink(missing_ok=True)  # consumed: one notification is one agent_waiting (or forged)
    if said is True:
        return run
    try:  # output up to now (the prompt being drawn) is not the agent moving on
        size = (deps.project.root / run.log_path).stat().st_size
    except FileNotFoundError:
        size = run.log_size
    return mark_waiting(deps, run, mtime, said, size)


def wait_is_new(run: RunRow, mtime: float) -> bool:
    """A Notification file of this mtime (this machine's clock) is one of this run's, not yet
    recorded."""
    started = run.running_at or run.started_at
    return mtime >= started and (run.waiting_since is None or mtime > run.waiting_since)


def wait_message(deps: Deps, run: RunRow, raw: bytes) -> str | bool:
    """The message a Notification file's content carries for ``run``; False when it is not a
    whole JSON document (looked at again); True when it is not the run's (no token, or another
    one): refused, event ``forged_signal``."""
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        return False
    if not isinstance(doc, dict) or not secret.token_ok(deps.secret, run.id, doc.get("token")):
        data = {"file": "wait", **({"host": run.host} if run.remote else {})}
        with deps.store.tx() as tx:
            tx.event("forged_signal", task_id=run.task_id, run_id=run.id, data=data)
        return True
    return str(doc.get("message") or "waiting for input")[:300]


def mark_waiting(deps: Deps, run: RunRow, since: float, message: str, size: int) -> RunRow:
    """The run waits for input since ``since`` (its log's ``size`` then): event
    ``agent_waiting`` and a notification."""
    with deps.store.tx() as tx:
        run = tx.update_run(run.id, waiting_since=since, waiting_reason=message, log_size=size)
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


def screen(deps: Deps, run: RunRow) -> tuple[str, bool] | None:
    """What the agent's screen shows (ANSI stripped) and whether that is settled: its live
    pane, else the end of its log. A run on a host: its pane there as captured off the loop
    (engine/remotesample.Screens: never this machine's tmux server, whose pane ids are its
    own), None while that capture is under way (asked again on a later pass); the end of the
    local copy of its log when its pane is not listed there (settled) or the host did not
    answer (not settled: looked at again when it does)."""
    if run.remote:
        got = deps.remote.screens.look(run)
        if got is None:
            return None
        if got.text is not None:
            return got.text, True
        return _log_tail(deps, run), got.settled
    if run.pane_id:
        try:
            return deps.tmux.capture(run.pane_id, 60), True
        except TmuxError:
            pass
    return _log_tail(deps, run), True


def _log_tail(deps: Deps, run: RunRow) -> str:
    try:
        raw = tail_bytes(deps.project.root / run.log_path, 16 * 1024)
    except OSError:
        return ""
    return strip_ansi(raw.decode("utf-8", "replace"))


def known_failure(deps: Deps, run: RunRow) -> agents.FailurePattern | None:
    """A failure the agent's preset knows by its text (e.g. Claude Code refusing root). Asked
    once its run exited: a host's pane is gone by then, and the end of its log (all of it
    copied here) is read while a capture is under way."""
    preset = agents.for_agent(getattr(deps.project.config.agents, run.role))
    if not preset.failure_patterns:
        return None
    shown = screen(deps, run)
    return preset.failure(_log_tail(deps, run) if shown is None else shown[0])


def busy_failure(deps: Deps, run: RunRow, shown: str) -> agents.FailurePattern | None:
    """A known failure an agent keeps showing while it prints (``while_busy`` patterns) on
    its screen, as ``screen`` gave it."""
    preset = agents.for_agent(getattr(deps.project.config.agents, run.role))
    patterns = [p for p in preset.failure_patterns if p.while_busy]
    return next((p for p in patterns if re.search(p.regex, shown, re.MULTILINE)), None)


def check_screen(deps: Deps, run: RunRow) -> tuple[bool, agents.FailurePattern | None]:
    """For an agent gone quiet: a known failure on its screen (returned), or a prompt it waits
    at (the run is marked waiting, as the Notification hook would). First: False while the
    screen is not settled (a host's capture under way, or the host did not answer and the end
    of the log was read): looked at again on a later pass."""
    preset = agents.for_agent(getattr(deps.project.config.agents, run.role))
    if not preset.failure_patterns and not preset.waiting_patterns:
        return True, None
    got = screen(deps, run)
    if got is None:
        return False, None
    shown, settled = got
    found = preset.failure(shown)
    if found is not None or run.waiting_since is not None:
        return True, found
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
        return True, None
    return settled, None
