"""Agents on SSH hosts under bubblewrap, like local ones (docs/security.md, "Agents on SSH
hosts").

Whether a host can make a sandbox is asked once (``PROBE``, one call over its master connection)
and kept until the host is prepared again (it came back after being unreachable: it may be
another machine). ``[agents.<role>] sandbox`` decides, as locally: ``auto`` sandboxes where the
host has a working ``bwrap`` and otherwise runs bare, saying so once per host (event and log
``host_sandbox_unavailable``); ``bwrap`` refuses the host (``usable`` is False for that role,
and a launch there is a HostError: placement passes the host over, the failure counts against
it); ``none`` runs bare.

An unsandboxed run there runs under the reaper as a local one does (runtime/reaper.py, a
child subreaper: a double-forked ``setsid`` grandchild stays its descendant and dies with the
run when its pane is closed or the agent exits); a sandboxed one has bwrap's pid namespace for
that, as locally (engine/confinement.py reaper_prefix). Hosts do not have hatchctl: its source
(``reaper_source``) is put beside the scripts there (``reaper_file``, by ``remote.prepare``) and
run by the python3 the probe saw run it (``python3 -I -S FILE``: no site, no script directory on
its path). A
host without one runs its unsandboxed agents without the reaper, said once per host at its
first such launch (event and log ``host_reaper_unavailable``).

The profile is the local one (runtime/sandbox.py) built from the host's paths: the whole host
read-only, a private ``/tmp``, its own ``/proc`` in a new pid namespace that dies with its first
process (``--die-with-parent``: closing the pane ends the tree), and the host's ``.hatch/`` an
empty tmpfs except

- read-write: the worktree, the run's exchange directory, and the task's own repository
  ``.hatch/tasks/<ID>.git`` (host_worktree.sh: its objects, refs, index; its ``objects/info/
  alternates`` names the shared clone's objects). Nothing else of the host's git: the shared
  clone ``repo.git`` (what the controller pushed) and the other tasks' repositories are out of
  reach, so no shadow refs are needed (the local trick: every task shares one repository);
- read-only: the shared clone's objects, the task repository's ``config`` and ``alternates``
  (host scripts run git there, outside the sandbox: an agent must not give them hooks or an
  fsmonitor, nor point them elsewhere; host_worktree.sh writes both anew before every run
  anyway), the run's prompt, handover and spec, the host scripts;
- invisible: the tickets (``runs/``), logs, every other task's worktree, repository and files,
  and, on a host that shares the controller's filesystem, the controller's own ``.hatch/``.

The controller still checks what it fetches back (fetch_from_host.sh reads only the task's own
branch of the task's own repository; verification and the merge run on the controller).
"""

from __future__ import annotations

import ast
import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from hatchctl import agents
from hatchctl.errors import HostError
from hatchctl.hosts.ssh import SshHost
from hatchctl.runtime import reaper, sandbox
from hatchctl.state.rows import RunRow

if TYPE_CHECKING:
    from hatchctl.engine.remote import RemoteRuns

# $1: the controller's .hatch (a host that shares its filesystem has it: hidden from agents);
# $2: the reaper's source (``reaper_source``). Prints the home directory, ``reaper=PYTHON`` when
# that python3 runs the reaper (an agent exiting 3 through it), "hide" when $1 is a directory
# there; exit 3 with the reason when bwrap cannot run.
PROBE = r"""
printf 'home=%s\n' "$HOME"
py=$(command -v python3 2>/dev/null) && case $py in /*)
  "$py" -I -S -c "$2" --grace 0 -- sh -c 'exit 3' </dev/null >/dev/null 2>&1
  [ $? -eq 3 ] && printf 'reaper=%s\n' "$py" ;; esac
[ -d "$1" ] && [ ! -L "$1" ] && echo hide
command -v bwrap >/dev/null 2>&1 || { echo "no: bwrap is not installed there"; exit 3; }
out=$(bwrap --die-with-parent --unshare-pid --unshare-ipc --ro-bind / / --dev /dev \
  --proc /proc --tmpfs /tmp -- true 2>&1) && exit 0
last=$(printf '%s' "$out" | tail -n 1 | cut -c 1-200)
printf 'no: bwrap cannot create a sandbox there: %s\n' "$last"
exit 3
"""
NO_REAPER = "no python3 >= 3.8 there that runs the reaper"


@functools.cache
def reaper_source() -> str:
    """runtime/reaper.py as one ``python3 -I -S -c`` argument: its own code (standard library
    only), the docstrings and comments left out (tmux takes at most 16 KiB for a whole command,
    bwrap's arguments and the run's variables included)."""
    tree = ast.parse(Path(reaper.__file__).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef) and body:
            first = body[0]
            value = first.value if isinstance(first, ast.Expr) else None
            if isinstance(value, ast.Constant) and isinstance(value.value, str):  # a docstring
                node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


