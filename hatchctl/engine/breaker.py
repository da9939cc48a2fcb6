"""Circuit breaker: repeated infrastructure failures (script, tmux, git) across tasks pause
scheduling with a visible reason instead of burning every task's restarts and strikes."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class Breaker:
    threshold: int
    window: float
    failures: deque[tuple[float, str]] = field(default_factory=deque)

    def record(self, now: float, what: str) -> str | None:
        """Record one failure; returns the pause reason when the breaker trips."""
        self.failures.append((now, what))
        while self.failures and now - self.failures[0][0] > self.window:
            self.failures.popleft()
        if len(self.failures) >= self.threshold:
            reason = (
                f"circuit breaker: {len(self.failures)} infrastructure failures within "
                f"{self.window:g}s; last: {what}"
            )
            self.failures.clear()
            return reason
        return None

    def reset(self) -> None:
        self.failures.clear()
