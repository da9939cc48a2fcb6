"""The one error hierarchy. Every error a user can cause is a HatchError with a one-line message.

The CLI prints ``hatchctl: <message>`` and exits with ``exit_code``; nothing else reaches the user.
"""

from __future__ import annotations


class HatchError(Exception):
    """Base of every expected error. ``str(err)`` is a single line meant for the user."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message.replace("\n", " ").strip()


class ConfigError(HatchError):
    """hatch.toml missing, unreadable, or invalid."""


class SpecError(HatchError):
    """A task spec is invalid. ``problems`` holds every problem found, each ``file:line: msg``."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class InvalidIdError(HatchError):
    """A task id does not match the allowed pattern."""


class StoreError(HatchError):
    """The state database cannot be opened or used."""


class StoreBusyError(StoreError):
    """The database stayed locked past the retry bound."""


class TransitionError(HatchError):
    """A state transition was refused (not allowed, or the current state was not the expected one)."""


class SummaryError(HatchError):
    """A handover summary or .stop file is missing or invalid."""


class UnsafePath(HatchError):
    """A symbolic link (or another unexpected file) at a path hatchctl manages inside a worktree,
    such as ``project-state-readonly`` or ``.claude/settings.local.json``: hatchctl refuses to
    follow it. An agent's doing, so the task's attempt fails with reason ``unsafe_path``."""


class ForgedSignal(SummaryError):
    """A .stop file that does not carry its run's token (written by someone else)."""


def with_tail(message: str, output: str) -> str:
    """``message``, followed by the last line the command printed (if any)."""
    tail = output.strip().splitlines()[-1][:300] if output.strip() else ""
    return f"{message}: {tail}" if tail else message


class CommandError(HatchError):
    """An external command failed. Carries argv, exit code and captured output."""

    def __init__(
        self, argv: list[str], returncode: int | None, output: str, message: str = ""
    ) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.output = output
        super().__init__(message or with_tail(f"{argv[0]} exited with {returncode}", output))


class CommandTimeout(CommandError):
    """An external command ran past its timeout and was killed."""

    def __init__(self, argv: list[str], timeout: float, output: str) -> None:
        super().__init__(argv, None, output, f"{argv[0]} timed out after {timeout:g}s")
        self.timeout = timeout


class ScriptError(CommandError):
    """A hatch script failed; ``returncode`` is the script's documented exit code."""


class TmuxError(HatchError):
    """tmux failed or its server is unreachable."""


class TmuxServerDead(TmuxError):
    """The private tmux server is not running."""


class HostError(HatchError):
    """A host of hatch.toml's ``[hosts.NAME]`` cannot be used as asked (a path outside the
    project, an unsafe control directory)."""


class HostUnreachable(HostError):
    """ssh cannot reach the host, or the connection dropped during a call (ssh exited with 255,
    or the call timed out, and no master connection is left). Infrastructure, never an agent's
    fault."""


class SupervisorError(HatchError):
    """No supervisor is running, or another one already is."""


class ReadOnlyError(HatchError):
    """An action was refused because the client is read-only."""
