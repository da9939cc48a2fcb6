"""bubblewrap (``bwrap``) sandboxes for agents and for the agent-written code hatchctl runs.

An agent sees the whole machine read-only, a private ``/tmp`` and ``/proc`` (its own processes
only: no other agent's environment, no tmux socket), and ``.hatch/`` as an empty directory except
for what its run needs:

- read-write: its worktree, its run's exchange directory (stop files, summary), the git object
  store, its worktree's own git directory (index, HEAD) and a per-task shadow of
  ``refs/heads/hatch`` that holds only its own branch (hatchctl copies the branch in before the
  run and takes it back, checked, after: see ``refguard``);
- read-only: its prompt and handover files, the main checkout, the specs, the rest of ``.git``;
- invisible: ``hatch.db``, the command queue, every other task's worktree, logs and files.

Code the agent wrote that hatchctl itself runs (acceptance and regression commands) runs in the
same kind of sandbox with only its working directory writable.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hatchctl.errors import CommandError
from hatchctl.runtime import proc

BWRAP = "bwrap"
MODES = ("auto", "bwrap", "none")


@dataclass(frozen=True)
class GitLayout:
    """The repository's git directories an agent's ``git commit`` in its worktree needs."""

    common_dir: Path  # <repo>/.git
    worktree_gitdir: Path  # <repo>/.git/worktrees/<ID>
    shadow_refs: Path  # bound over <common>/refs/heads/hatch
    shadow_logs: Path  # bound over <common>/logs/refs/heads/hatch


@dataclass(frozen=True)
class Profile:
    """What one sandbox may see and write. Paths must be absolute."""

    hatch_dir: Path  # hidden (an empty tmpfs), then the binds below are put back
    workdir: Path  # read-write, the working directory
    writable: tuple[Path, ...] = ()
    readable: tuple[Path, ...] = ()  # files or directories, read-only
    visible: tuple[Path, ...] = ()  # read-only; re-exposed when under the private /tmp
    git: GitLayout | None = None
    unset_env: tuple[str, ...] = ("TMUX", "TMUX_PANE")
    extra_hidden: tuple[Path, ...] = field(default_factory=tuple)


def _under(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def _outermost(paths: Iterable[Path]) -> list[Path]:
    """The paths not inside another one of them (binding inside a read-only bind fails)."""
    out: list[Path] = []
    for v in sorted(set(paths), key=lambda x: len(x.parts)):
        if not any(_under(v, o) for o in out):
            out.append(v)
    return sorted(out)


def default_visible(root: Path, scripts_root: Path) -> tuple[Path, ...]:
    """What an agent needs to see even when it lives under /tmp: the project, the scripts and
    the Python that runs hatchctl (a test checkout or a CI clone may be under /tmp)."""
    return (root, scripts_root, Path(sys.prefix), Path(sys.base_prefix), _package_dir())


@functools.cache
def _package_dir() -> Path:
    """hatchctl's own directory, resolved once (a launch asks for it every time)."""
    return Path(__file__).resolve().parent.parent


def program_roots(program: Path) -> tuple[Path, ...]:
    """What an agent program given by path needs to see besides itself when it lives under
    the private /tmp: its whole ``node_modules`` (an npm CLI finds its platform binary in a
    sibling package: codex) or its virtualenv (aider), for the path and its resolved target."""
    out = [program]
    for p in (program, program.resolve()):
        out.append(p)
        for parent in p.parents:
            if parent.name == "node_modules" or (parent / "pyvenv.cfg").is_file():
                out.append(parent)
                break
    return tuple(dict.fromkeys(out))


