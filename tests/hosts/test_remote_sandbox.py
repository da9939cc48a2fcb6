"""Agents on an SSH host run under bwrap there (engine/remotesandbox.py; the loopback sshd, real
bwrap): a hostile agent on the host attacks another task's worktree and repository there, the
host's shared clone, tickets and scripts, its own repository's config, the controller's checkout
(the same filesystem) and processes outside its pid namespace; every attack is blocked and both
tasks still complete. A host without bwrap is refused for an agent whose sandbox is required,
and used bare, once said so, for one on ``auto``."""

from __future__ import annotations

import contextlib
import os
import pwd
import sys
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import psutil
import pytest

from hatchctl.cmds.common import build_deps
from hatchctl.errors import HostError
from hatchctl.hosts.base import project_dir_name
from hatchctl.project import Project
from hatchctl.runtime import sandbox
from tests.conftest import git
from tests.hosts.conftest import sshd_without
from tests.hosts.sshd import SshServer
from tests.hosts.test_remote_run import SIM, host_config, host_server_cleaned, remote_root
from tests.integration.conftest import Projects, drain, projects, to_toml

__all__ = ["projects", "remote_root"]  # the fixtures

needs_bwrap = pytest.mark.skipif(
    sandbox.probe() is not None, reason=f"no bwrap sandbox here: {sandbox.probe()}"
)

HOSTILE = r"""
import os, subprocess, sys
if os.environ["HATCH_TASK_ID"] != "EVIL":
    os.execv(sys.executable, [sys.executable, "-m", "hatchctl", "sim-agent", *sys.argv[1:]])
there = os.environ["ATTACK_THERE"]  # the host's .hatch
root = os.environ["ATTACK_ROOT"]  # the controller's checkout: the same filesystem here

def attempt(name, fn):
    try:
        fn()
        print(f"ATTACK {name} SUCCEEDED", flush=True)
    except Exception as exc:
        print(f"ATTACK {name} blocked ({type(exc).__name__})", flush=True)

def write(path, mode="w"):
    def go():
        with open(path, mode) as f:
            f.write("pwned\n")
    return go

def git(*argv):
    subprocess.run(["git", *argv], check=True, capture_output=True, timeout=20)

def see(pid):
    def go():
        if str(pid) not in os.listdir("/proc"):
            raise PermissionError(f"{pid} is not visible")
    return go

def signal(pid):
    return lambda: os.kill(int(pid), 0)

def tmux():
    sock = os.environ["ATTACK_SOCKET"]
    if not os.path.exists(sock):
        raise FileNotFoundError(sock)
    git_free = ["tmux", "-S", sock, "new-window", "-d", "touch " + os.environ["ATTACK_CANARY"]]
    subprocess.run(git_free, check=True, capture_output=True, timeout=20)

head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
decoy = os.path.join(there, "tasks", "DECOY.git")
attempt("write_other_worktree", write(os.path.join(there, "worktrees", "DECOY", "PWNED")))
attempt("write_victim_worktree", write(os.path.join(there, "worktrees", "VICTIM", "PWNED")))
attempt("write_other_ref", write(os.path.join(decoy, "refs", "heads", "hatch", "DECOY")))
clone = os.path.join(there, "repo.git")
decoy_ref = "refs/heads/hatch/DECOY"
attempt("delete_other_branch", lambda: git("--git-dir", decoy, "update-ref", "-d", decoy_ref))
attempt("ref_in_clone", lambda: git("--git-dir", clone, "update-ref", "refs/heads/pwned", head))
attempt("write_clone_objects", write(os.path.join(clone, "objects", "PWNED")))
attempt("write_ticket", write(os.path.join(there, "runs", "999.ticket")))
attempt("write_host_script", write(os.path.join(there, "scripts", "agent", "run_agent.sh"), "a"))
own = os.path.join(there, "tasks", "EVIL.git")
attempt("write_own_git_config", write(os.path.join(own, "config"), "a"))
attempt("write_own_alternates", write(os.path.join(own, "objects", "info", "alternates"), "a"))
attempt("write_main_checkout", write(os.path.join(root, "PWNED")))
attempt("commit_on_main", lambda: git("-C", root, "commit", "--allow-empty", "-qm", "pwn"))
attempt("see_supervisor", see(os.environ["ATTACK_SUPERVISOR_PID"]))
attempt("signal_supervisor", signal(os.environ["ATTACK_SUPERVISOR_PID"]))
attempt("signal_sshd", signal(os.environ["ATTACK_SSHD_PID"]))
attempt("tmux_new_window", tmux)
write(os.path.join(os.environ["ALLOWED_DIR"], "ok"))()  # sandbox_writable: may
os.execv(sys.executable, [sys.executable, "-m", "hatchctl", "sim-agent", *sys.argv[1:]])
"""

