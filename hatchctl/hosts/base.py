"""One interface for every machine hatchctl runs agents on: the controller itself (``local``)
and the ``[hosts.NAME]`` of hatch.toml reached with OpenSSH.

A host runs a command (an argv list, always with a timeout), gives the tmux server of a
project on it (hatchctl.runtime.tmux.Tmux, its calls made through the host), and maps a path
of the project on the controller to where the same file lives on the host.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from pathlib import Path, PurePosixPath

from hatchctl.errors import HostError
from hatchctl.runtime import proc
from hatchctl.runtime.tmux import Tmux


def project_dir_name(project_root: Path) -> str:
    """The directory of one project under a host's root: readable and unique per controller
    directory (the same key as the project's tmux socket)."""
    from hatchctl.project import project_key

    name = re.sub(r"[^A-Za-z0-9_-]+", "-", project_root.name).strip("-_")[:40] or "project"
    return f"{name}-{project_key(project_root)}"


def relative_inside(project_root: Path, path: Path) -> PurePosixPath:
    """``path`` relative to ``project_root`` (both normalised, never resolved: a link is not
    followed); HostError when it is outside the project."""
    root = PurePosixPath(os.path.normpath(project_root))
    target = PurePosixPath(os.path.normpath(path if path.is_absolute() else project_root / path))
    try:
        return target.relative_to(root)
    except ValueError:
        raise HostError(f"{path} is outside the project {project_root}") from None


class Host(ABC):
    """A machine agents can run on. ``name`` is ``local`` or the NAME of ``[hosts.NAME]``."""

    name: str
    max_active: int
    labels: tuple[str, ...]

    @property
    @abstractmethod
    def root(self) -> PurePosixPath:
        """Where hatchctl keeps its clones and worktrees on this host."""

    @property
    @abstractmethod
    def address(self) -> str:
        """How a person would reach it (``local`` or the ssh destination), for listings."""

    @abstractmethod
    def run(
        self,
        argv: list[str],
        *,
        timeout: float,
        input_text: str | None = None,
        check: bool = True,
        cwd: PurePosixPath | None = None,
    ) -> proc.Result:
        """Run ``argv`` on the host (each argument reaches the program literally) and wait at
        most ``timeout`` seconds. Raises CommandError (non-zero exit with ``check``),
        CommandTimeout, and HostUnreachable for a remote host that cannot be reached."""

    @abstractmethod
    def tmux(self, socket: str, *, timeout: float, tag: str | None = None) -> Tmux:
        """The private tmux server ``socket`` on this host."""

    @abstractmethod
    def map_path(self, project_root: Path, path: Path) -> PurePosixPath:
        """Where ``path`` (of the project at ``project_root`` on the controller) is on this host."""

    def close(self) -> None:  # noqa: B027  (optional: only a remote host holds a connection)
        """Release what the host holds open (a remote host's master connection)."""
