"""The e2e tests' `hatchctl` calls run as forks of one interpreter that imported hatchctl once
(tests/e2e/forkrun.py): each is still its own `python -m hatchctl` process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.forkrun import Hatchctl, Zygote


@pytest.fixture(scope="session")
def zygote() -> Iterator[Zygote]:
    z = Zygote()
    try:
        yield z
    finally:
        z.close()


@pytest.fixture
def hatchctl(zygote: Zygote) -> Hatchctl:
    """As tests.conftest.hatchctl (args, cwd=, timeout=, env=), through the zygote."""
    return zygote.run