ATTACKS = (
    "write_other_worktree",
    "write_victim_worktree",
    "write_other_ref",
    "delete_other_branch",
    "ref_in_clone",
    "write_clone_objects",
    "write_ticket",
    "write_host_script",
    "write_own_git_config",
    "write_own_alternates",
    "write_main_checkout",
    "commit_on_main",
    "see_supervisor",
    "signal_supervisor",
    "signal_sshd",
    "tmux_new_window",
)


def make_decoy(there: Path, tmp_path: Path) -> str:
    """Another task's worktree and repository on the host, as host_worktree.sh makes them
    (there before the hostile agent runs, whatever the order of the launches)."""
    (there / "tasks").mkdir(parents=True)
    repo, worktree = there / "tasks" / "DECOY.git", there / "worktrees" / "DECOY"
    worktree.mkdir(parents=True)
    git(tmp_path, "init", "-q", "--bare", "-b", "hatch/DECOY", str(repo))
    (worktree / ".git").write_text(f"gitdir: {repo}\n")
    git(repo, "config", "core.bare", "false")
    (worktree / "d.txt").write_text("decoy\n")
    git(worktree, "add", "d.txt")
    git(worktree, "-c", "user.name=d", "-c", "user.email=d@d", "commit", "-qm", "decoy")
    return git(repo, "rev-parse", "refs/heads/hatch/DECOY")


