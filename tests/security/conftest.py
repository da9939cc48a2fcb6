"""The integration fixtures (real tmux on private sockets, real git, the real sim agent)."""

from __future__ import annotations

from tests.integration.conftest import projects  # noqa: F401
from tests.security.symlinkkit import copy_view, outside  # noqa: F401
