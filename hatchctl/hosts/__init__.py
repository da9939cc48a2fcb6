"""The machines agents run on: ``local`` (this one) and hatch.toml's ``[hosts.NAME]`` (OpenSSH).
See docs/scaling.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hatchctl.hosts.base import Host
from hatchctl.hosts.local import LocalHost
from hatchctl.hosts.ssh import SshHost

if TYPE_CHECKING:
    from hatchctl.project import Project

__all__ = ["Host", "LocalHost", "SshHost", "build_hosts", "doctor_checks"]


def build_hosts(project: Project) -> list[Host]:
    """``local`` first, then each configured host in hatch.toml's order."""
    cfg = project.config
    hosts: list[Host] = [LocalHost(project.root, max_active=cfg.limits.max_active)]
    for name, section in cfg.hosts.items():
        hosts.append(
            SshHost(name, section, project_root=project.root, state_dir=project.paths.hatch)
        )
    return hosts


def doctor_checks(project: Project, timeout: float = 10.0) -> list[tuple[str, str, str]]:
    """(name, level, detail) per configured remote host, for `hatchctl doctor`."""
    from hatchctl.hosts.probe import probe_all, problems, summary

    remote = build_hosts(project)[1:]
    agents = project.config.agents
    programs = tuple(dict.fromkeys([agents.factory.command[0], agents.qa.command[0]]))
    out = []
    drained = _drains(project, [h.name for h in remote])
    for health in probe_all(remote, timeout=timeout, programs=programs):
        found = problems(health, min_free_mb=project.config.limits.min_free_mb)
        if health.name in drained:
            why = drained[health.name]
            found.append(("warn", f"drained: {why} (`hatchctl undrain {health.name}` when fixed)"))
        level = "fail" if any(lv == "fail" for lv, _ in found) else "warn" if found else "ok"
        detail = "; ".join(text for _, text in found) if found else summary(health)
        out.append((f"host {health.name}", level, detail))
    return out


def _drains(project: Project, names: list[str]) -> dict[str, str]:
    """The drains the supervisor keeps in the project's store (none before its first run)."""
    import time

    from hatchctl.engine.remotehealth import drains

    if not names or not project.paths.db.exists():
        return {}
    store = project.open_store()
    try:
        return drains(store, names, time.time())
    finally:
        store.close()
