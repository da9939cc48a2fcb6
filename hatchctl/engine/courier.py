"""Deliveries in flight: text pasted into agents' panes off the supervisor's loop (a delivery
waits for its confirmation for seconds), one at a time per run; results are collected by the
loop and recorded by the monitor."""

from __future__ import annotations

import queue
from concurrent.futures import Future, ThreadPoolExecutor

from hatchctl.engine.deps import Deps
from hatchctl.runtime import delivery
from hatchctl.state.rows import RunRow


class Courier:
    def __init__(self, deps: Deps, wake: queue.Queue[tuple[str, str]] | None = None) -> None:
        self.deps = deps
        self.wake = wake
        self.inflight: dict[int, tuple[str, Future[delivery.Delivered]]] = {}
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="deliver")

    def busy(self, run_id: int) -> bool:
        return run_id in self.inflight

    def send(self, run: RunRow, text: str, kind: str) -> bool:
        """Start delivering ``text`` to the run's pane; False if one is already under way."""
        if run.id in self.inflight or not run.pane_id:
            return False
        deps, lim = self.deps, self.deps.limits
        agent = getattr(deps.project.config.agents, run.role)
        root = deps.project.root
        submitted = root / f"{run.stop_path}.submitted" if agent.stop == "claude-hook" else None
        timing = delivery.Timing(
            settle=min(0.3, lim.submit_delay),
            submit_delay=lim.submit_delay,
            confirm=lim.delivery_confirm,
            tries=lim.delivery_tries,
            ready=lim.delivery_ready if kind == "prompt" else 0.0,
        )
        future = self.pool.submit(
            delivery.deliver,
            deps.tmux,
            run.pane_id,
            text,
            log=root / run.log_path,
            submitted=submitted,
            timing=timing,
        )
        if self.wake is not None:
            wake = self.wake
            future.add_done_callback(lambda _f: wake.put(("delivery", str(run.id))))
        self.inflight[run.id] = (kind, future)
        return True

    def collect(self) -> list[tuple[int, str, delivery.Delivered]]:
        done = []
        for run_id, (kind, future) in list(self.inflight.items()):
            if not future.done():
                continue
            del self.inflight[run_id]
            try:
                result = future.result()
            except Exception as exc:  # a bug in a delivery must not take the loop down
                result = delivery.Delivered(False, 0, 0, 0.0, "", f"internal error: {exc!r}")
            done.append((run_id, kind, result))
        return done

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
