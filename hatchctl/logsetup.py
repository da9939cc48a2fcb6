"""structlog -> JSON lines in ``.hatch/logs/orchestrator/hatchctl.jsonl``, size-capped and rotated.

Event names are stable snake_case strings (``run_launched``, ``task_failed``...). Nothing is ever
written to the terminal by the logger: a UI may own it.
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path
from typing import Any

import structlog

_LOGGER_NAME = "hatchctl"


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
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
        std.addHandler(handler)
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


def get(**context: Any) -> Any:
    """A bound logger. Loggers are always named 'hatchctl' so configure() governs them."""
    return structlog.get_logger(_LOGGER_NAME).bind(**context)
