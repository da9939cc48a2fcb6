"""`hatchctl hosts` and `doctor` on a real project with one reachable host (the test sshd) and one
that refuses connections; [hosts.NAME] validation; path mapping."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from hatchctl.config import parse_config
from hatchctl.errors import ConfigError, HostError
from hatchctl.hosts import LocalHost, SshHost, build_hosts, doctor_checks
from hatchctl.hosts.base import project_dir_name
from hatchctl.hosts.probe import PROBE_SCRIPT, UNSAFE_READ, Health, problems
from hatchctl.project import Project
from tests.conftest import hatchctl, make_repo
from tests.hosts.conftest import section
from tests.hosts.sshd import SshServer, free_port


def test_hosts_lists_reachable_and_unreachable(sshd: SshServer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    remote = tmp_path / "remote"
    remote.mkdir()
    (repo / "hatch.toml").write_text(
        f'[hosts.up]\nssh = "{sshd.destination}"\nport = {sshd.port}\n'
        f'ssh_config = "{sshd.ssh_config}"\nroot = "{remote}/hatch"\nmax_active = 4\n'
        'labels = ["gpu", "big"]\n'
        f'[hosts.down]\nssh = "{sshd.destination}"\nport = {free_port()}\n'
        f'ssh_config = "{sshd.ssh_config}"\nroot = "/srv/hatch"\n'
    )
    out = hatchctl("hosts", cwd=repo, timeout=60)
    assert out.returncode == 1, out.stderr
    assert out.stderr.strip() == "hatchctl: 1 of 3 hosts not usable: down"
    lines = out.stdout.splitlines()
    assert lines[0].startswith("local  ok ") and "active 0/2" in lines[0]
    assert lines[2].startswith("up     ok ") and "labels gpu,big" in lines[2]
    assert f"MB free under {remote}/hatch, tmux " in lines[3] and "git version" in lines[3]
    inotify = shutil.which("inotifywait") is not None  # the loopback host is this machine
    assert lines[3].endswith(", stops by inotify" if inotify else "stops polled every 0.2 s")
    assert lines[4].startswith("down   unreachable")
    assert "host down" in lines[5] and "Connection refused" in lines[5]
    doc = json.loads(hatchctl("hosts", "--json", cwd=repo, timeout=60).stdout)
    by_name = {h["name"]: h for h in doc["hosts"]}
    assert list(by_name) == ["local", "up", "down"]
    assert by_name["up"]["reachable"] and by_name["up"]["free_mb"] > 0
    assert by_name["up"]["labels"] == ["gpu", "big"] and by_name["up"]["max_active"] == 4
    assert by_name["up"]["active"] == 0  # no agent of this project runs there
    assert by_name["up"]["watch"] == ("inotify" if inotify else "poll")
    assert by_name["local"]["watch"] == ""  # this machine's stops: the supervisor's inotify
    assert by_name["up"]["safe_read"] is True  # GNU dd: reads never follow a link
    assert by_name["local"]["safe_read"] is None
    assert not by_name["down"]["reachable"] and "Connection refused" in by_name["down"]["error"]
    project = Project.find(repo)
    checks = {c[0]: c for c in doctor_checks(project)}
    # the agent CLI (here `hatchctl sim-agent`) is not on the host's PATH: a warning for now
    polled = "" if inotify else "; no inotifywait: stops polled every 0.2 s; apt-get install "
    polled += "" if inotify else "inotify-tools there"
    assert checks["host up"][1:] == ("warn", "hatchctl not found" + polled)
    assert checks["host down"][1] == "fail" and "Connection refused" in checks["host down"][2]
    for host in build_hosts(project):  # the master `up` keeps for the next command
        host.close()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('ssh = "-oProxyCommand=touch x"\nroot = "/x"', "no leading '-'"),
        ('ssh = "a b"\nroot = "/x"', "whitespace"),
        ('ssh = "a"\nroot = "x"', "absolute path"),
        ('ssh = "a"\nroot = "/x/../etc"', "absolute path"),
        ('ssh = "a"\nroot = "/x"\nlabels = ["GPU!"]', "label 'GPU!'"),
        ('ssh = "a"\nroot = "/x"\nport = 0', "hosts.h.port"),
        ('ssh = "a"\nroot = "/x"\nuser = "me"', "unknown key 'hosts.h.user'"),
    ],
)
def test_host_tables_are_validated(table: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_config(f"[hosts.h]\n{table}\n", Path("hatch.toml"))


def test_local_is_reserved() -> None:
    with pytest.raises(ConfigError, match="'local' is this machine"):
        parse_config('[hosts.local]\nssh = "a"\nroot = "/x"\n', Path("hatch.toml"))


def test_paths_map_under_the_host_root(tmp_path: Path) -> None:
    from tests.hosts.sshd import SshServer as Server

    project = tmp_path / "my proj"
    fake = Server(tmp_path, 22, "me")
    ssh = SshHost(
        "h", section(fake, tmp_path / "srv"), project_root=project, state_dir=project / ".hatch"
    )
    name = project_dir_name(project)
    assert name.startswith("my-proj-") and "/" not in name
    wt = project / ".hatch" / "worktrees" / "T-1"
    assert ssh.map_path(project, wt) == PurePosixPath(tmp_path, "srv", name, ".hatch/worktrees/T-1")
    assert LocalHost(project).map_path(project, wt) == PurePosixPath(wt)
    for outside in (project / ".." / "x", Path("/etc/passwd"), Path("../../etc")):
        with pytest.raises(HostError, match="outside the project"):
            ssh.map_path(project, outside)


def test_a_host_whose_dd_would_follow_links_fails_its_check(tmp_path: Path) -> None:
    """The probe asks the host's dd to open with nofollow (engine/remotefiles.py READ needs it);
    a dd that cannot (here a stand-in first on PATH, as a non-GNU dd refuses the flags) is a
    failed check, not a host whose every read would look like a missing file."""

    def probed(path: str) -> dict[str, str]:
        out = subprocess.run(
            ["sh", "-c", PROBE_SCRIPT, "hatch-probe", str(tmp_path)],
            env={"PATH": path},
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        return dict(line.partition("=")[::2] for line in out.splitlines())

    assert probed("/usr/bin:/bin")["safe_read"] == "yes"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "dd"
    fake.write_text("#!/bin/sh\necho 'dd: invalid input flag' >&2\nexit 1\n")
    fake.chmod(0o755)
    assert probed(f"{bin_dir}:/usr/bin:/bin")["safe_read"] == ""
    health = Health("h", "h", "/srv", 1, [], reachable=True, tmux="tmux 3.3a", git="git 2.39")
    assert problems(health) == []
    health.safe_read = False
    assert problems(health) == [("fail", UNSAFE_READ)]
