"""What the sim-agent (runtime/simagent.py) imitates of Claude Code around a turn: the hooks
configured in the worktree's ``.claude/settings.local.json`` (run through a shell, the event's
JSON on stdin) and the session transcript, one JSON line per assistant message with the API's
usage."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path


def append_transcript(turn: int) -> str:
    """Like Claude Code's session transcript: one JSON line per assistant message with the
    API's usage (deterministic numbers; ``turn`` counts from 1), next to the stop file (the
    sandbox lets it write there and hatchctl can read it). Its path, or "" without a stop
    file."""
    stop = os.environ.get("HATCH_STOP_FILE", "")
    if not stop:
        return ""
    path = Path(stop).with_suffix(".transcript.jsonl")
    line = {
        "type": "assistant",
        "message": {
            "id": f"msg_sim_{os.getpid()}_{turn}",
            "role": "assistant",
            "model": "claude-sonnet-sim",
            "usage": {
                "input_tokens": 1000 * turn,
                "output_tokens": 200,
                "cache_creation_input_tokens": 500,
                "cache_read_input_tokens": 3000,
            },
        },
    }
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
    return str(path)


def run_hooks(worktree: Path, event: str, **fields: object) -> bool:
    """Run the hooks configured for ``event`` in .claude/settings.local.json, as Claude Code
    does: through a shell, the event's JSON on stdin. False when none is configured."""
    settings = worktree / ".claude" / "settings.local.json"
    try:
        hooks = json.loads(settings.read_text(encoding="utf-8"))["hooks"][event]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    payload = json.dumps(
        {
            "session_id": f"sim-{os.getpid()}",
            "cwd": str(worktree),
            "hook_event_name": event,
            **fields,
        }
    )
    for entry in hooks:
        for hook in entry.get("hooks", []):
            if hook.get("type") == "command":
                # Claude Code runs hook commands through a shell; so does its double.
                subprocess.run(  # noqa: S602
                    hook["command"],
                    shell=True,
                    input=payload,
                    text=True,
                    timeout=float(hook.get("timeout", 60)),
                    check=False,
                    cwd=worktree,
                )
    return True
