"""The e2e tests' `hatchctl` calls run as forks of interpreters that imported hatchctl once
(tests/forkrun.py): each is still its own `python -m hatchctl` process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import conftest
from tests.forkrun import Hatchctl, Zygote, pool


@pytest.fixture
def zygote() -> Iterator[Zygote]:
    """A zygote of this process's pool, for one test; back to the pool after it (its child
    killed if it still runs)."""
    z = pool().acquire()
    try:
        yield z
    finally:
        z.kill()
        pool().release(z)


@pytest.fixture
def hatchctl() -> Hatchctl:
    """tests.conftest.hatchctl (args, cwd=, timeout=, env=), through the pool of zygotes."""
    return conftest.hatchctl
