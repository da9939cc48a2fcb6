"""The controlling machine as a host: commands run directly, paths are the project's own."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from hatchctl.config import LOCAL_HOST
from hatchctl.hosts.base import Host, relative_inside
from hatchctl.runtime import proc
from hatchctl.runtime.tmux import Tmux


class LocalHost(Host):
    def __init__(self, project_root: Path, *, max_active: int = 2) -> None:
        self.name = LOCAL_HOST
        self.project_root = project_root
        self.max_active = max_active
        self.labels = ()

    @property
    def root(self) -> PurePosixPath:
        return PurePosixPath(self.project_root)

    @property
    def address(self) -> str:
        return LOCAL_HOST

    def run(
        self,
        argv: list[str],
        *,
        timeout: float,
        input_text: str | None = None,
        check: bool = True,
        cwd: PurePosixPath | None = None,
    ) -> proc.Result:
        env = {k: v for k, v in os.environ.items() if k != "HATCH_JOB_KEY"}
        return proc.run(
            argv,
            timeout=timeout,
            input_text=input_text,
            check=check,
            cwd=str(cwd) if cwd is not None else None,
            env=env,
        )

    def tmux(self, socket: str, *, timeout: float, tag: str | None = None) -> Tmux:
        return Tmux(socket, timeout=timeout, tag=tag)

    def map_path(self, project_root: Path, path: Path) -> PurePosixPath:
        return PurePosixPath(project_root) / relative_inside(project_root, path)
