"""One throwaway sshd per test module (tests/hosts/sshd.py), skipped with the reason when this
machine cannot run one; an SshHost on it per test, its master connection closed after."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hatchctl.config import HostSection
from hatchctl.hosts.ssh import SshHost
from tests.hosts.sshd import SshServer, make_server, unavailable


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    server = make_server(tmp_path_factory.mktemp("sshd"))
    server.start()
    yield server
    server.stop()


def sshd_without(directory: Path, missing: Callable[[str], bool]) -> Iterator[SshServer]:
    """For a fixture: a started server whose sessions' PATH holds every program of /usr/bin but
    the ``missing`` ones (a host that lacks them), stopped after; skipped where no sshd runs."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    bin_dir = directory / "bin"
    bin_dir.mkdir(parents=True)
    for entry in Path("/usr/bin").iterdir():
        if not missing(entry.name):
            (bin_dir / entry.name).symlink_to(entry)
    server = make_server(directory / "sshd", env={"PATH": str(bin_dir)})
    server.start()
    yield server
    server.stop()


def section(server: SshServer, root: Path, **extra: object) -> HostSection:
    return HostSection.model_validate(
        {
            "ssh": server.destination,
            "port": server.port,
            "ssh_config": str(server.ssh_config),
            "root": str(root),
            **extra,
        }
    )


@pytest.fixture
def host(sshd: SshServer, tmp_path: Path) -> Iterator[SshHost]:
    if sshd.proc is None:  # a test before stopped it and failed before starting it again
        sshd.start()
    (tmp_path / "remote").mkdir()
    h = SshHost(
        "loop",
        section(sshd, tmp_path / "remote"),
        project_root=tmp_path / "project",
        state_dir=tmp_path / "project" / ".hatch",
    )
    yield h
    h.close()
