"""The pure core (state, engine) and the command line never import Textual."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "modules",
    [
        "hatchctl.state, hatchctl.engine",
        "hatchctl.engine.supervisor, hatchctl.engine.monitor, hatchctl.engine.jobrunner, "
        "hatchctl.engine.commands, hatchctl.engine.reconcile, hatchctl.engine.progress",
        "hatchctl.state.store, hatchctl.state.spec, hatchctl.state.sync, hatchctl.state.snapshot",
        "hatchctl.cli, hatchctl.cmds.run, hatchctl.cmds.control, hatchctl.cmds.inspect",
    ],
)
def test_core_does_not_import_textual(modules: str) -> None:
    code = f"import {modules}, sys; assert 'textual' not in sys.modules, 'textual imported'"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr


def test_state_does_not_import_runtime_adapters() -> None:
    code = (
        "import pkgutil, importlib, sys, hatchctl.state as s\n"
        "for m in pkgutil.iter_modules(s.__path__): importlib.import_module('hatchctl.state.' + m.name)\n"
        "bad = [m for m in sys.modules if m.startswith(('hatchctl.runtime', 'hatchctl.engine', "
        "'hatchctl.tui', 'textual', 'watchdog'))]\n"
        "assert not bad, bad\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
