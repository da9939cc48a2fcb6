"""How the dashboard orders and narrows its tasks: the sort column and direction, the quick state
filter, the text filter (hides what does not match) and the search (hides nothing; `n`/`N` jump
between matches). Pure functions over TaskViews; nothing here imports Textual."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from hatchctl.tui.views import BARS, TaskView

# quick filters: key, name (what the indicator and the help call it)
STATE_FILTERS: tuple[tuple[str, str], ...] = (
    ("1", "failed"),
    ("2", "active"),
    ("3", "waiting"),
    ("4", "blocked"),
)
# STATE sorts by how much a task needs a person, not alphabetically
STATE_RANK = {"failed": 0, "blocked": 1, "waiting": 2, "stalled": 3, "active": 4, "pending": 5}
UP, DOWN = "▲", "▼"


def waiting(v: TaskView) -> bool:
    """The agent sits at a prompt or dialog: it needs a person's input."""
    return v.run is not None and v.run.waiting_since is not None and v.task.state == "active"


def in_review(v: TaskView) -> bool:
    """QA approved the work and a person decides: `A` approves, `R` rejects with a note."""
    return v.task.state == "active" and v.task.phase == "review"


def stalled(v: TaskView) -> bool:
    return v.run is not None and v.run.state == "stalled" and v.task.state == "active"


def in_state(v: TaskView, state: str | None) -> bool:
    if state is None:
        return True
    if state == "waiting":
        return waiting(v)
    return v.task.state == state


def haystack(v: TaskView) -> str:
    """What the text filter and the search look in: what the row shows (built once per view)."""
    return v.haystack


def _natural(value: str) -> tuple[Any, ...]:
    """API-9 before API-10."""
    parts = re.split(r"(\d+)", value.casefold())
    return tuple(int(p) if n % 2 else p for n, p in enumerate(parts))


def _state_rank(v: TaskView) -> tuple[int, str]:
    if waiting(v) or in_review(v):
        return STATE_RANK["waiting"], v.status
    if stalled(v):
        return STATE_RANK["stalled"], v.status
    return STATE_RANK.get(v.task.state, 9), v.status


def _activity(v: TaskView) -> int | None:
    return BARS.find(v.activity.rstrip()[-1:]) if v.activity.strip() else None


# a sort key per column; None sorts last in both directions
SORT_KEYS: dict[str, Callable[[TaskView], Any]] = {
    "ID": lambda v: _natural(v.task.id),
    "TITLE": lambda v: v.task.title.casefold(),
    "ROLE": lambda v: None if v.run is None else v.role,
    "HOST": lambda v: None if v.run is None else v.run.host or "local",
    "STATE": _state_rank,
    "ITER": lambda v: v.task.iteration,
    "RESTARTS": lambda v: v.task.restarts,
    "STRIKES": lambda v: v.task.strikes,
    "RUNTIME": lambda v: v.runtime,
    "IDLE": lambda v: v.idle,
    "CPU": lambda v: v.cpu,
    "ACTIVITY": _activity,
    "USAGE": lambda v: v.usage_tokens or None,
    "LAST LINE": lambda v: (v.last_text or None) and v.last_text.casefold(),
}


@dataclass
class Nav:
    sort: str | None = None  # a column name; None: the queue's order (priority, then id)
    reverse: bool = False
    state: str | None = None  # a quick filter's name
    text: str = ""  # the text filter
    search: str = ""

    @property
    def filtered(self) -> bool:
        return self.state is not None or bool(self.text)

    @property
    def wants_lines(self) -> bool:
        """Every task's last line is looked at: a text filter, a search, the LAST LINE sort."""
        return bool(self.text or self.search) or self.sort == "LAST LINE"

    def label(self, column: str) -> str:
        """A column's header: the sort column carries its direction."""
        if column != self.sort:
            return column
        return column + (DOWN if self.reverse else UP)

    def next_sort(self, columns: list[str]) -> None:
        """`s`: the next shown column, after the last back to the queue's order."""
        order: list[str | None] = [None, *columns]
        at = order.index(self.sort) if self.sort in order else 0
        self.sort = order[(at + 1) % len(order)]
        self.reverse = False

    def visible(self, views: list[TaskView]) -> list[TaskView]:
        """The tasks shown, in the order shown (ties keep the queue's order)."""
        text = self.text.casefold()
        if self.filtered:
            shown = [v for v in views if in_state(v, self.state) and text in haystack(v)]
        else:
            shown = views
        if self.sort is None:
            return shown
        key = SORT_KEYS[self.sort]
        known = [v for v in shown if key(v) is not None]
        unknown = [v for v in shown if key(v) is None]
        return sorted(known, key=key, reverse=self.reverse) + unknown

    def hits(self, views: list[TaskView]) -> list[int]:
        """Rows (of ``views``, as shown) that match the search."""
        if not self.search:
            return []
        needle = self.search.casefold()
        return [n for n, v in enumerate(views) if needle in haystack(v)]

    def indicator(self, shown: int, total: int, hit: tuple[int, int] | None) -> Text:
        """The line over the table while a filter or a search is on; empty when neither is."""
        parts: list[Text] = []
        if self.state is not None:
            parts.append(Text.assemble("state ", (self.state, "bold")))
        if self.text:
            parts.append(Text.assemble("filter ", (repr(self.text), "bold")))
        if self.filtered:
            parts.append(Text(f"{shown}/{total} shown"))
        if self.search:
            where = f"{hit[0]}/{hit[1]}" if hit and hit[1] else "no match"
            parts.append(Text.assemble("search ", (repr(self.search), "bold"), f" {where} n/N"))
        if not parts:
            return Text()
        parts.append(Text("esc clears", style="dim"))
        return Text(" · ", no_wrap=True, overflow="ellipsis").join(parts)
