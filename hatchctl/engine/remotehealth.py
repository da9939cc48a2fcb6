"""A host's record as the supervisor sees it: drained when it keeps failing, and its load.

**Drained.** Every launch on an SSH host that fails there (its directories, the push, its
worktree, its tmux, the copies, the ticket) and every time it stops answering counts against
that host alone: HOST_DRAIN_THRESHOLD such failures within ``[limits.breaker] window`` (default
300 s) drain it. A drained host gets nothing placed until the cool-down (the same window) has
passed since it was drained; then it is tried again, and drained again by the next failures.
Its runs already there are left as they are (a host that stops answering is still handled by
``host_grace``). Event and log ``host_drained`` with the reason; the drain is kept in the
project's meta (``host_drained.NAME``: JSON ``{"reason", "until"}``, wall-clock seconds) so
that `hatchctl hosts` shows ``drained: REASON`` and a new supervisor keeps it until its end.
`hatchctl hosts --undrain NAME` is not there yet: a user clears a drain by waiting, or by
deleting the meta row while no supervisor runs.

**Load.** A thread probes each SSH host that has been used (one bounded call, hosts/probe.py)
at most every LOAD_EVERY seconds, off the supervisor's loop; placement reads the last sample
(1-minute load average per core), never calling the host. ``local`` is read from this
machine's own load average at placement time (no call).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hatchctl.config import LOCAL_HOST
from hatchctl.engine.breaker import Breaker
from hatchctl.errors import HatchError
from hatchctl.hosts.probe import probe
from hatchctl.hosts.ssh import SshHost

if TYPE_CHECKING:
    from hatchctl.engine.deps import Deps
    from hatchctl.state.store import Store, Tx

HOST_DRAIN_THRESHOLD = 3  # failures of one host within [limits.breaker] window drain it
LOAD_EVERY = 30.0  # seconds between two load samples of a host
LOAD_TIMEOUT = 10.0  # one sample's bound
META_PREFIX = "host_drained."


def drained_from_meta(value: str | None, now: float) -> str | None:
    """The reason of a drain kept in the meta row ``value``, None when none or over."""
    if not value:
        return None
    try:
        data = json.loads(value)
        until, reason = float(data["until"]), str(data["reason"])
    except (ValueError, KeyError, TypeError):
        return None
    return reason if now < until else None


def drains(store: Store, names: Iterable[str], now: float) -> dict[str, str]:
    """The hosts among ``names`` whose drain is not over, with its reason."""
    found = {n: drained_from_meta(store.meta(META_PREFIX + n), now) for n in names}
    return {n: why for n, why in found.items() if why is not None}


def clear_drain(tx: Tx, name: str, *, by: str, drained: bool) -> str:
    """End host ``name``'s drain in the project's meta (``drained``: the caller knows it is on)."""
    if not drained:
        raise HatchError(f"host {name} is not drained")
    tx.set_meta(META_PREFIX + name, "")
    tx.event("host_undrained", data={"host": name, "by": by})
    return f"host {name} is no longer drained: agents are placed there again"


def per_core(load: str, cpus: int | None) -> float | None:
    """The probe's ``load`` (``1m 5m 15m``) as the 1-minute load per core."""
    try:
        first = float(load.split()[0])
    except (ValueError, IndexError):
        return None
    return first / max(cpus or 1, 1)


