"""Handover summaries and ``.stop`` signals: pydantic models plus loaders with one-line errors."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hatchctl.errors import SummaryError

FACTORY_STATUSES = ("completed", "partial", "failed")
QA_STATUSES = ("approved", "rejected")
SCHEMA_VERSION = 1
MAX_AGENT_FILE = 1 << 20  # bytes: a summary or .stop file is a few KiB


class TestResults(BaseModel):
    model_config = ConfigDict(extra="allow")
    passed: int = Field(ge=0)
    failed: int = Field(ge=0)


class LocAnalysis(BaseModel):
    model_config = ConfigDict(extra="allow")
    actual: int = Field(ge=0)
    cap: int | None = None


class Metrics(BaseModel):
    model_config = ConfigDict(extra="allow")
    turns: int | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None


class Summary(BaseModel):
    """A handover summary. Unknown fields are kept (extra="allow"), not fatal."""

    model_config = ConfigDict(extra="allow")

    schema_version: int = SCHEMA_VERSION
    task_id: str
    role: Literal["factory", "qa"]
    iteration: int = Field(ge=1)
    status: str
    implementation_files: list[str] = Field(default_factory=list)
    commits: list[str] = Field(default_factory=list)
    test_results: TestResults | None = None
    loc_analysis: LocAnalysis | None = None
    findings: list[str | dict[str, Any]] = Field(default_factory=list)
    next_steps: list[str] = Field(default_factory=list)
    handover_notes: str = ""
    metrics: Metrics | None = None

    @model_validator(mode="after")
    def _status_fits_role(self) -> Summary:
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {self.schema_version} is not supported "
                f"(this hatchctl reads version {SCHEMA_VERSION})"
            )
        allowed = FACTORY_STATUSES if self.role == "factory" else QA_STATUSES
        if self.status not in allowed:
            raise ValueError(
                f"status {self.status!r} is not one of {'|'.join(allowed)} for {self.role}"
            )
        return self

    def finding_texts(self) -> list[str]:
        out = []
        for f in self.findings:
            if isinstance(f, str):
                out.append(f)
            else:
                where = ":".join(str(f[k]) for k in ("file", "line") if k in f)
                msg = str(f.get("message") or f.get("text") or json.dumps(f, sort_keys=True))
                out.append(f"{where}: {msg}" if where else msg)
        return out


class StopSignal(BaseModel):
    model_config = ConfigDict(extra="allow")

    task_id: str
    role: Literal["factory", "qa"]
    iteration: int
    attempt: int
    reason: Literal["exit", "hook"]
    exit_code: int | None = None
    at: str = ""


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "summary"
    return f"{loc}: {err['msg']}"


def read_agent_file(path: Path, what: str = "file", limit: int = MAX_AGENT_FILE) -> bytes:
    """The bytes of a file an agent can write (summary, .stop, handover), read safely: never
    through a symbolic link (O_NOFOLLOW), never blocking on a FIFO (O_NONBLOCK), only a regular
    file, at most ``limit`` bytes. Anything else is one SummaryError line."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise SummaryError(f"{what} {path.name} does not exist") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SummaryError(f"{what} {path.name} is a symbolic link (not followed)") from None
        raise SummaryError(f"{what} {path.name} is unreadable: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SummaryError(f"{what} {path.name} is not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise SummaryError(f"{what} {path.name} is unreadable: {exc.strerror}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise SummaryError(f"{what} {path.name} is larger than {limit} bytes")
    return b"".join(chunks)


def _read_json(path: Path, what: str) -> Any:
    try:
        raw = read_agent_file(path, what).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SummaryError(f"{what} {path.name} is unreadable: {exc}") from None
    if _too_deep(raw):
        raise SummaryError(f"{what} {path.name} nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SummaryError(f"{what} {path.name} is not valid JSON: {exc}") from None
    except RecursionError:  # belt and braces: _too_deep already refuses such input
        raise SummaryError(f"{what} {path.name} nests too deeply") from None


MAX_JSON_DEPTH = 64


def _too_deep(raw: str) -> bool:
    """Whether brackets nest deeper than MAX_JSON_DEPTH (counted outside strings), checked
    before json.loads, which would recurse once per level."""
    if raw.count("[") + raw.count("{") <= MAX_JSON_DEPTH:
        return False  # cannot nest deeper than it has brackets
    depth = 0
    in_string = escaped = False
    for ch in raw:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def load_summary(path: Path, *, task_id: str, role: str, iteration: int) -> Summary:
    """Load and validate a summary, checking it is for this task, role and iteration."""
    data = _read_json(path, "summary")
    if not isinstance(data, dict):
        raise SummaryError(f"summary {path.name} is not a JSON object")
    try:
        summary = Summary.model_validate(data)
    except ValidationError as exc:
        raise SummaryError(f"summary {path.name} is invalid: {_first_error(exc)}") from None
    expected = (task_id, role, iteration)
    got = (summary.task_id, summary.role, summary.iteration)
    if got != expected:
        raise SummaryError(
            f"summary {path.name} is for {got[0]}/{got[1]}/iteration {got[2]}, "
            f"expected {expected[0]}/{expected[1]}/iteration {expected[2]}"
        )
    return summary


def load_stop(path: Path) -> StopSignal:
    data = _read_json(path, "stop file")
    if not isinstance(data, dict):
        raise SummaryError(f"stop file {path.name} is not a JSON object")
    try:
        return StopSignal.model_validate(data)
    except ValidationError as exc:
        raise SummaryError(f"stop file {path.name} is invalid: {_first_error(exc)}") from None
