"""What the engine is given (never reaches for): project, store, tmux, scripts, clock, rng."""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hatchctl import logsetup
from hatchctl.project import Project
from hatchctl.project import project_key as project_key  # its home; imported from here too
from hatchctl.runtime.notify import Notifier
from hatchctl.runtime.scripts import Scripts
from hatchctl.runtime.tmux import Tmux
from hatchctl.state import secret
from hatchctl.state.store import Store

if TYPE_CHECKING:
    from hatchctl.engine.remote import RemoteRuns
    from hatchctl.hosts.base import Host


def run_key(root: Path, run_id: int) -> str:
    """Marks every process of a run (HATCH_RUN_KEY), unique across projects on this machine."""
    return f"{project_key(root)}-{run_id}"


@dataclass
class Deps:
    project: Project
    store: Store
    tmux: Tmux
    scripts: Scripts
    notifier: Notifier
    clock: Callable[[], float] = time.time
    rng: random.Random = field(default_factory=random.Random)
    log: Any = field(default_factory=lambda: logsetup.get(component="engine"))

    @property
    def limits(self) -> Any:
        return self.project.config.limits

    @property
    def project_key(self) -> str:
        return project_key(self.project.root)

    def run_key(self, run_id: int) -> str:
        return run_key(self.project.root, run_id)

    @functools.cached_property
    def secret(self) -> bytes:
        return secret.load_or_create(self.project.paths.secret)

    def run_token(self, run_id: int) -> str:
        """Given to run ``run_id``'s agent alone; its stop files must carry it."""
        return secret.run_token(self.secret, run_id)

    @functools.cached_property
    def remote(self) -> RemoteRuns:
        """The SSH hosts of hatch.toml and the runs on them (engine/remote.py)."""
        from hatchctl.engine.remote import RemoteRuns

        return RemoteRuns(self)

    @functools.cached_property
    def hosts(self) -> list[Host]:
        """``local`` first, then each ``[hosts.NAME]`` (the same objects as ``remote.hosts``)."""
        from hatchctl.hosts.local import LocalHost

        local = LocalHost(self.project.root, max_active=self.limits.max_active)
        return [local, *self.remote.hosts.values()]

    @property
    def job_key(self) -> str:
        """Marks every process started by this project's supervisor jobs (HATCH_JOB_KEY)."""
        return f"{self.project_key}-jobs"
