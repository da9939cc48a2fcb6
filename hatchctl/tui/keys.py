"""The control room's keys: the dashboard's bindings, which of them apply to which task (off, and
out of the footer, where they do not), what leaves the footer first at 80 columns, and how a key
reaches the supervisor (a Sender; `H`: one hold or unhold per task of a feature)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from textual.binding import Binding

from hatchctl.errors import HatchError
from hatchctl.state import featureops
from hatchctl.tui.nav import STATE_FILTERS
from hatchctl.tui.views import TaskView

ATTACHABLE = ("running", "stalled", "stopped", "summarizing")  # the run has a pane


class Sender(Protocol):
    """Queues a command for the supervisor: (ok, its result line). ``args`` is given only for a
    message (``send``, ``{"text": ...}``) and a rejection (``reject``, ``{"note": ...}``): a
    two-argument sender still serves every other key."""

    def __call__(
        self, kind: str, task_id: str | None, args: dict[str, str] | None = None, /
    ) -> tuple[bool, str]: ...


# keys of the dashboard: off (and out of the footer) while a drill-down or a dialog is shown
DASHBOARD_ACTIONS = frozenset(
    {"drill", "kill", "restart", "retry", "attach", "message", "pause", "filter", "help"}
    | {"search", "next_match", "sort", "reverse", "state", "dismiss", "clear", "timeline"}
    | {"approve", "reject", "hold", "hold_feature", "new_task", "edit_task"}
)
STATES = Binding.Group("State", compact=True)
APPLIES: dict[str, Callable[[TaskView], bool]] = {
    "kill": lambda v: v.task.state == "active",
    "restart": lambda v: v.task.state == "active",
    "retry": lambda v: v.task.state in ("failed", "blocked"),
    "attach": lambda v: v.run is not None and v.run.state in ATTACHABLE,
    "message": lambda v: (
        v.task.state == "active" and v.run is not None and v.run.state in ATTACHABLE
    ),
    "approve": lambda v: v.task.state == "active" and v.task.phase == "review",
    "reject": lambda v: v.task.state == "active" and v.task.phase == "review",
    "hold": lambda v: v.task.state in ("pending", "active", "blocked"),
    "edit_task": lambda v: bool(v.task.spec_path),
}
# what leaves the footer first when it is wider than the terminal (the help lists it all)
FOOTER_DROP = ("state", "edit_task", "sort", "new_task", "timeline", "search", "filter", "hold")
# The footer fits 80 columns: the task actions show only where they apply (check_action),
# FOOTER_DROP goes first where they do not fit; q and p are in the help (?).
BINDINGS: list[Binding | tuple[str, str] | tuple[str, str, str]] = [
    Binding("q", "quit", "Quit", show=False),
    Binding("enter", "drill", "Details"),
    Binding("k", "kill", "Kill"),
    Binding("r", "restart", "Restart"),
    Binding("x", "retry", "Retry"),
    Binding("a", "attach", "Attach"),
    Binding("m", "message", "Message"),
    Binding("A", "approve", "Approve"),
    Binding("R", "reject", "Reject"),
    Binding("h", "hold", "Hold"),
    Binding("H", "hold_feature", "Hold feature", show=False),  # not in the footer: `?` lists it
    Binding("t", "timeline", "Timeline"),
    Binding("p", "pause", "Pause", show=False),
    Binding("slash", "search", "Search"),
    Binding("n", "new_task", "New"),  # while a search is on: the next match
    Binding("e", "edit_task", "Edit"),
    Binding("N", "next_match(-1)", "Previous match", show=False),
    Binding("f", "filter", "Filter"),
    Binding("0", "state('')", "State", group=STATES),
    *(Binding(key, f"state('{name}')", "State", group=STATES) for key, name in STATE_FILTERS),
    Binding("s", "sort", "Sort"),
    Binding("S", "reverse", "Reverse sort", show=False),
    Binding("d", "dismiss", "Dismiss"),
    Binding("escape", "clear", "Clear filter", show=False),
    Binding("colon", "command_palette", "Commands", show=False),
    Binding("question_mark", "help", "Help"),
]


@dataclass(frozen=True)
class FeatureHold:
    """`H`: hold (or unhold) these tasks of the feature, one command each."""

    feature: str
    verb: str  # hold | unhold
    task_ids: list[str]


def feature_hold(view: TaskView, views: list[TaskView]) -> FeatureHold | str:
    """What `H` on ``view`` does: hold the unfinished tasks of its feature if any of them is not
    held, else unhold them; a string says why there is nothing to do."""
    name = view.task.feature
    if not name:
        return f"{view.task.id} belongs to no feature (`h` holds one task)"
    tasks = featureops.tasks_of([v.task for v in views], name)
    verb = featureops.toggle_verb(tasks)
    if verb is None:
        return f"feature {name}: every task is finished, nothing to hold"
    return FeatureHold(name, verb, [t.id for t in featureops.hold_targets(tasks, verb)])


def send_feature_hold(send: Sender, plan: FeatureHold) -> tuple[bool, str]:
    """The per-task commands, in the feature's dependency order (off the UI thread): ok, and a
    line naming the feature and the count (and each failure)."""
    done, failed = 0, []
    for n, task_id in enumerate(plan.task_ids):
        try:
            ok, result = send(plan.verb, task_id)
        except HatchError as exc:  # no supervisor to answer: the rest would fail the same way
            rest = plan.task_ids[n + 1 :]
            failed += [f"{task_id}: {exc}"] + ([f"not sent: {', '.join(rest)}"] if rest else [])
            break
        if ok:
            done += 1
        else:
            failed.append(f"{task_id}: {result}")
    past = "held" if plan.verb == "hold" else "unheld"
    total = len(plan.task_ids)
    if not failed:
        return True, f"feature {plan.feature}: {past} {total} task(s) ({', '.join(plan.task_ids)})"
    return False, f"feature {plan.feature}: {past} {done} of {total} task(s); {'; '.join(failed)}"
