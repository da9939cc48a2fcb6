"""A throwaway OpenSSH server on 127.0.0.1 for the hosts tests and bench/bench_ssh.py.

Everything is private to one directory: a host key, a client key (its public half the only
authorized key, through ``AuthorizedKeysFile``), known_hosts, and the client's ssh_config (ssh
reads ~/.ssh/config from the passwd home, not $HOME: the client is always given ``-F``). The
machine may run as root: this server alone lets root in, with the key only.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = Path("/run/sshd")  # compiled into Debian's sshd


def unavailable() -> str | None:
    """Why no test server can run here, or None."""
    if not os.access(SSHD, os.X_OK):
        return f"{SSHD} not installed (apt-get install -y openssh-server)"
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        return "ssh or ssh-keygen not installed (apt-get install -y openssh-client)"
    if not PRIVSEP_DIR.is_dir():
        if os.geteuid() != 0:
            return f"sshd needs {PRIVSEP_DIR} (created by root) to run"
        PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hatch-test", "-f", str(path)],
        check=True,
        timeout=30,
    )
    return path.with_suffix(".pub").read_text().strip()


@dataclass
class SshServer:
    directory: Path
    port: int
    user: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def ssh_config(self) -> Path:
        return self.directory / "ssh_config"

    @property
    def destination(self) -> str:
        return f"{self.user}@127.0.0.1"

    def start(self, timeout: float = 10.0) -> None:
        """Start sshd and wait (bounded) until it accepts connections."""
        log = (self.directory / "sshd.log").open("ab")
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.directory / "sshd_config")],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {(self.directory / 'sshd.log').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("sshd did not listen in time") from None
                time.sleep(0.01)

    def stop(self) -> None:
        """Stop the listener and every connection it serves (their sessions are children)."""
        if self.proc is None:
            return
        try:
            procs = [psutil.Process(self.proc.pid)]
            procs += procs[0].children(recursive=True)
        except psutil.NoSuchProcess:
            procs = []
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        psutil.wait_procs(procs, timeout=10)
        self.proc.wait(timeout=10)
        self.proc = None

    def running(self, argv: list[str]) -> bool:
        """Whether a session of this server runs ``argv`` now."""
        if self.proc is None:
            return False
        for p in psutil.Process(self.proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if p.cmdline() == argv:
                    return True
        return False

    def connections(self) -> int:
        """How many client connections the server holds (one process each)."""
        if self.proc is None:
            return 0
        return len(psutil.Process(self.proc.pid).children())


def make_server(directory: Path, env: dict[str, str] | None = None) -> SshServer:
    """A server in ``directory``; ``env``: variables every session gets (e.g. a PATH without
    some program, to play a host that lacks it)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    host_pub = _keygen(directory / "host_key")
    client_pub = _keygen(directory / "client_key")
    (directory / "authorized_keys").write_text(client_pub + "\n")
    port = free_port()
    user = pwd.getpwuid(os.geteuid()).pw_name
    (directory / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\n"
        f"HostKey {directory / 'host_key'}\n"
        f"AuthorizedKeysFile {directory / 'authorized_keys'}\n"
        f"PidFile {directory / 'sshd.pid'}\n"
        "StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        f"AllowUsers {user}\nMaxSessions 64\nMaxStartups 64\nLogLevel ERROR\n"
        # bash runs ~/.bashrc for a command started by sshd unless it is a nested shell: this
        # machine's .bashrc (pyenv init) must not time every call of the tests
        "SetEnv SHLVL=1" + "".join(f" {k}={v}" for k, v in (env or {}).items()) + "\n"
    )
    (directory / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    (directory / "ssh_config").write_text(
        "Host *\n"
        f"  IdentityFile {directory / 'client_key'}\n"
        "  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {directory / 'known_hosts'}\n"
        "  GlobalKnownHostsFile /dev/null\n"
        "  StrictHostKeyChecking yes\n"
        "  LogLevel ERROR\n"
    )
    subprocess.run([SSHD, "-t", "-f", str(directory / "sshd_config")], check=True, timeout=30)
    return SshServer(directory, port, user)
