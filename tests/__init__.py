"""hatchctl's tests.

With PYTHONDONTWRITEBYTECODE set (to keep ``__pycache__`` out of the tree), every pytest process,
each xdist worker, would compile and assertion-rewrite every test module afresh: about 2 CPU-s a
process. Such a run keeps its compiled files instead under pytest's own temp root (outside the
tree, private to the user), through ``sys.pycache_prefix``. This runs before ``tests/conftest.py``
is imported (pytest imports the package first), so that conftest and every test module benefit.
Subprocesses are unaffected: their environment is not changed.
"""

from __future__ import annotations

import getpass
import os
import sys
import tempfile
from pathlib import Path


def _keep_bytecode_outside_the_tree() -> None:
    if not sys.dont_write_bytecode or sys.pycache_prefix:
        return
    try:
        root = Path(os.environ.get("PYTEST_DEBUG_TEMPROOT") or tempfile.gettempdir())
        user_root = root / f"pytest-of-{getpass.getuser()}"  # as pytest names it
        user_root.mkdir(mode=0o700, exist_ok=True)
        if user_root.stat().st_uid != os.getuid():
            return  # someone else's: never write there
        cache = user_root / "pycache"
        cache.mkdir(mode=0o700, exist_ok=True)
    except (OSError, KeyError):
        return  # no cache: slower, nothing else
    sys.pycache_prefix = str(cache)
    sys.dont_write_bytecode = False


_keep_bytecode_outside_the_tree()
