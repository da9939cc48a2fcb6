"""Acting on a feature as a whole (``hatchctl hold|unhold|review|approve|reject --feature``, `H`):
which tasks belong to it, in which order (a task before those that depend on it), which of them
a hold or an approval applies to, and whether the feature is ready for its review. Pure: the
commands themselves go, one per task, through the supervisor's command queue."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from hatchctl.errors import HatchError

UNFINISHED = ("pending", "active", "blocked")  # what a hold applies to (`h` and the engine too)


class FeatureTask(Protocol):
    """What is read of a task (a TaskRow has it all)."""

    @property
    def id(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def phase(self) -> str | None: ...
    @property
    def held(self) -> int: ...
    @property
    def depends_on(self) -> list[str]: ...
    @property
    def feature(self) -> str | None: ...


T = TypeVar("T", bound=FeatureTask)


class UnknownFeature(HatchError):
    """No task has this feature."""


def names(tasks: Iterable[FeatureTask]) -> list[str]:
    return sorted({t.feature for t in tasks if t.feature})


def order_ids(needs: dict[str, set[str]]) -> list[str]:
    """The ids, each after those of its ``needs`` that are among them; otherwise by id. A cycle
    (refused by the spec checks) leaves its ids at the end, by id."""
    needs = {i: {d for d in n if d in needs and d != i} for i, n in needs.items()}
    out: list[str] = []
    done: set[str] = set()
    while len(out) < len(needs):
        ready = sorted(i for i, n in needs.items() if i not in done and n <= done)
        if not ready:
            ready = sorted(i for i in needs if i not in done)
        out.extend(ready)
        done.update(ready)
    return out


def dependency_order(tasks: Sequence[T]) -> list[T]:
    """The tasks, each before every task (of these) that depends on it; otherwise by id."""
    by_id = {t.id: t for t in tasks}
    return [by_id[i] for i in order_ids({t.id: set(t.depends_on) for t in tasks})]


def tasks_of(tasks: Iterable[T], name: str) -> list[T]:
    """The feature's tasks in dependency order; UnknownFeature names the known features."""
    every = list(tasks)
    mine = [t for t in every if t.feature == name]
    if not mine:
        known = names(every)
        listed = ", ".join(known) if known else "none: no task has a feature"
        raise UnknownFeature(f"no feature {name!r} (features: {listed})")
    return dependency_order(mine)


def waits_for_review(t: FeatureTask) -> bool:
    return t.state == "active" and t.phase == "review"


def describe(t: FeatureTask) -> str:
    """``waiting for review``, ``active (phase factory)``, ``pending, held`` ..."""
    if waits_for_review(t):
        text = "waiting for review"
    elif t.state == "active" and t.phase == "merge":
        text = "approved, merging"
    elif t.state == "active":
        text = f"active (phase {t.phase or '-'})"
    else:
        text = t.state
    return text + (", held" if t.held and t.state in UNFINISHED else "")


@dataclass
class Readiness(Generic[T]):
    """A feature is ready for its review when every task waits for review or is done with it
    (completed, or approved and merging): then it is approved once, as a whole."""

    waiting: list[T] = field(default_factory=list)  # in dependency order
    done: list[T] = field(default_factory=list)
    not_ready: list[tuple[T, str]] = field(default_factory=list)  # (task, why)

    @property
    def ready(self) -> bool:
        return not self.not_ready and bool(self.waiting)


def readiness(feature_tasks: Sequence[T]) -> Readiness[T]:
    """``feature_tasks`` as tasks_of returns them. A task not ready says its state, and which of
    its dependencies wait for review (it cannot start before they are approved and merged)."""
    out: Readiness[T] = Readiness()
    in_review = {t.id for t in feature_tasks if waits_for_review(t)}
    for t in feature_tasks:
        if waits_for_review(t):
            out.waiting.append(t)
        elif t.state == "completed" or (t.state == "active" and t.phase == "merge"):
            out.done.append(t)
        else:
            why = describe(t)
            blocking = [d for d in t.depends_on if d in in_review]
            if blocking and t.state in ("pending", "blocked"):
                why += f", waits for {', '.join(blocking)} to be approved and merged"
            out.not_ready.append((t, why))
    return out


def not_ready_line(name: str, r: Readiness[T]) -> str:
    """Why ``approve --feature`` refuses, naming each task that is not ready."""
    if not r.not_ready:
        return f"nothing in feature {name} waits for review"
    tasks = "; ".join(f"{t.id} is {why}" for t, why in r.not_ready)
    return (
        f"feature {name} is not ready for review as a whole: {tasks} (approve it when every "
        f"task waits for review or is completed; `hatchctl approve ID` approves one task)"
    )


def hold_targets(feature_tasks: Sequence[T], verb: str) -> list[T]:
    """``hold``: the unfinished tasks; ``unhold``: those and any other held one."""
    if verb == "hold":
        return [t for t in feature_tasks if t.state in UNFINISHED]
    return [t for t in feature_tasks if t.state in UNFINISHED or t.held]


def toggle_verb(feature_tasks: Sequence[FeatureTask]) -> str | None:
    """`H`: ``hold`` if any unfinished task is not held, else ``unhold``; None: all finished."""
    unfinished = [t for t in feature_tasks if t.state in UNFINISHED]
    if not unfinished:
        return None
    return "hold" if any(not t.held for t in unfinished) else "unhold"


def combine_numstat(outputs: Iterable[str]) -> list[str]:
    """``git diff --numstat`` outputs (one per task) as one diffstat: a line per path with its
    summed insertions and deletions (``-`` for binary), then the totals."""
    added: dict[str, int | None] = {}
    deleted: dict[str, int | None] = {}
    for out in outputs:
        for line in out.splitlines():
            parts = line.split("\t", 2)
            if len(parts) != 3 or not parts[2]:
                continue
            a, d, path = parts
            for counts, value in ((added, a), (deleted, d)):
                before = counts.get(path, 0)
                counts[path] = (
                    None if before is None or not value.isdigit() else before + int(value)
                )
    if not added:
        return ["no changes"]
    width = max(len(p) for p in added)
    lines = []
    for path in sorted(added):
        plus, minus = added[path], deleted[path]
        change = "binary" if plus is None or minus is None else f"+{plus} -{minus}"
        lines.append(f"{path.ljust(width)} | {change}")
    total_a = sum(v for v in added.values() if v is not None)
    total_d = sum(v for v in deleted.values() if v is not None)
    lines.append(f"{len(added)} file(s) changed, {total_a} insertion(s), {total_d} deletion(s)")
    return lines
