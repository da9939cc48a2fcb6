"""structlog -> JSON lines in ``.hatch/logs/orchestrator/hatchctl.jsonl``, size-capped and rotated.

Event names are stable snake_case strings (``run_launched``, ``task_failed``...). Nothing is ever
written to the terminal by the logger: a UI may own it. Not even on a write error (a full disk):
the records that could not be written are counted, and one ``log_records_dropped`` line with the
count is written once writing works again (``logging``'s default prints a traceback per record).
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.handlers
import sys
import threading
import time
from pathlib import Path
from typing import Any

_LOGGER_NAME = "hatchctl"
_configured = False  # structlog is imported and configured at the first event (see _structlog)


class QuietRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler that never prints a traceback when a record cannot be written: it
    counts it in ``dropped``, drops the file object (whatever it buffered is gone with it; the
    next record reopens the file) and, at the first record written afterwards, writes one
    ``log_records_dropped`` line with the count before it."""

    dropped = 0
    _failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        self.dropped += 1
        self._failed = True
        stream, self.stream = self.stream, None
        if stream is not None:
            with contextlib.suppress(Exception):  # closing flushes: that fails the same way
                stream.close()

    def emit(self, record: logging.LogRecord) -> None:
        if self.dropped:
            count = self.dropped
            self._failed = False
            super().emit(_dropped_notice(count, after_partial_line=self._ends_mid_line()))
            if self._failed:  # still cannot write: this record goes the same way
                self.dropped = count + 1
                return
            self.dropped = 0
        super().emit(record)

    def _ends_mid_line(self) -> bool:
        """Whether a failed write left part of a line at the end of the file."""
        try:
            with open(self.baseFilename, "rb") as f:
                if f.seek(0, 2) == 0:
                    return False
                f.seek(-1, 2)
                return f.read(1) != b"\n"
        except OSError:
            return False


def _dropped_notice(count: int, *, after_partial_line: bool) -> logging.LogRecord:
    line = json.dumps(
        {
            "count": count,
            "event": "log_records_dropped",
            "level": "warning",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
        },
        sort_keys=True,
    )
    if after_partial_line:  # end the torn line: the notice is a line of its own
        line = "\n" + line
    return logging.LogRecord(_LOGGER_NAME, logging.WARNING, __file__, 0, line, None, None)


def configure(path: Path | None, *, max_bytes: int = 5_000_000, backups: int = 3) -> None:
    """Send structlog events to ``path`` (JSON lines). ``None`` discards them."""
    std = logging.getLogger(_LOGGER_NAME)
    for handler in list(std.handlers):
        std.removeHandler(handler)
        handler.close()
    std.propagate = False
    std.setLevel(logging.DEBUG)
    if path is None:
        std.addHandler(logging.NullHandler())
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = QuietRotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
        std.addHandler(handler)
    global _configured
    _configured = False
    if "structlog" in sys.modules:  # already in use in this process: the new settings now
        _structlog()


class _RichUnavailable:
    """A meta path finder: ``import rich`` (or a submodule) fails in the thread that made it,
    as if rich were not installed. Other threads import rich as usual (see _import_structlog)."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if threading.get_ident() == self.thread and name.partition(".")[0] == "rich":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def _import_structlog() -> Any:
    """``import structlog``, without rich when this process has not loaded rich already.

    structlog imports rich (about 40 ms of a command's start) only to offer console
    tracebacks and pretty reprs; events here go as JSON lines to a file, and their
    tracebacks come from ``format_exc_info`` (the traceback module). So while structlog is
    imported, ``import rich`` fails in this thread, which structlog handles: it takes its
    path for rich not being installed. Afterwards rich imports as usual (Textual). A process
    that has rich loaded (the control room) imports structlog as it is.
    """
    if "structlog" in sys.modules or "rich" in sys.modules:
        import structlog

        return structlog
    finder = _RichUnavailable()
    sys.meta_path.insert(0, finder)
    try:
        import structlog
    finally:
        sys.meta_path.remove(finder)
    return structlog


def _structlog() -> Any:
    """structlog, configured. Imported only when something is logged: a short command such
    as `hatchctl status` never needs it (see also _import_structlog)."""
    global _configured
    structlog = _import_structlog()

    if not _configured:
        _configured = True
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(sort_keys=True),
            ],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
            cache_logger_on_first_use=False,
        )
    return structlog


class _LazyLogger:
    """What ``get`` returns: a structlog logger bound on first use (same methods)."""

    __slots__ = ("_context", "_logger")

    def __init__(self, context: dict[str, Any]) -> None:
        self._context = context
        self._logger: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._logger is None:
            self._logger = _structlog().get_logger(_LOGGER_NAME).bind(**self._context)
        return getattr(self._logger, name)


def get(**context: Any) -> Any:
    """A bound logger. Loggers are always named 'hatchctl' so configure() governs them."""
    return _LazyLogger(context)
