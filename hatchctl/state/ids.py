"""Task ids name paths, branches and panes, so they are validated before any use."""

from __future__ import annotations

import re

from hatchctl.errors import InvalidIdError

TASK_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_TASK_ID_RE = re.compile(TASK_ID_PATTERN)
ROLES = ("factory", "qa")
PLAN_WINDOW_PREFIX = "plan:"  # the planner's window; a task id has no ':' (no run is named so)


def is_valid_task_id(value: object) -> bool:
    """True when ``value`` is a string matching TASK_ID_PATTERN and is not a dot-only name."""
    if not isinstance(value, str) or not _TASK_ID_RE.fullmatch(value):
        return False
    # "..", "a..b" and "x.lock" are legal in the regex but are unsafe as git refs.
    return ".." not in value and not value.endswith((".lock", "."))


def check_task_id(value: object) -> str:
    """Return ``value`` if it is a valid task id, else raise InvalidIdError naming it."""
    if not is_valid_task_id(value):
        raise InvalidIdError(
            f"invalid task id {value!r}: must match {TASK_ID_PATTERN} "
            "(no '..', not ending in '.' or '.lock')"
        )
    assert isinstance(value, str)
    return value


def check_role(value: str) -> str:
    if value not in ROLES:
        raise InvalidIdError(f"invalid role {value!r}: must be one of {', '.join(ROLES)}")
    return value


def branch_name(task_id: str) -> str:
    return f"hatch/{check_task_id(task_id)}"


def run_name(task_id: str, role: str, iteration: int, attempt: int) -> str:
    """The stem shared by a run's log, stop file and tmux window name."""
    return f"{check_task_id(task_id)}.{check_role(role)}.i{iteration}.a{attempt}"
