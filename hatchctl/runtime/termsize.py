"""The size of the screen a pane's log is rendered on: what a pane no client has resized
shows (tmux's default-size), the widest line kept, and how many lines scroll back."""

from __future__ import annotations

COLUMNS = 1000
ROWS = 24
HISTORY = 20_000
