"""Issue 9: a read-only control room attaches read-only (``attach-session -r``), checked on a
real private tmux server: a client attached with the UI's argv reports client_readonly = 1."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hatchctl.errors import TmuxError
from hatchctl.runtime.tmux import Tmux
from tests.tui.test_app import app_for, fixed_project, settle

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


@contextlib.contextmanager
def server(prefix: str) -> Iterator[Tmux]:
    tmux = Tmux(f"{prefix}-{uuid.uuid4().hex[:8]}", timeout=10)
    try:
        yield tmux
    finally:
        with contextlib.suppress(TmuxError):
            tmux.run("kill-server", check=False)


def clients(tmux: Tmux) -> list[str]:
    out = tmux.run("list-clients", "-F", "#{client_readonly}", check=False).stdout
    return out.split()


@needs_tmux
def test_read_only_attach_makes_a_read_only_client() -> None:
    with server("hatch-ro-target") as target, server("hatch-ro-host") as host:
        target.run("new-session", "-d", "-s", "hatch", "-x", "80", "-y", "24", "sleep", "300")
        pane = target.run("list-panes", "-a", "-F", "#{pane_id}").stdout.split()[0]
        argv = target.attach_argv(pane, read_only=True)
        assert argv[argv.index("attach-session") + 1] == "-r"
        assert "-r" not in target.attach_argv(pane)
        # a real terminal for the client: a pane of another private server
        host.run(
            "new-session", "-d", "-s", "host", "-x", "100", "-y", "30", "env", "-u", "TMUX", *argv
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not clients(target):
            time.sleep(0.1)
        assert clients(target) == ["1"]


async def test_read_only_ui_attaches_with_r(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, store = fixed_project(tmp_path)
    ran: list[list[str]] = []

    def fake_run(argv: list[str], **_kw: Any) -> None:
        ran.append(argv)

    monkeypatch.setattr(subprocess, "run", fake_run)  # the one the app calls
    app = app_for(project, store, read_only=True)
    monkeypatch.setattr(app, "suspend", contextlib.nullcontext)
    async with app.run_test(size=(140, 32)) as pilot:
        await settle(pilot, app)
        await pilot.press("a")
        await pilot.pause(0.1)
    assert len(ran) == 1 and ran[0][ran[0].index("attach-session") + 1] == "-r"
