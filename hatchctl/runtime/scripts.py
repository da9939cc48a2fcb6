"""Run the bash scripts in ``hatch_scripts/``: one function, a timeout, one error type."""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from hatchctl import logsetup
from hatchctl.errors import CommandTimeout, HatchError, ScriptError, with_tail
from hatchctl.runtime import proc
from hatchctl.runtime.gitrepo import git_env

SCRIPT_NAMES = (
    "git/create_worktree.sh",
    "git/ensure_integration.sh",
    "git/merge_branch.sh",
    "git/remove_worktree.sh",
    "git/undo_merge.sh",
    "git/land.sh",
    "git/push_branch.sh",
    "git/push_to_host.sh",
    "git/fetch_from_host.sh",
    "git/host_worktree.sh",
    "mount/mount_readonly.sh",
    "mount/unmount.sh",
    "agent/run_agent.sh",
    "agent/stop_hook.sh",
    "agent/signal_hook.sh",
)


def builtin_root() -> Path:
    """The scripts shipped with hatchctl: inside the wheel, or at the top of a source checkout."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "hatch_scripts", here.parent / "hatch_scripts"):
        if (candidate / "lib.sh").is_file():
            return candidate
    raise HatchError(f"hatch_scripts not found next to {here} (broken installation)")


def scripts_root(override: Path | None = None) -> Path:
    if override is None:
        return builtin_root()
    if not (override / "lib.sh").is_file():
        raise HatchError(f"scripts_dir {override} does not hold hatch scripts (no lib.sh)")
    return override


class Scripts:
    """Runs hatch scripts from one root (built in, or an ejected copy named in hatch.toml)."""

    def __init__(self, root: Path, *, timeout: float, env: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.timeout = timeout
        self.env = env
        self.log = logsetup.get(component="scripts")

    def path(self, name: str) -> Path:
        if name not in SCRIPT_NAMES:
            raise HatchError(f"unknown script {name}")
        return self.root / name

    def run(
        self,
        name: str,
        *args: str,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> proc.Result:
        """Run a script; ScriptError (or its timeout) carries exit code, argv and output.
        ``env``: variables for this call only (e.g. GIT_SSH_COMMAND for a host's clone)."""
        argv = ["bash", str(self.path(name)), *args]
        limit = timeout or self.timeout
        try:
            full = {**git_env(), **(self.env or {}), **(env or {})}
            result = proc.run(argv, timeout=limit, env=full, error=ScriptError)
        except CommandTimeout as exc:
            self.log.warning("script_timeout", script=name, args=list(args), timeout=limit)
            raise ScriptError(
                argv, None, exc.output, f"{name} timed out after {limit:g}s"
            ) from None
        except ScriptError as exc:
            self.log.warning(
                "script_failed",
                script=name,
                args=list(args),
                code=exc.returncode,
                output=exc.output[-2000:],
            )
            raise ScriptError(
                argv,
                exc.returncode,
                exc.output,
                with_tail(f"{name} failed (exit {exc.returncode})", exc.output),
            ) from None
        self.log.debug("script_ok", script=name, args=list(args), seconds=round(result.seconds, 3))
        return result


def eject(dest: Path) -> list[Path]:
    """Copy the built-in scripts to ``dest`` for customization; refuses to overwrite."""
    src = builtin_root()
    if dest.exists() and any(dest.iterdir()):
        raise HatchError(f"{dest} exists and is not empty; eject into a new directory")
    shutil.copytree(src, dest, dirs_exist_ok=True)
    return sorted(p for p in dest.rglob("*.sh"))


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or below ``path`` (from /proc/self/mountinfo), deepest first."""
    target = path.resolve()
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if len(fields) < 5:
            continue
        point = Path(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4]))
        if point == target or target in point.parents:
            found.append(point)
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def unmount_all_under(scripts: Scripts, path: Path) -> None:
    """Unmount every mount below ``path`` (before deleting it: never delete through a mount)."""
    for point in mounts_under(path):
        scripts.run("mount/unmount.sh", str(point))
    left = mounts_under(path)
    if left:
        raise HatchError(f"cannot unmount {left[0]}; refusing to delete {path}")
