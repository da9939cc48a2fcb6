"""A hatch project: root, config, on-disk paths; opens the store and loads the specs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from hatchctl.config import HatchConfig, find_config, load_config
from hatchctl.state.paths import ProjectPaths
from hatchctl.state.snapshot import SnapshotExporter
from hatchctl.state.spec import SpecSet, load_specs
from hatchctl.state.store import Store


def project_key(root: Path) -> str:
    """A short key unique to one project directory on this machine (``root`` resolved)."""
    return hashlib.sha1(str(root).encode(), usedforsecurity=False).hexdigest()[:10]


def tmux_socket(name: str, root: Path) -> str:
    """The project's private tmux server: its name and the key of its directory, so projects
    with the same name in different directories never share a server (or kill each other's
    agents as strays)."""
    return f"hatch-{name}-{project_key(root.resolve())}"


@dataclass(frozen=True)
class Project:
    root: Path
    config_path: Path
    config: HatchConfig

    @classmethod
    def find(cls, start: Path) -> Project:
        path = find_config(start)
        return cls(root=path.parent.resolve(), config_path=path, config=load_config(path))

    @property
    def name(self) -> str:
        return self.config.project.name

    @property
    def paths(self) -> ProjectPaths:
        return ProjectPaths(self.root)

    @property
    def specs_dir(self) -> Path:
        return self.paths.inside(self.root / self.config.project.specs_dir)

    @property
    def planning_dir(self) -> Path:
        rel = self.config.project.planning_dir or self.config.project.specs_dir
        return self.paths.inside(self.root / rel)

    @property
    def key(self) -> str:
        return project_key(self.root)

    @property
    def tmux_socket(self) -> str:
        return tmux_socket(self.name, self.root)

    def load_specs(self) -> SpecSet:
        return load_specs(self.specs_dir)

    def open_store(self) -> Store:
        paths = self.paths
        paths.ensure()
        exporter = SnapshotExporter(paths.snapshot, self.name, paths.supervisor_lock)
        return Store(paths.db, busy_timeout=self.config.limits.db_busy_timeout, on_commit=exporter)