@needs_bwrap
def test_a_hostile_agent_on_a_host_is_confined_and_both_tasks_complete(
    projects: Projects, sshd: SshServer, remote_root: Path, tmp_path: Path
) -> None:
    agent = tmp_path / "hostile.py"
    agent.write_text(HOSTILE)
    canary = tmp_path / "CANARY"
    config = host_config(sshd, remote_root)
    allowed = tmp_path / "agent-home"  # made there by the launch
    factory = {
        "command": [sys.executable, str(agent)],
        "sandbox": "auto",
        "sandbox_writable": [str(allowed)],
    }
    config["agents"] = {"factory": factory, "qa": {"command": SIM, "sandbox": "auto"}}
    on_host = {"host_labels": ["gpu"]}
    project = projects.make(
        {
            "EVIL": {"acceptance": "test -f e.txt", "sim": {"files": {"e.txt": "e\n"}}, **on_host},
            "VICTIM": {
                "acceptance": "test -f v.txt",
                "sim": {"files": {"v.txt": "v\n"}},
                **on_host,
            },
        },
        config=config,
    )
    there = remote_root / project_dir_name(project.root) / ".hatch"
    decoy_tip = make_decoy(there, tmp_path)
    env = {
        "ATTACK_THERE": str(there),
        "ATTACK_ROOT": str(project.root),
        "ATTACK_SUPERVISOR_PID": str(os.getpid()),
        "ATTACK_SSHD_PID": str(sshd.proc.pid if sshd.proc else 0),
        "ATTACK_SOCKET": f"/tmp/tmux-{os.getuid()}/{project.tmux_socket}-loop",
        "ATTACK_CANARY": str(canary),
        "ALLOWED_DIR": str(allowed),
    }
    project = with_agent_env(project, env)
    main_before = git(project.root, "rev-parse", "refs/heads/main")
    with host_server_cleaned(project):
        code, tasks, deps = drain(project, time_limit=90)
    logs = sorted(project.paths.logs.glob("factory/EVIL.factory.*.log"))
    log = "".join(p.read_text(errors="replace") for p in logs)
    for name in ATTACKS:
        assert f"ATTACK {name} blocked" in log, f"{name}:\n{log[-3000:]}"
    assert code == 0, {t: (x.state, x.last_error) for t, x in tasks.items()}
    assert tasks["EVIL"].state == "completed" and tasks["VICTIM"].state == "completed"
    # nothing outside EVIL's own files changed, on the host or here
    assert not (there / "worktrees" / "DECOY" / "PWNED").exists()
    assert git(there / "tasks" / "DECOY.git", "rev-parse", "hatch/DECOY") == decoy_tip
    assert not (there / "runs" / "999.ticket").exists()
    assert not (there / "repo.git" / "objects" / "PWNED").exists()
    assert git(there / "repo.git", "for-each-ref", "refs/heads") == ""
    script = deps.scripts.root / "agent" / "run_agent.sh"
    assert (there / "scripts" / "agent" / "run_agent.sh").read_text() == script.read_text()
    assert "pwned" not in (there / "tasks" / "EVIL.git" / "config").read_text()
    assert not (project.root / "PWNED").exists() and not canary.exists()
    assert (allowed / "ok").read_text() == "pwned\n"  # what it may write, it wrote
    assert git(project.root, "rev-parse", "refs/heads/main") == main_before
    victim = git(project.root, "show", "--name-only", "--format=", "refs/heads/hatch/VICTIM")
    assert victim.split() == ["v.txt"]
    # every run was on the host, under bwrap, and said so
    runs = deps.store.runs("EVIL") + deps.store.runs("VICTIM")
    assert runs and all(r.host == "loop" for r in runs)
    launched = [
        e for t in ("EVIL", "VICTIM") for e in deps.store.events(t) if e.to_state == "running"
    ]
    assert launched and all(e.data.get("sandbox") == "bwrap" for e in launched)


KEEPER = r"""
import os, subprocess, sys, time
if os.environ["HATCH_ATTEMPT"] == "1":  # leaves a grandchild in a session of its own, then hangs
    keep = "import signal, time; signal.signal(signal.SIGHUP, signal.SIG_IGN); "
    keep += "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
    subprocess.Popen([sys.executable, "-c", keep, os.environ["KEEPER_MARK"]],
                     start_new_session=True, stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print("grandchild started", flush=True)
    time.sleep(600)
os.execv(sys.executable, [sys.executable, "-m", "hatchctl", "sim-agent", *sys.argv[1:]])
"""


def marked(mark: str) -> list[int]:
    """The pids of the processes with ``mark`` among their arguments."""
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        if mark in (p.info["cmdline"] or []):
            found.append(p.info["pid"])
    return found