def argv(profile: Profile, command: Sequence[str], *, elsewhere: bool = False) -> list[str]:
    """The bwrap command line that runs ``command`` under ``profile``. ``elsewhere``: the
    profile names the paths of another machine (an SSH host, engine/remotesandbox.py), so
    nothing of this one is looked at (no TMUX_TMPDIR, no existence check): the visible paths
    under /tmp are bound with ``--ro-bind-try`` (one missing there is skipped)."""
    p = profile
    out = [BWRAP, "--die-with-parent", "--unshare-pid", "--unshare-ipc"]
    out += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    tmux_dir = None if elsewhere else os.environ.get("TMUX_TMPDIR")
    hidden = [*p.extra_hidden]
    if tmux_dir and not _under(Path(tmux_dir), Path("/tmp")):
        hidden.append(Path(tmux_dir))
    for h in hidden:
        out += ["--tmpfs", str(h)]
    tmp, bind_visible = Path("/tmp"), "--ro-bind-try" if elsewhere else "--ro-bind"
    for v in _outermost(
        v for v in p.visible if _under(v, tmp) and v != tmp and (elsewhere or v.exists())
    ):
        out += [bind_visible, str(v), str(v)]
    inside = [w for w in (p.workdir, *p.writable) if _under(w, p.hatch_dir)]
    outside = sorted(
        (w for w in p.writable if not _under(w, p.hatch_dir)), key=lambda w: len(w.parts)
    )
    for w in outside:  # before .hatch is hidden: a writable parent cannot uncover it
        out += ["--bind", str(w), str(w)]
    out += ["--tmpfs", str(p.hatch_dir)]
    binds: list[tuple[str, Path, Path]] = [("--bind", w, w) for w in inside]
    if not _under(p.workdir, p.hatch_dir):
        binds.append(("--bind", p.workdir, p.workdir))
    binds += [("--ro-bind", r, r) for r in p.readable]
    if p.git is not None:
        g = p.git
        binds += [
            ("--bind", g.common_dir / "objects", g.common_dir / "objects"),
            ("--bind", g.worktree_gitdir, g.worktree_gitdir),
            ("--bind", g.shadow_refs, g.common_dir / "refs" / "heads" / "hatch"),
            ("--bind", g.shadow_logs, g.common_dir / "logs" / "refs" / "heads" / "hatch"),
        ]
    for flag, src, dst in sorted(binds, key=lambda b: len(b[2].parts)):  # parents first
        out += [flag, str(src), str(dst)]
    for name in p.unset_env:
        out += ["--unsetenv", name]
    out += ["--chdir", str(p.workdir), "--", *command]
    return out


@functools.cache
def probe(timeout: float = 10.0) -> str | None:
    """None when bwrap sandboxes work on this machine, else why not (one line)."""
    if shutil.which(BWRAP) is None:
        return "bwrap is not installed (sudo apt-get install -y bubblewrap)"
    cmd = [BWRAP, "--die-with-parent", "--unshare-pid", "--ro-bind", "/", "/"]
    cmd += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--", "true"]
    try:
        proc.run(cmd, timeout=timeout)
    except CommandError as exc:
        last = exc.output.strip().splitlines()[-1:] or [f"exit {exc.returncode}"]
        return f"bwrap cannot create a sandbox here: {last[0][:200]}"
    return None


def resolve_mode(mode: str) -> str:
    """``auto`` becomes ``bwrap`` where it works, else ``none``; ``bwrap`` stays (and fails at
    launch with the probe's reason if it does not work)."""
    if mode == "auto":
        return "bwrap" if probe() is None else "none"
    return mode


def ensure_dirs(paths: Iterable[Path]) -> None:
    """Mount points a sandbox binds over must exist on the host (bwrap cannot create them
    inside a read-only bind)."""
    for d in paths:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)


def confiner(hatch_dir: Path, visible: tuple[Path, ...]) -> Callable[[Path, list[str]], list[str]]:
    """Wraps a command hatchctl runs on agent-written code (acceptance, regression) in a sandbox
    where only its working directory is writable."""

    def wrap(workdir: Path, command: list[str]) -> list[str]:
        return argv(Profile(hatch_dir=hatch_dir, workdir=workdir, visible=visible), command)

    return wrap