def reaper_file(remote: RemoteRuns, host: SshHost) -> PurePosixPath:
    """Where ``remote.prepare`` puts ``reaper_source`` on the host, beside the scripts (a file:
    the pane's command stays short, tmux taking at most 16 KiB for a whole command)."""
    return remote.hatch_dir(host) / "scripts" / "agent" / "reaper.py"


def task_repo(remote: RemoteRuns, host: SshHost, task_id: str) -> PurePosixPath:
    """The task's own repository on the host (made by host_worktree.sh)."""
    return remote.hatch_dir(host) / "tasks" / f"{task_id}.git"


@dataclass(frozen=True)
class Probed:
    problem: str | None  # None when bwrap works on the host, else why not
    hide: bool  # the controller's .hatch exists there (a loopback host)
    python: str | None  # the python3 that runs the reaper there, None without one


class HostSandboxes:
    """What each host of one supervisor can do (probed once), and the bwrap and reaper command
    lines of a run there."""

    def __init__(self, remote: RemoteRuns) -> None:
        self.remote = remote
        self.probed: dict[str, Probed] = {}
        self.homes: dict[str, PurePosixPath] = {}  # name -> $HOME there
        self.warned: set[str] = set()  # hosts said to run bare
        self.unreaped: set[str] = set()  # hosts said to run without the reaper

    def forget(self, name: str) -> None:
        self.probed.pop(name, None)
        self.warned.discard(name)
        self.unreaped.discard(name)

    def probe(self, host: SshHost) -> Probed:
        """Whether bwrap works on the host, whether the controller's ``.hatch`` exists there,
        which python3 runs the reaper there. A host that does not answer raises (nothing is
        kept)."""
        got = self.probed.get(host.name)
        if got is None:
            ours = str(self.remote.deps.project.paths.hatch)
            res = host.run(
                ["sh", "-c", PROBE, "hatch-probe", ours, reaper_source()],
                timeout=float(self.remote.deps.limits.script_timeout),
                check=False,
            )
            lines = res.stdout.splitlines()
            if res.returncode not in (0, 3):
                raise HostError(f"host {host.name}: cannot probe bwrap: {res.output[-300:]}")
            why = next((ln[4:] for ln in lines if ln.startswith("no: ")), "bwrap failed there")
            python = next((ln[7:] for ln in lines if ln.startswith("reaper=/")), None)
            got = Probed(None if res.returncode == 0 else why, "hide" in lines, python)
            home = next((ln[5:] for ln in lines if ln.startswith("home=/")), "")
            if home:
                self.homes[host.name] = PurePosixPath(home)
            self.probed[host.name] = got
            self.remote.log.info(
                "host_sandbox_probe", host=host.name, problem=got.problem, python=python
            )
        return got

    def mode(self, host: SshHost, role: str) -> str:
        """``bwrap`` or ``none`` for a run of ``role`` on the host; HostError when the role
        requires the sandbox and the host cannot make it."""
        wanted = getattr(self.remote.deps.project.config.agents, role).sandbox
        if wanted == "none":
            return "none"
        problem = self.probe(host).problem
        if problem is None:
            return "bwrap"
        if wanted == "bwrap":
            raise HostError(
                f"host {host.name}: sandbox = bwrap for the {role} agent, but {problem}"
            )
        if host.name not in self.warned:
            self.warned.add(host.name)
            self._say("host_sandbox_unavailable", host, role, problem)
        return "none"

    def _say(self, kind: str, host: SshHost, role: str, problem: str) -> None:
        self.remote.log.warning(kind, host=host.name, problem=problem)
        with self.remote.deps.store.tx() as tx:
            tx.event(kind, data={"host": host.name, "role": role, "problem": problem})

    def reaper(self, host: SshHost) -> list[str]:
        """The reaper's command line (to put before an unsandboxed agent's): the host's
        python3 running ``reaper_source`` with the run's kill grace, as a local run's
        (engine/confinement.py reaper_prefix); empty where the host has no python3 for it.
        Probes the host the first time (the launch's thread: ``sandbox = "none"`` did not)."""
        python = self.probe(host).python
        if python is None:
            return []
        grace = f"{float(self.remote.deps.limits.kill_grace):g}"
        return [python, "-I", "-S", str(reaper_file(self.remote, host)), "--grace", grace, "--"]

    def reaped(self, host: SshHost, role: str) -> bool | None:
        """Whether the host's runs run under the reaper, as its probe found (no call to the
        host; None when it is not probed); a host without it is said once (event and log
        ``host_reaper_unavailable``: the loop's thread, at its first launch's ``finish``)."""
        probed = self.probed.get(host.name)
        if probed is None:
            return None
        if probed.python is None and host.name not in self.unreaped:
            self.unreaped.add(host.name)
            self._say("host_reaper_unavailable", host, role, NO_REAPER)
        return probed.python is not None

    def preparer(self, role: str | None) -> Callable[[SshHost], None]:
        """``remote.prepare``, then a HostError when ``role``'s agent requires the sandbox and
        the host cannot make it (placement passes such a host over: remotehealth.usable)."""

        def ready(host: SshHost) -> None:
            self.remote.prepare(host)
            refusal = self.refuses(host, role) if role else None
            if refusal:
                raise HostError(f"host {host.name}: {refusal}")

        return ready

    def refuses(self, host: SshHost, role: str) -> str | None:
        """Why ``role`` cannot run on ``host`` (its sandbox is required and the host cannot
        make it), or None."""
        agent = getattr(self.remote.deps.project.config.agents, role)
        if agent.sandbox != "bwrap":
            return None
        problem = self.probe(host).problem
        return None if problem is None else f"sandbox = bwrap for the {role} agent, but {problem}"

    def writable(self, host: SshHost, role: str) -> list[PurePosixPath]:
        """``[agents.<role>] sandbox_writable`` as paths of the host (``~``: its home there);
        HostError for one that is not absolute there or would make the project writable."""
        agent = getattr(self.remote.deps.project.config.agents, role)
        base, out = self.remote.base(host), []
        for entry in agent.sandbox_writable:
            home = self.homes.get(host.name)
            if (entry == "~" or entry.startswith("~/")) and home is not None:
                path = home / entry[2:] if entry != "~" else home
            elif entry.startswith("/"):
                path = PurePosixPath(entry)
            else:
                raise HostError(f"host {host.name}: sandbox_writable {entry!r} is not absolute")
            if path == base or base in path.parents or path in base.parents:
                raise HostError(
                    f"host {host.name}: [agents.{role}] sandbox_writable {path} would make "
                    "the project there writable"
                )
            out.append(path)
        return out

    def argv(
        self, host: SshHost, run: RunRow, readable: list[Path], extra: list[PurePosixPath]
    ) -> list[str]:
        """bwrap's command line (to put before the agent's command) for ``run`` on ``host``;
        ``readable``: the run's files copied there (this machine's paths); ``extra``: the
        ``writable`` paths, made to exist there."""
        remote = self.remote
        paths = remote.deps.project.paths

        def there(path: Path | PurePosixPath) -> Path:
            return Path(str(path))

        hatch = remote.hatch_dir(host)
        repo = task_repo(remote, host, run.task_id)
        stop = paths.stop_file(run.task_id, run.role, run.iteration, run.attempt)
        agent = getattr(remote.deps.project.config.agents, run.role)
        on_host = [remote.on_host(host, p) for p in readable]
        ro = [p for p in dict.fromkeys(on_host) if hatch in p.parents]
        ro += [
            hatch / "scripts",
            hatch / "repo.git" / "objects",
            repo / "config",
            repo / "objects" / "info" / "alternates",
        ]
        programs = [Path(a) for a in agent.command if a.startswith("/")]
        ours = paths.hatch  # on a host that shares this filesystem: hidden (under /tmp it is)
        shared = self.probe(host).hide
        hide = shared and Path("/tmp") not in ours.parents and ours != there(hatch)
        if shared:  # this machine (a loopback host): what a local agent sees of the programs
            # and of this Python even under /tmp (a CI clone there); never the project itself
            roots = [r for p in programs for r in sandbox.program_roots(p)]
            here = Path(sandbox.__file__).resolve().parent.parent
            programs += [*roots, Path(sys.prefix), Path(sys.base_prefix), here]
        profile = sandbox.Profile(
            hatch_dir=there(hatch),
            workdir=there(remote.on_host(host, paths.worktree(run.task_id))),
            writable=(there(remote.on_host(host, stop.parent)), there(repo), *map(there, extra)),
            readable=tuple(there(p) for p in ro),
            visible=(there(remote.base(host)), *programs),
            extra_hidden=(ours,) if hide else (),
        )
        return sandbox.argv(profile, [], elsewhere=True)

    def env(self, host: SshHost, run: RunRow, mode: str) -> dict[str, str]:
        """The variables the agent's preset adds for its mode (e.g. IS_SANDBOX=1 for Claude
        Code under bwrap), as the local launcher does; ``[agents.<role>].env`` still wins."""
        remote = self.remote
        agent = getattr(remote.deps.project.config.agents, run.role)
        worktree = remote.on_host(host, remote.deps.project.paths.worktree(run.task_id))
        ctx = agents.LaunchContext(
            sandbox=mode,
            env=agents.agent_env(agent),
            command=tuple(agent.command),
            worktree=Path(str(worktree)),
            role=run.role,
        )
        return {"HATCH_SANDBOX": mode, **agents.launch_env(agent, ctx)}
