"""What needs a person: failed, waiting-for-input, waiting-for-review, stalled and blocked tasks,
and a paused supervisor. An item stays until it is looked at (the task opened in the drill-down) or dismissed,
even once its condition has passed; a condition that passes and comes back is a new item.
Nothing here imports Textual."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.text import Text

from hatchctl.tui.nav import in_review, stalled, waiting
from hatchctl.tui.views import Snapshot, TaskView

SUPERVISOR = ""  # the task id of the paused-supervisor item
STYLE = {
    "failed": "bold red",
    "blocked": "yellow",
    "stalled": "bold magenta",
    "waiting": "bold magenta",
    "review": "bold cyan",
    "paused": "bold yellow",
}

RANK = {"failed": 0, "waiting": 1, "review": 2, "stalled": 3, "blocked": 4, "paused": 5}
STRIP_MOST = 40  # items drawn in the one-line strip (its count says how many there are)
NAMES = {"waiting": "waiting for input", "review": "waiting for review"}

Key = tuple[str, str]  # task id, kind


@dataclass(frozen=True)
class Item:
    task_id: str
    kind: str  # failed, blocked, stalled, waiting, review, paused
    detail: str  # why, for the notification

    @property
    def key(self) -> Key:
        return self.task_id, self.kind

    @property
    def name(self) -> str:
        if self.task_id == SUPERVISOR:
            return "supervisor paused"
        return f"{self.task_id} {NAMES.get(self.kind, self.kind)}"

    @property
    def message(self) -> str:
        return f"{self.name}: {self.detail}" if self.detail else self.name


def conditions(snap: Snapshot) -> dict[Key, Item]:
    """Everything that needs a person in this snapshot."""
    found: list[Item] = []
    if snap.paused:
        found.append(Item(SUPERVISOR, "paused", snap.pause_reason or "by user"))
    found += [item for v in snap.views if (item := condition(v)) is not None]
    return {item.key: item for item in found}


def condition(v: TaskView) -> Item | None:
    """What needs a person about one task, if anything."""
    kind = _kind(v)
    return None if kind is None else Item(v.task.id, kind, _detail(v, kind))


def _kind(v: TaskView) -> str | None:
    if v.task.state in ("failed", "blocked"):
        return v.task.state
    if waiting(v):
        return "waiting"
    if in_review(v):
        return "review"
    if stalled(v):
        return "stalled"
    return None


def _detail(v: TaskView, kind: str) -> str:
    if kind in ("failed", "blocked"):
        return v.task.last_error or ""
    if kind == "waiting" and v.run is not None:
        return v.run.waiting_reason or ""
    if kind == "review":
        return "A approves, R rejects with a note"
    return "no output" if kind == "stalled" else ""


class Attention:
    def __init__(self) -> None:
        self.items: dict[Key, Item] = {}  # oldest first
        self.current: dict[Key, Item] = {}  # the conditions of the last snapshot
        self.by_task: dict[str, Item] = {}  # the same, per task (one condition each)
        self.started = False
        self.drawn: tuple[int, Text] | None = None  # the strip, for the version it was made at
        self.version = 0  # bumped on every change to the items or the conditions

    def update(
        self,
        snap: Snapshot,
        changed: Iterable[TaskView] | None = None,
        gone: Iterable[str] = (),
    ) -> list[Item]:
        """Take in a snapshot; the items it raises (none for the first one: what is already
        wrong when the control room opens is listed, not announced). With ``changed`` (the views
        that differ from the snapshot before) and ``gone`` (the tasks no longer in it), only
        those are looked at."""
        if changed is None:
            self.by_task = {}
            changed = snap.views
        touched = bool(gone) or not self.started
        for task_id in gone:
            self.by_task.pop(task_id, None)
        for v in changed:
            item = condition(v)
            if item != self.by_task.get(v.task.id):
                touched = True
                if item is None:
                    del self.by_task[v.task.id]
                else:
                    self.by_task[v.task.id] = item
        paused = Item(SUPERVISOR, "paused", snap.pause_reason or "by user") if snap.paused else None
        if not touched and paused == self.current.get((SUPERVISOR, "paused")):
            return []  # the same conditions as before
        now = {item.key: item for item in (*([paused] if paused else []), *self.by_task.values())}
        self.version += 1
        new = [item for k, item in now.items() if k not in self.current]
        for item in new:
            self.items[item.key] = item
        for k in self.items.keys() & now.keys():
            self.items[k] = now[k]  # the latest reason
        self.current = now
        first, self.started = not self.started, True
        return [] if first else new

    def seen(self, task_id: str) -> bool:
        """The task was looked at: its items go. True if there were any."""
        keys = [key for key in self.items if key[0] == task_id]
        for key in keys:
            del self.items[key]
        self.version += 1
        return bool(keys)

    def ordered(self) -> list[Item]:
        """As the strip shows them: what still holds first, the worst first, then by age (an
        80-column strip cuts the end)."""
        items = list(self.items.values())
        return sorted(items, key=lambda i: (i.key not in self.current, RANK[i.kind]))

    def dismiss(self, task_id: str | None) -> Item | None:
        """`d`: the given task's items, else the first one shown."""
        if task_id is not None:
            mine = next((i for i in self.items.values() if i.task_id == task_id), None)
            if mine is not None:
                self.seen(task_id)
                return mine
        first = next(iter(self.ordered()), None)
        if first is not None:
            del self.items[first.key]
            self.version += 1
        return first

    def strip(self) -> Text:
        """One line: how many, then each item (one whose condition has passed is dimmed), the
        first STRIP_MOST of them (no screen is wide enough for more)."""
        if not self.items:
            return Text()
        if self.drawn is not None and self.drawn[0] == self.version:
            return self.drawn[1]
        out = Text(no_wrap=True, overflow="ellipsis", end="")
        out.append(f" ⚑ {len(self.items)} ", style="bold reverse")
        for item in self.ordered()[:STRIP_MOST]:
            style = STYLE[item.kind] if item.key in self.current else "dim"
            out.append("  ")
            out.append(item.name, style=style)
        self.drawn = (self.version, out)
        return out
