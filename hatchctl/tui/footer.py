"""A footer that fits its width: when the keys that apply are wider than the terminal, the keys
of the actions named in ``drop`` leave the footer, the first named first (they keep working, and
the help, `?`, lists them). Textual's own footer would cut the last keys (`? Help`) instead."""

from __future__ import annotations

from collections import defaultdict
from itertools import groupby

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.binding import Binding
from textual.events import Resize
from textual.widgets import Footer
from textual.widgets._footer import FooterKey, FooterLabel, KeyGroup

Shown = list[list[tuple[Binding, bool, str]]]  # per action: its bindings, enabled, tooltip


def _name(action: str) -> str:
    """``state('failed')`` -> ``state``."""
    return action.partition("(")[0]


class FitFooter(Footer):
    def __init__(self, *, drop: tuple[str, ...] = (), compact: bool = False) -> None:
        super().__init__(compact=compact)
        self.drop = drop
        self.fitted_to = 0  # the width the keys were last laid out for

    def _width(self, groups: list[Shown]) -> int:
        """Columns the keys take (compact: ``k Kill`` and a space; a group's keys, its name)."""
        pad = 1 if self.compact else 2
        total = 0
        for actions in groups:
            first = actions[0][0][0]
            if first.group is not None and len(actions) > 1:
                keys = sum(cell_len(self.app.get_key_display(a[0][0])) for a in actions)
                total += keys + len(actions) * (0 if self.compact else 2)
                total += cell_len(first.group.description) + 3
            else:
                for a in actions:
                    key = cell_len(self.app.get_key_display(a[0][0]))
                    total += key + 1 + cell_len(a[0][0].description) + pad
        return total - 1 if self.compact else total  # compact: no space after the last key

    def _groups(self) -> list[Shown]:
        per_action: defaultdict[str, list[tuple[Binding, bool, str]]] = defaultdict(list)
        for _, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.show:
                per_action[binding.action].append((binding, enabled, tooltip))
        return [list(g) for _, g in groupby(per_action.values(), lambda a: a[0][0].group)]

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        width = self.size.width or self.app.size.width
        self.fitted_to = width
        groups = self._groups()
        for name in self.drop:
            if self._width(groups) <= width:
                break
            kept = ([a for a in g if _name(a[0][0].action) != name] for g in groups)
            groups = [g for g in kept if g]
        for actions in groups:
            first = actions[0][0][0]
            if first.group is not None and len(actions) > 1:
                with KeyGroup(classes="-compact" if first.group.compact else ""):
                    for a in actions:
                        binding, enabled, tooltip = a[0]
                        yield FooterKey(
                            binding.key,
                            self.app.get_key_display(binding),
                            "",
                            binding.action,
                            disabled=not enabled,
                            tooltip=tooltip or binding.description,
                            classes="-grouped",
                        ).data_bind(compact=Footer.compact)
                yield FooterLabel(first.group.description)
                continue
            for a in actions:
                binding, enabled, tooltip = a[0]
                yield FooterKey(
                    binding.key,
                    self.app.get_key_display(binding),
                    binding.description,
                    binding.action,
                    disabled=not enabled,
                    tooltip=tooltip,
                ).data_bind(compact=Footer.compact)
        palette = self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
        if palette is not None and self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            _, binding, enabled, _ = palette
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                classes="-command-palette",
                disabled=not enabled,
                tooltip=binding.tooltip or binding.description,
            )

    def on_resize(self, event: Resize) -> None:
        if self._bindings_ready and event.size.width != self.fitted_to:
            self.call_after_refresh(self.recompose)
