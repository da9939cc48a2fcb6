"""Helpers shared by commands: find the project, configure logging, open the store."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from hatchctl import logsetup
from hatchctl.errors import HatchError
from hatchctl.project import Project

if TYPE_CHECKING:
    from hatchctl.engine.deps import Deps


def start_dir(args: argparse.Namespace) -> Path:
    directory: Path | None = getattr(args, "directory", None)
    if directory is None:
        return Path.cwd()
    if not directory.is_dir():
        raise HatchError(f"-C {directory}: not a directory")
    return directory


def load_project(args: argparse.Namespace) -> Project:
    project = Project.find(start_dir(args))
    cfg = project.config.log
    project.paths.orchestrator_log.parent.mkdir(parents=True, exist_ok=True)
    logsetup.configure(project.paths.orchestrator_log, max_bytes=cfg.max_bytes, backups=cfg.backups)
    return project


def build_deps(project: Project) -> Deps:
    """Everything the engine needs, built once here and passed in."""
    from hatchctl.engine.deps import Deps  # the engine's: not for read commands (status)
    from hatchctl.runtime.notify import Notifier
    from hatchctl.runtime.scripts import Scripts, scripts_root
    from hatchctl.runtime.tmux import Tmux

    cfg = project.config
    store = project.open_store()
    root = scripts_root(project.root / cfg.project.scripts_dir if cfg.project.scripts_dir else None)
    return Deps(
        project=project,
        store=store,
        tmux=Tmux(project.tmux_socket, timeout=cfg.limits.tmux_timeout, tag=project.key),
        scripts=Scripts(root, timeout=cfg.limits.script_timeout),
        notifier=Notifier(cfg.notify.command, cfg.notify.timeout),
    )
