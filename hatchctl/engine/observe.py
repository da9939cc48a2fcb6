"""What hatchctl learns about a live run besides its stop: that it waits for the user (Claude
Code's Notification hook writes ``<stop>.wait``), and its metrics (tokens, turns, model, cost)
from Claude Code's transcript or the summary. Every file read here is agent-written: read with
O_NOFOLLOW, regular files only, bounded."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hatchctl import agents
from hatchctl.engine.deps import Deps
from hatchctl.errors import SummaryError, TmuxError
from hatchctl.runtime.logfile import strip_ansi, tail_bytes
from hatchctl.state import metrics, secret
from hatchctl.state.rows import RunRow
from hatchctl.state.summary import StopSignal, Summary, read_agent_file

TRANSCRIPT_LIMIT = 64 * 1024 * 1024


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


def note_stop(deps: Deps, run: RunRow, stop: StopSignal) -> None:
    """Keep what a stop tells besides the stop itself: the transcript's path."""
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
        with deps.store.tx() as tx:
            tx.update_run(run.id, transcript_path=path)


def _lines(path: Path) -> Iterator[bytes]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise SummaryError(f"transcript {path.name}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise SummaryError(f"transcript {path.name} is not a regular file")
        read = 0
        for line in f:
            read += len(line)
            if read > TRANSCRIPT_LIMIT:
                break
            yield line


def collect(deps: Deps, run: RunRow, summary: Summary | None = None) -> dict[str, Any]:
    """The run's metrics from its transcript (else its summary), with its wall time; stored."""
    found: dict[str, Any] = {}
    if run.transcript_path:
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
    """What the agent's screen shows: its live pane, else the end of its log (ANSI stripped)."""
    if run.pane_id:
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
