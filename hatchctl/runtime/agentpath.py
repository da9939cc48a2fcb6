"""Where an agent command resolves: the PATH run_agent.sh gives it (hatchctl's bin dir first)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def agent_search_path() -> str:
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def find_agent(exe: str, root: Path) -> str | None:
    """The executable an agent command's first word runs, or None when it cannot run."""
    if "/" in exe:
        path = Path(exe) if os.path.isabs(exe) else root / exe
        runnable = path.is_file() and os.access(path, os.X_OK)  # exists is not enough
        return str(path) if runnable else None
    return shutil.which(exe, path=agent_search_path())
