"""Pure scheduling and retry policy: which tasks may start, which are blocked, backoff delays."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from hatchctl.config import RestartPolicy
from hatchctl.state.rows import TaskRow


def backoff_delay(restarts: int, policy: RestartPolicy, rng: random.Random) -> float:
    """Capped exponential backoff with jitter: initial * multiplier^(n-1), at most max_backoff."""
    n = max(restarts, 1)
    base = min(policy.initial_backoff * policy.multiplier ** (n - 1), policy.max_backoff)
    spread = base * policy.jitter
    return max(0.0, min(policy.max_backoff, base + rng.uniform(-spread, spread)))


@dataclass(frozen=True)
class Plan:
    start: list[str]  # pending -> active, in this order
    block: list[str]  # pending -> blocked (a dependency failed or is blocked)
    unblock: list[str]  # blocked -> pending (every dependency completed)
    waiting_on_files: dict[str, dict[str, str]]  # task -> {file: holder}


def plan(tasks: Iterable[TaskRow], locks: dict[str, str], max_active: int, paused: bool) -> Plan:
    """Decide what the scheduler does next. Highest priority first; a task starts only when all
    its dependencies completed, none of its declared files is locked by another active task,
    and fewer than ``max_active`` tasks are active."""
    by_id = {t.id: t for t in tasks}
    states = {t.id: t.state for t in by_id.values()}
    block: list[str] = []
    unblock: list[str] = []
    start: list[str] = []
    waiting: dict[str, dict[str, str]] = {}
    changed = True
    while changed:  # blocking is transitive: A failed -> B blocked -> C blocked, in one plan
        changed = False
        for t in by_id.values():
            if states[t.id] == "pending" and any(
                states.get(d) in ("failed", "blocked") for d in t.depends_on
            ):
                block.append(t.id)
                states[t.id] = "blocked"
                changed = True
    for t in by_id.values():
        if t.state == "blocked" and all(states.get(d) == "completed" for d in t.depends_on):
            unblock.append(t.id)
    # a task waiting for a person's review holds its files, not an agent slot
    active = sum(1 for t in by_id.values() if t.state == "active" and t.phase != "review")
    if paused:
        return Plan([], sorted(block), sorted(unblock), {})
    taken = dict(locks)
    ready = sorted(
        (
            t
            for t in by_id.values()
            if t.state == "pending"
            and not t.held
            and t.id not in block
            and all(states.get(d) == "completed" for d in t.depends_on)
        ),
        key=lambda t: (-t.priority, t.id),
    )
    for t in ready:
        if active >= max_active:
            break
        conflicts = {f: taken[f] for f in t.files if f in taken and taken[f] != t.id}
        if conflicts:
            waiting[t.id] = conflicts
            continue
        for f in t.files:
            taken[f] = t.id
        start.append(t.id)
        active += 1
    return Plan(start, sorted(block), sorted(unblock), waiting)
