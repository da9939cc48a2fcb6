"""Real projects in temp dirs: real git, a real private tmux server per test, the real sim agent."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hatchctl import logsetup
from hatchctl.cmds.common import build_deps
from hatchctl.engine.deps import Deps
from hatchctl.engine.supervisor import Supervisor
from hatchctl.project import Project
from hatchctl.runtime.gitrepo import exclude_hatch_paths
from hatchctl.runtime.scripts import Scripts, builtin_root, unmount_all_under
from hatchctl.runtime.tmux import Tmux
from hatchctl.state.rows import TaskRow
from tests import forkrun
from tests.conftest import git, make_repo

FAST_LIMITS: dict[str, Any] = {
    "max_active": 3,
    "run_timeout": "60s",
    "idle_timeout": "30s",
    "test_timeout": "30s",
    "summary_timeout": "3s",
    "summary_requests": 1,
    "kill_grace": "0.5s",
    "tick": "0.1s",
    "restart": {"initial_backoff": "0.1s", "max_backoff": "0.3s", "max_restarts": 2, "jitter": 0.0},
}


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(v)


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    out = []
    if prefix and scalars:
        out.append(f"[{prefix}]")
    out.extend(f"{k} = {_toml_value(v)}" for k, v in scalars.items())
    for k, v in tables.items():
        out.append(to_toml(v, f"{prefix}.{k}" if prefix else k))
    return "\n".join(out) + "\n"


def deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = (
            deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        )
    return out


def spec_text(task_id: str, **front: Any) -> str:
    body = front.pop("body", f"Task {task_id}.")
    front.setdefault("title", f"Task {task_id}")
    lines = [f"id: {task_id}"] + [f"{k}: {json.dumps(v)}" for k, v in front.items()]
    return "---\n" + "\n".join(lines) + "\n---\n" + body + "\n"


class Projects:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.made: list[Project] = []

    def make(
        self,
        specs: dict[str, dict[str, Any]],
        config: dict[str, Any] | None = None,
        files: dict[str, str] | None = None,
    ) -> Project:
        root = make_repo(self.tmp / f"proj{len(self.made)}")
        name = f"t{uuid.uuid4().hex[:10]}"
        cfg = deep_merge(
            {"project": {"name": name, "base_ref": "main"}, "limits": FAST_LIMITS}, config or {}
        )
        (root / "hatch.toml").write_text(to_toml(cfg))
        (root / "specs").mkdir()
        for task_id, front in specs.items():
            (root / "specs" / f"{task_id}.md").write_text(spec_text(task_id, **front))
        for rel, content in (files or {}).items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(content)
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "project")
        exclude_hatch_paths(root)
        project = Project.find(root)
        self.made.append(project)
        return project

    def cleanup(self) -> None:
        for p in self.made:
            Tmux(p.tmux_socket).kill_server()
            with contextlib.suppress(Exception):
                unmount_all_under(Scripts(builtin_root(), timeout=30), p.root)


@pytest.fixture
def projects(tmp_path: Path) -> Iterator[Projects]:
    ps = Projects(tmp_path)
    yield ps
    ps.cleanup()


def drain(project: Project, time_limit: float = 45.0) -> tuple[int, dict[str, TaskRow], Deps]:
    """Run a supervisor in this process until nothing can make progress."""
    logsetup.configure(project.paths.orchestrator_log)
    deps = build_deps(project)
    code = Supervisor(deps, until_drained=True, time_limit=time_limit).run()
    return code, {t.id: t for t in deps.store.tasks()}, deps


def kinds(deps: Deps, task_id: str) -> list[str]:
    return [e.kind for e in deps.store.events(task_id)]


Make = Callable[..., Project]


class SupervisorProcess:
    """`hatchctl run` in a child process, as a user runs it (tests/forkrun.py: a fork of an
    interpreter that imported hatchctl once; `proc` is Popen-like)."""

    def __init__(self, project: Project, *args: str) -> None:
        self.project = project
        self.log = open(project.root / f"supervisor-{uuid.uuid4().hex[:6]}.out", "w")  # noqa: SIM115
        log = Path(self.log.name)  # stdout and stderr, appended
        # its own `python -m hatchctl` process, forked from an interpreter that imported hatchctl
        self.proc = forkrun.pool().popen(["-C", str(project.root), "run", *args], log, log)

    def wait_running(self, timeout: float = 15.0) -> int:
        from hatchctl.state.lockfile import probe

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = probe(self.project.paths.supervisor_lock)
            if info.held and info.pid == self.proc.pid:
                return self.proc.pid
            assert self.proc.poll() is None, self.output()
            time.sleep(0.02)
        raise AssertionError("the supervisor did not take its lock")

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()

    def wait(self, timeout: float = 60.0) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop it as a signal does (SIGTERM: it finishes its pass and exits), where a test's
        end is not about `hatchctl down` (each CLI call is a new interpreter, ~0.2 CPU-s)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def notify_recorder(path: Path) -> list[str]:
    """A notify command that appends the JSON it receives on stdin to ``path``, one per line
    (one write each: notifications sent at once never interleave in the file)."""
    return [
        sys.executable,
        "-c",
        f"import sys; open({str(path)!r}, 'a').write(sys.stdin.read() + '\\n')",
    ]


def hatchctl_here(*args: str) -> subprocess.CompletedProcess[str]:
    """A ``hatchctl`` command that reads (status, events, review, validate, plan --list) or is
    refused before it acts, run in this process: the same parser, command code, output and exit
    status as the CLI, without the ~0.2 CPU-s of starting an interpreter. Commands that act, or
    whose claim is about a process of their own, run as subprocesses (tests.conftest.hatchctl)."""
    from hatchctl import cli

    out, err = io.StringIO(), io.StringIO()
    umask = os.umask(0o077)  # cli.main sets the CLI's umask: this process's is kept
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(list(args))
            except SystemExit as exc:  # argparse's usage errors and --help
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.umask(umask)
        logsetup.configure(None)  # the command logged to its project's log: nowhere again
    return subprocess.CompletedProcess(["hatchctl", *args], code, out.getvalue(), err.getvalue())
