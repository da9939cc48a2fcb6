"""logsetup imports structlog without rich (see logsetup._import_structlog): a logged exception
still lands in the JSON log with its traceback, and rich and Textual import as usual afterwards.
Each case runs in a fresh interpreter: whether rich is loaded is a property of the process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

_NO_RICH_YET = r"""
import json, sys
from pathlib import Path
from hatchctl import logsetup

assert "rich" not in sys.modules and "structlog" not in sys.modules
logsetup.configure(Path(sys.argv[1]))
log = logsetup.get(component="test")

def tick():
    raise ZeroDivisionError("boom")

try:
    tick()
except ZeroDivisionError:
    log.exception("tick_failed", task_id="T-1")
structlog_without_rich = "structlog" in sys.modules and "rich" not in sys.modules
assert not any(isinstance(f, logsetup._RichUnavailable) for f in sys.meta_path)  # removed

import rich.pretty, rich.traceback  # noqa: E401
from textual.app import App

log.info("after_rich", app=App.__name__, pretty=rich.pretty.pretty_repr([1]))
print(json.dumps({"structlog_without_rich": structlog_without_rich}))
"""

_RICH_LOADED = r"""
import json, sys
from pathlib import Path
import rich
from hatchctl import logsetup

logsetup.configure(Path(sys.argv[1]))
logsetup.get().info("with_rich")
import structlog.dev
print(json.dumps({"dev_has_rich": structlog.dev.rich is rich}))
"""


def _run(script: str, log: Path) -> tuple[dict[str, bool], list[dict[str, str]]]:
    proc = subprocess.run(
        [sys.executable, "-c", script, str(log)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    return json.loads(proc.stdout), lines


def test_exception_traceback_lands_in_json_log_and_rich_imports_afterwards(
    tmp_path: Path,
) -> None:
    out, lines = _run(_NO_RICH_YET, tmp_path / "hatchctl.jsonl")
    assert out == {"structlog_without_rich": True}
    failed, after = lines
    assert failed["event"] == "tick_failed" and failed["level"] == "error"
    assert failed["task_id"] == "T-1" and failed["component"] == "test"
    tb = failed["exception"]
    assert tb.startswith("Traceback (most recent call last):")
    assert "in tick" in tb and tb.rstrip().endswith("ZeroDivisionError: boom")
    assert after["event"] == "after_rich" and after["app"] == "App"
    assert after["pretty"] == "[1]"


def test_a_process_with_rich_loaded_imports_structlog_as_it_is(tmp_path: Path) -> None:
    out, lines = _run(_RICH_LOADED, tmp_path / "hatchctl.jsonl")
    assert out == {"dev_has_rich": True}
    assert [line["event"] for line in lines] == ["with_rich"]
