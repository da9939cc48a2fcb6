"""hatchctl's Tmux, its calls made on a host (over ssh for a remote one).

Tmux builds the same argv (``tmux -L SOCKET -f /dev/null ...``, every argument literal for
tmux); here the argv is run by the host instead of locally, and tmux's errors are mapped as
Tmux maps them. A dropped connection is HostUnreachable, not a dead tmux server: tmux keeps
running on the host while the link is down.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from hatchctl.errors import CommandError, CommandTimeout, TmuxError, TmuxServerDead
from hatchctl.runtime import proc
from hatchctl.runtime.tmux import _NO_SERVER, Tmux

if TYPE_CHECKING:
    from hatchctl.hosts.ssh import SshHost


class HostTmux(Tmux):
    def __init__(
        self, host: SshHost, socket: str, *, timeout: float = 5.0, tag: str | None = None
    ) -> None:
        super().__init__(socket, timeout=timeout, tag=tag)
        self.host = host
        self.log = self.log.bind(host=host.name)

    def _exec(self, argv: list[str], what: str, input_text: str | None, check: bool) -> proc.Result:
        try:  # HostUnreachable passes through
            return self.host.run(argv, timeout=self.timeout, input_text=input_text, check=check)
        except CommandTimeout:
            self.log.warning("tmux_timeout", args=argv[6:], timeout=self.timeout)
            raise TmuxError(
                f"tmux {what} on host {self.host.name} timed out after {self.timeout:g}s"
            ) from None
        except CommandError as exc:
            text = exc.output.lower()
            if exc.returncode == 127:
                raise TmuxError(f"tmux is not installed on host {self.host.name}") from None
            if any(s in text for s in _NO_SERVER):
                raise TmuxServerDead(
                    f"tmux server {self.socket} on host {self.host.name} is not running"
                ) from None
            raise TmuxError(
                f"tmux {what} on host {self.host.name} failed: {exc.output.strip()[:200]}"
            ) from None

    def attach_argv(
        self, pane_id: str, window_id: str | None = None, *, read_only: bool = False
    ) -> list[str]:
        """ssh with a terminal, running the same attach command on the host."""
        local = super().attach_argv(pane_id, window_id, read_only=read_only)  # has tmux -u
        return [*self.host.ssh_argv(tty=True), shlex.join(local)]
