"""Helpers shared by commands: find the project, configure logging, open the store."""

from __future__ import annotations

import argparse
from pathlib import Path

from hatchctl import logsetup
from hatchctl.errors import HatchError
from hatchctl.project import Project


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
