"""An agent CLI given by path under the private /tmp stays whole in the sandbox: its
node_modules (codex finds its binary in a sibling package) or its virtualenv (aider)."""

from __future__ import annotations

from pathlib import Path

from hatchctl.runtime.sandbox import program_roots


def test_npm_and_venv_programs_expose_their_package_roots(tmp_path: Path) -> None:
    mods = tmp_path / "clis" / "node_modules"
    (mods / ".bin").mkdir(parents=True)
    (mods / "@openai" / "codex" / "bin").mkdir(parents=True)
    target = mods / "@openai" / "codex" / "bin" / "codex.js"
    target.write_text("//\n")
    link = mods / ".bin" / "codex"
    link.symlink_to("../@openai/codex/bin/codex.js")
    assert program_roots(link) == (link, mods, target)

    venv = tmp_path / "aider-venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "bin" / "aider").write_text("#!/bin/sh\n")
    assert program_roots(venv / "bin" / "aider") == (venv / "bin" / "aider", venv)

    plain = tmp_path / "agent.sh"
    plain.write_text("#!/bin/sh\n")
    assert program_roots(plain) == (plain,)
