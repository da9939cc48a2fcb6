"""``hatchctl doctor``: what this machine can and cannot do for hatchctl, checked for real."""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hatchctl.errors import CommandError
from hatchctl.runtime import proc
from hatchctl.runtime.agentpath import find_agent

if TYPE_CHECKING:
    from hatchctl.project import Project


@dataclass(frozen=True)
class Check:
    name: str
    level: str  # ok | warn | fail
    detail: str


def _version_check(name: str, argv: list[str], minimum: tuple[int, int]) -> Check:
    if shutil.which(argv[0]) is None:
        hint = f"install it: sudo apt-get install -y {argv[0]}"
        return Check(name, "fail", f"{argv[0]} not found on PATH ({hint})")
    try:
        out = proc.run(argv, timeout=5).output
    except CommandError as exc:
        return Check(name, "fail", str(exc))
    match = re.search(r"(\d+)\.(\d+)", out)
    if not match:
        return Check(name, "warn", f"cannot read the version from {out!r}")
    version = (int(match.group(1)), int(match.group(2)))
    level = "ok" if version >= minimum else "fail"
    return Check(name, level, f"{out.strip()} (need >= {minimum[0]}.{minimum[1]})")


def _inotify() -> Check:
    base = Path("/proc/sys/fs/inotify")
    try:
        watches = int((base / "max_user_watches").read_text())
        instances = int((base / "max_user_instances").read_text())
    except (OSError, ValueError):
        return Check(
            "inotify",
            "warn",
            "cannot read /proc/sys/fs/inotify; the watcher may fall back to polling",
        )
    level = "ok" if watches >= 8192 and instances >= 16 else "warn"
    return Check("inotify", level, f"max_user_watches={watches} max_user_instances={instances}")


def _mount_probe(script: Path) -> Check:
    with tempfile.TemporaryDirectory(prefix="hatch-doctor-") as tmp:
        src, dst = Path(tmp, "src"), Path(tmp, "dst")
        src.mkdir()
        (src / "probe").write_text("probe\n")
        try:
            out = proc.run(["bash", str(script), str(src), str(dst)], timeout=15)
        except CommandError as exc:
            return Check("read-only mount", "fail", str(exc))
        method = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "unknown"
        unmount = script.parent / "unmount.sh"
        try:
            proc.run(["bash", str(unmount), str(dst)], timeout=15)
        except CommandError as exc:
            return Check(
                "read-only mount", "fail", f"mounted with {method} but unmount failed: {exc}"
            )
    if method == "bind":
        return Check("read-only mount", "ok", "read-only bind mounts work here (method=bind)")
    return Check(
        "read-only mount", "warn", f"bind mounts not permitted; using fallback method={method}"
    )


def _sandbox(project: Project | None) -> Check:
    from hatchctl.runtime import sandbox

    problem = sandbox.probe()
    wanted = (
        {getattr(project.config.agents, r).sandbox for r in ("factory", "qa")}
        if project is not None
        else {"auto"}
    )
    if problem is None:
        if wanted == {"none"}:
            return Check("sandbox", "warn", 'bwrap works here, but sandbox = "none"')
        return Check("sandbox", "ok", "bwrap sandboxes work here: agents run confined")
    if "bwrap" in wanted:
        return Check("sandbox", "fail", f'sandbox = "bwrap" but {problem}')
    level = "ok" if wanted == {"none"} else "warn"
    return Check(
        "sandbox",
        level,
        f"{problem}; agents run unconfined (they can write the main checkout and .hatch/: "
        "see docs/security.md)",
    )


def run_checks(project: Project | None) -> list[Check]:
    from hatchctl.runtime.scripts import scripts_root

    checks = [
        Check("python", "ok" if sys.version_info >= (3, 11) else "fail", sys.version.split()[0]),
        _version_check("tmux", ["tmux", "-V"], (3, 0)),
        _version_check("git", ["git", "--version"], (2, 25)),
        _inotify(),
        _sandbox(project),
    ]
    if project is not None:
        for role in ("factory", "qa"):
            cmd = getattr(project.config.agents, role).command
            exe = cmd[0]
            found = find_agent(exe, project.root)
            checks.append(
                Check(
                    f"agent {role}",
                    "ok" if found else "fail",
                    f"{' '.join(cmd)} -> {found}" if found else f"{exe} not found on PATH",
                )
            )
    root = scripts_root(
        project.root / project.config.project.scripts_dir
        if project is not None and project.config.project.scripts_dir
        else None
    )
    checks.append(_mount_probe(root / "mount" / "mount_readonly.sh"))
    return checks
