"""The project's tmux server, kept up by the supervisor: started at start-up, checked each pass,
started again (with a ``tmux_server_died`` event) when it is gone, retried with a backoff when
tmux itself fails (an infrastructure failure)."""

from __future__ import annotations

from collections.abc import Callable

from hatchctl.engine.deps import Deps
from hatchctl.errors import HatchError
from hatchctl.runtime import psinfo


class TmuxServerWatch:
    def __init__(self, deps: Deps, infra_failure: Callable[[str | None, str], None]) -> None:
        self.deps = deps
        self.infra_failure = infra_failure
        self.server_pid: int | None = None
        self.retry_at = 0.0

    def start(self) -> None:
        """At start-up: the server up (a failure here is the supervisor's to raise)."""
        self.server_pid = self.deps.tmux.ensure_server(self.deps.project.root)

    def check(self, now: float) -> None:
        if self.server_pid is not None and psinfo.alive(self.server_pid):
            return
        if now < self.retry_at:
            return
        deps = self.deps
        if self.server_pid is not None:
            with deps.store.tx() as tx:
                tx.event(
                    "tmux_server_died", data={"pid": self.server_pid, "socket": deps.tmux.socket}
                )
            deps.log.error("tmux_server_died", pid=self.server_pid)
            self.server_pid = None
        try:
            self.server_pid = deps.tmux.ensure_server(deps.project.root)
            with deps.store.tx() as tx:
                tx.event("tmux_server_started", data={"pid": self.server_pid})
        except HatchError as exc:
            self.retry_at = now + min(30.0, max(1.0, deps.limits.restart.initial_backoff))
            self.infra_failure(None, f"tmux server: {exc}")
