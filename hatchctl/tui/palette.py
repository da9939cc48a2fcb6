"""`:` — the command palette offers hatchctl's actions for every task by name."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from hatchctl.tui.columns import NAMES
from hatchctl.tui.nav import STATE_FILTERS

if TYPE_CHECKING:
    from hatchctl.tui.app import HatchApp


class HatchCommands(Provider):
    def _commands(self) -> list[tuple[str, Callable[[], None], str]]:
        app: HatchApp = self.app  # type: ignore[assignment]
        out: list[tuple[str, Callable[[], None], str]] = [
            ("pause", partial(app.run_command, "pause", None), "stop starting new agents"),
            ("resume", partial(app.run_command, "resume", None), "start new agents again"),
            ("timeline", app.open_timeline, "every task's runs over time (t)"),
        ]
        for key, state in (*STATE_FILTERS, ("0", "")):
            what = f"show {state or 'all'} tasks"
            out.append((what, partial(app.set_state, state), f"quick filter (key {key})"))
        for name in NAMES:
            out.append((f"sort by {name}", partial(app.sort_by, name), "s: the next column"))
        if app.snapshot is None:
            return out
        for view in app.snapshot.views:
            tid, state = view.task.id, view.task.state
            out.append(
                (f"open {tid}", partial(app.open_detail, tid), f"{view.task.title} ({state})")
            )
            if state == "active":
                out.append(
                    (
                        f"kill {tid}",
                        partial(app.confirm_kill, tid),
                        "kill its agent; the task fails",
                    )
                )
                out.append(
                    (
                        f"restart {tid}",
                        partial(app.run_command, "restart", tid),
                        "restart its agent",
                    )
                )
            if app.can_message(tid):
                out.append(
                    (
                        f"message {tid}",
                        partial(app.message_agent, tid),
                        "send a line to its running agent (m)",
                    )
                )
            if app.in_review(tid):
                out.append((f"approve {tid}", partial(app.approve, tid), "merge it (A)"))
                out.append((f"reject {tid}", partial(app.reject, tid), "with a note (R)"))
            if state in ("pending", "active", "blocked"):
                verb = "unhold" if view.task.held else "hold"
                what = "let it go on" if view.task.held else "start nothing more for it"
                out.append((f"{verb} {tid}", partial(app.run_command, verb, tid), f"{what} (h)"))
            if state in ("failed", "blocked"):
                out.append(
                    (
                        f"retry {tid}",
                        partial(app.run_command, "retry", tid),
                        "put it back in the queue",
                    )
                )
        return out

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