@needs_bwrap
def test_killing_a_sandboxed_run_on_a_host_ends_its_whole_tree(
    projects: Projects, sshd: SshServer, remote_root: Path, tmp_path: Path
) -> None:
    agent = tmp_path / "keeper.py"
    agent.write_text(KEEPER)
    mark = f"hatch-keeper-{uuid.uuid4().hex}"
    config = host_config(sshd, remote_root)
    config["limits"] = {"idle_timeout": "2s"}
    keeper = {"command": [sys.executable, str(agent)], "env": {"KEEPER_MARK": mark}}
    config["agents"] = {"factory": keeper, "qa": {"command": SIM}}  # sandbox: auto (default)
    spec = {"acceptance": "test -f k.txt", "sim": {"files": {"k.txt": "k\n"}}}
    project = projects.make({"T-1": {**spec, "host_labels": ["gpu"]}}, config=config)
    try:
        with host_server_cleaned(project):
            code, tasks, deps = drain(project, time_limit=60)
        assert code == 0 and tasks["T-1"].state == "completed", tasks["T-1"].last_error
        runs = deps.store.runs("T-1")
        assert [(r.attempt, r.host, r.state, r.reason) for r in runs][:2] == [
            (1, "loop", "timed_out", "idle_timeout"),  # killed: its pane closed on the host
            (2, "loop", "succeeded", "completed"),
        ]
        assert "grandchild started" in (project.root / runs[0].log_path).read_text()
        # the pid namespace died with the sandbox: the grandchild too, long before now (no
        # reaper ran in front of bwrap: the namespace does its work)
        assert marked(mark) == []
        launched = [
            (e.data["sandbox"], e.data.get("reaper"))
            for e in deps.store.events("T-1")
            if e.run_id == runs[0].id and e.from_state == "starting" and e.to_state == "running"
        ]
        assert launched == [("bwrap", False)]
    finally:
        for pid in marked(mark):  # a failure leaves nothing behind
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()


def with_agent_env(project: Project, env: dict[str, str]) -> Project:
    """The project with ``env`` for its factory agent (values known once it exists)."""
    path = project.root / "hatch.toml"
    config = tomllib.loads(path.read_text())
    config["agents"]["factory"]["env"] = env
    path.write_text(to_toml(config))
    git(project.root, "commit", "-qam", "the attack's settings")
    return Project.find(project.root)


@pytest.fixture
def bare_sshd(tmp_path: Path) -> Iterator[SshServer]:
    """A server whose sessions have a PATH with everything of /usr/bin but bwrap: a host
    without bwrap."""
    yield from sshd_without(tmp_path / "nobwrap", lambda name: name == "bwrap")


def test_a_host_without_bwrap_is_refused_when_the_sandbox_is_required(
    projects: Projects, bare_sshd: SshServer, tmp_path: Path
) -> None:
    root = tmp_path / "remote"
    root.mkdir()
    config = host_config(bare_sshd, root)
    config["agents"] = {
        "factory": {"command": SIM, "sandbox": "bwrap", "sandbox_writable": ["~/.x", str(root)]},
        "qa": {"command": SIM, "sandbox": "auto", "sandbox_writable": ["relative"]},
    }
    project = projects.make({}, config=config)
    deps = build_deps(project)
    remote = deps.remote
    host = remote.hosts["loop"]
    try:
        assert remote.usable(host)  # prepared: nothing wrong with it but bwrap
        assert not remote.usable(host, "factory")  # required: refused, counted against it
        assert not remote.usable(host, "factory")
        failures = remote.health.breakers["loop"].failures
        assert len(failures) == 2 and "bwrap is not installed there" in failures[-1][1]
        with pytest.raises(HostError, match="bwrap is not installed there"):
            remote.sandboxes.mode(host, "factory")  # a launch there fails before anything
        assert remote.usable(host, "qa")  # auto: runs bare there, said once
        assert remote.sandboxes.mode(host, "qa") == "none"
        assert remote.sandboxes.mode(host, "qa") == "none"
        said = [e for e in deps.store.events() if e.kind == "host_sandbox_unavailable"]
        assert len(said) == 1 and said[0].data["host"] == "loop"
        assert "bwrap is not installed" in said[0].data["problem"]
        with pytest.raises(HostError, match="would make the project there writable"):
            remote.sandboxes.writable(host, "factory")  # the host's root holds the project
        with pytest.raises(HostError, match="is not absolute"):
            remote.sandboxes.writable(host, "qa")
        assert remote.sandboxes.homes["loop"] == PurePosixPath(pwd.getpwuid(os.getuid()).pw_dir)
    finally:
        remote.shutdown(kill_servers=False)
        deps.store.close()