@dataclass
class HostHealth:
    """Drains and load samples of the SSH hosts of one supervisor."""

    deps: Deps
    hosts: dict[str, SshHost]
    breakers: dict[str, Breaker] = field(default_factory=dict)
    drained: dict[str, tuple[str, float]] = field(default_factory=dict)  # name -> (why, until)
    loads: dict[str, float] = field(default_factory=dict)  # name -> 1-min load per core
    used: set[str] = field(default_factory=set)  # hosts sampled: launched on (reachable)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def window(self) -> float:
        return float(self.deps.limits.breaker.window)

    # -- drains ----------------------------------------------------------------------------
    def load_drains(self) -> None:
        """The drains a previous supervisor left that are not over (a missing table: none)."""
        now = self.deps.clock()
        for name in self.hosts:
            raw = self.deps.store.meta(META_PREFIX + name)
            reason = drained_from_meta(raw, now)
            if reason is not None:
                self.drained[name] = (reason, json.loads(raw or "{}")["until"])

    def failed(self, name: str, what: str) -> str | None:
        """One failure of host ``name``; the reason when it drains the host now."""
        if name not in self.hosts or self.is_drained(name):
            return None
        breaker = self.breakers.setdefault(name, Breaker(HOST_DRAIN_THRESHOLD, self.window))
        now = self.deps.clock()
        if breaker.record(now, what) is None:
            return None
        reason = f"{HOST_DRAIN_THRESHOLD} failures within {self.window:g}s, last: {what}"[:400]
        until = now + self.window
        self.drained[name] = (reason, until)
        with self.deps.store.tx() as tx:
            tx.set_meta(META_PREFIX + name, json.dumps({"reason": reason, "until": until}))
            tx.event("host_drained", data={"host": name, "reason": reason, "until": until})
        self.deps.log.warning("host_drained", host=name, reason=reason, seconds=self.window)
        return reason

    def undrain(self, name: str, by: str = "user") -> str:
        """A person's word that the host is fixed: placement uses it again at once, its
        failures counted afresh. HatchError when there is no such host or it is not drained."""
        if name not in self.hosts:
            raise HatchError(f"no host {name!r} in hatch.toml [hosts]")
        drained = self.is_drained(name)
        self.drained.pop(name, None)
        self.breakers.pop(name, None)
        with self.deps.store.tx() as tx:
            return clear_drain(tx, name, by=by, drained=drained)

    def is_drained(self, name: str) -> bool:
        entry = self.drained.get(name)
        if entry is None:
            return False
        if self.deps.clock() < entry[1]:
            return True
        del self.drained[name]  # cooled down: tried again (the meta row is left to expire)
        self.deps.log.info("host_undrained", host=name)
        return False

    def excluded(self, down: Iterable[str]) -> set[str]:
        """The hosts placement leaves out: lost (``down``) or drained."""
        return set(down) | {n for n in list(self.drained) if self.is_drained(n)}

    def usable(self, host: SshHost, prepare: Callable[[SshHost], None]) -> bool:
        """``prepare(host)`` (placement, before a run is made for it); a failure there counts
        against the host and is logged: False."""
        try:
            prepare(host)
        except HatchError as exc:
            self.deps.log.warning("host_prepare_failed", host=host.name, error=str(exc)[:300])
            self.failed(host.name, f"prepare: {exc}")
            return False
        return True

    # -- load ------------------------------------------------------------------------------
    def load_of(self) -> dict[str, float]:
        """The last load per core of each host (``local``: read now, no call)."""
        out = dict(self.loads)
        with contextlib.suppress(OSError):
            out[LOCAL_HOST] = os.getloadavg()[0] / max(os.cpu_count() or 1, 1)
        return out

    def sample(self, names: Iterable[str]) -> None:
        """One load sample of each named host (bounded; a failure leaves the last one)."""
        for name in names:
            host = self.hosts.get(name)
            if host is None or self._stop.is_set():
                continue
            health = probe(host, timeout=LOAD_TIMEOUT)
            load = per_core(health.load, health.cpus) if health.reachable else None
            if load is not None:
                self.loads[name] = load

    def start(self, wake: Callable[[], None] | None = None) -> None:
        """Sample the used hosts' load every LOAD_EVERY seconds in a thread."""
        if self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.is_set():
                started = time.monotonic()
                self.sample(sorted(self.used))
                if wake is not None:
                    wake()
                self._stop.wait(max(1.0, LOAD_EVERY - (time.monotonic() - started)))

        self._thread = threading.Thread(target=loop, name="hatch-host-load", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=LOAD_TIMEOUT + 2)
            self._thread = None
