"""Shared fixtures. Every test has a hard time limit (no test may hang CI) and NO_COLOR is unset."""

from __future__ import annotations

import faulthandler
import gc
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hatchctl import logsetup
from hatchctl.config import parse_config
from hatchctl.engine.deps import Deps
from hatchctl.project import Project
from hatchctl.runtime.notify import Notifier
from hatchctl.runtime.scripts import Scripts, builtin_root
from hatchctl.runtime.tmux import Tmux
from tests import forkrun

os.environ.pop("NO_COLOR", None)
# the venv first on PATH, as if activated: `python3` in acceptance commands is then this venv's
# interpreter, not a version manager's shim (pyenv's costs ~15 processes and 70 ms per call)
_VENV_BIN = str(Path(sys.executable).parent)
if os.environ.get("PATH", "").split(os.pathsep)[0] != _VENV_BIN:
    os.environ["PATH"] = os.pathsep.join([_VENV_BIN, os.environ.get("PATH", "")])
os.environ.setdefault("GIT_AUTHOR_NAME", "hatchctl tests")
os.environ.setdefault("GIT_AUTHOR_EMAIL", "tests@hatchctl.invalid")
os.environ.setdefault("GIT_COMMITTER_NAME", "hatchctl tests")
os.environ.setdefault("GIT_COMMITTER_EMAIL", "tests@hatchctl.invalid")

logsetup.configure(None)  # structlog's default would print to stdout

TEST_TIME_LIMIT = float(os.environ.get("HATCH_TEST_TIME_LIMIT", "90"))
HATCHCTL = [sys.executable, "-m", "hatchctl"]


# The longest tests start first, so that with xdist no worker is left running one of them alone
# at the end while the others idle (about 25-50 s each; tests/e2e/test_chaos.py the longest).
SLOW_FIRST = (  # the files of the longest tests (--durations), longest first
    "tests/e2e/test_chaos.py",
    "tests/hosts/test_remote_activity.py",
    "tests/hosts/test_remote_loop.py",
    "tests/hosts/test_remote_run.py",
    "tests/integration/test_disk_full.py",
    "tests/e2e/test_demo.py",
    "tests/integration/test_preset_screens.py",
    "tests/agents/test_claude_code.py",
    "tests/agents/test_preset_failures.py",
    "tests/agents/test_aider.py",
    "tests/hosts/test_remote_reaper.py",
    "tests/agents/test_preset_cli_flags.py",
    "tests/integration/test_pipeline.py",
    "tests/hosts/test_remote_sandbox.py",
    "tests/integration/test_supervision.py",
    "tests/tui/test_keys_supervised.py",
    "tests/tui/test_app.py",
    "tests/e2e/test_ui_tmux.py",
    "tests/hosts/test_remote_screen.py",
    "tests/tui/test_message.py",
    "tests/tui/test_review_keys.py",
    "tests/security/test_symlinks_agents.py",
    "tests/hosts/test_remote_stream.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::")[0]
        return SLOW_FIRST.index(path) if path in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)  # stable: the order within a file and among the rest is kept


# Python's cyclic garbage collector, in this test process: what is loaded by now (pytest,
# hatchctl, Textual: ~200k objects) is never scanned again, and collections run rarely. A
# Textual app makes and keeps alive ~100k objects for the seconds a test takes, so with the
# default thresholds (700, 10, 10) full collections of the whole heap ran again and again: a
# quarter of the control room tests' CPU. Nothing a test asserts depends on when cycles are
# freed (they still are). The processes under test (supervisors, CLI calls) keep the defaults.
GC_THRESHOLDS = (20_000, 50, 100)


def pytest_collection_finish(session: pytest.Session) -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


@pytest.fixture(autouse=True)
def _time_limit(request: pytest.FixtureRequest) -> Iterator[None]:
    """Dump every thread's stack and exit if a test runs past the limit (a hung test fails CI).
    A long test names its own limit: ``@pytest.mark.time_limit(SECONDS)``."""
    marker = request.node.get_closest_marker("time_limit")
    limit = float(marker.args[0]) if marker else TEST_TIME_LIMIT
    faulthandler.dump_traceback_later(limit, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def make_repo(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "--quiet", "--initial-branch=main")
    (root / "README.md").write_text("test repo\n")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "initial")
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def hatchctl(
    *args: str,
    cwd: Path | None = None,
    timeout: float = 60,
    env: dict[str, str] | None = None,
    fresh: bool = False,
) -> subprocess.CompletedProcess[str]:
    """`python -m hatchctl ARGS` as its own process, finished: a fork of an interpreter that
    imported hatchctl once (tests/forkrun.py: ~0.2 CPU-s of imports less per call), or with
    ``fresh`` a new interpreter (for a claim about the program's own start)."""
    if not fresh:
        return forkrun.pool().run(*args, cwd=cwd, timeout=timeout, env=env)
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [*HATCHCTL, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env
    )


def write_spec(specs: Path, task_id: str, front: str = "", body: str = "Do it.") -> Path:
    specs.mkdir(parents=True, exist_ok=True)
    path = specs / f"{task_id}.md"
    path.write_text(f"---\nid: {task_id}\ntitle: Task {task_id}\n{front}---\n{body}\n")
    return path


def offline_deps(root: Path, toml: str = "", *, active: str | None = "T") -> Deps:
    """Engine dependencies for tests that make no tmux or script call: a real store in ``root``
    and, unless ``active`` is None, one active task in its factory phase."""
    (root / "hatch.toml").write_text(toml)
    project = Project(
        root=root, config_path=root / "hatch.toml", config=parse_config(toml, root / "hatch.toml")
    )
    store = project.open_store()
    if active is not None:
        with store.tx() as tx:
            tx.insert_task(active, title=active)
            tx.transition_task(active, "pending", "active", phase="factory", iteration=1)
    return Deps(
        project,
        store,
        Tmux("unused"),
        Scripts(builtin_root(), timeout=1),
        Notifier([], 1),
        rng=random.Random(0),
    )


def poll(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Wait for ``predicate`` to hold (a condition, never a fixed sleep); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
