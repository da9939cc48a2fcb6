"""A ``[hosts.NAME]`` reached with OpenSSH: one multiplexed connection per host.

Every call is ``ssh -o ControlMaster=auto -o ControlPath=<private socket> ... -- DEST CMD``:
the first call opens the master connection (ssh backgrounds it, ``ControlPersist``), every
later call rides on it (no TCP or key exchange: a few ms), and a call after the master died
opens a new one (the reconnect). The socket lives in a private 0700 directory under the
project's ``.hatch/ssh/``.

ssh joins its command arguments with spaces into ONE string that the remote login shell
parses, so each argument is quoted with shlex here: ``; touch pwned``, ``$(id)``, quotes and
spaces reach the remote program literally. The remote login shell must be a POSIX shell
(sh, bash, dash, zsh).

ssh exits 255 when it cannot connect or the connection drops; a remote program may exit 255
too. The two are told apart by asking for the master (``ssh -O check``): no master left means
the host is unreachable (HostUnreachable), a live one means the program's own status.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shlex
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path, PurePosixPath

from hatchctl import logsetup
from hatchctl.config import HostSection
from hatchctl.errors import CommandError, CommandTimeout, HostError, HostUnreachable, with_tail
from hatchctl.hosts.base import Host, project_dir_name, relative_inside
from hatchctl.runtime import proc
from hatchctl.runtime.tmux import Tmux

CONNECT_TIMEOUT = 5  # seconds for TCP connect + key exchange
ALIVE_INTERVAL = 5  # a silent link is probed every 5 s and dropped after 3 unanswered probes
ALIVE_COUNT = 3
PERSIST = "10m"  # the master outlives its last call by this long
CHECK_TIMEOUT = 5.0  # `ssh -O check|exit`: a local socket round trip
_SUN_PATH = 107  # bytes of a unix socket path; ssh binds "<ControlPath>.<16 random chars>" first


def private_dir(path: Path) -> Path:
    """``path`` as a directory only this user can enter (created 0700); HostError when it is a
    link, not a directory, or someone else's."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise HostError(f"{path}: not a directory of this user; refusing it for ssh sockets")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def control_socket(state_dir: Path, key: str) -> Path:
    """The master's socket: ``.hatch/ssh/<key>``, or (a project path too long for a unix
    socket) a private directory of this user under the temp dir."""
    path = state_dir / "ssh" / key
    if len(os.fsencode(path)) + 17 > _SUN_PATH:
        path = Path(tempfile.gettempdir()) / f"hatch-ssh-{os.geteuid()}" / key
    private_dir(path.parent)
    return path


def _run_client(
    argv: list[str],
    timeout: float,
    input_text: str | None,
    env: dict[str, str],
    *,
    text: bool = True,
) -> tuple[int, str | bytes, str | bytes, float]:
    """Run an ssh client, which hands its stdin, stdout and stderr to the master connection:
    after a timeout the client is killed and the pipes closed without waiting for their end
    (the master holds them until the remote program ends). (status, out, err, seconds)."""
    start = time.monotonic()
    child = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=text,
        errors="replace" if text else None,
        start_new_session=True,
    )
    try:
        out, err = child.communicate(input_text, timeout=timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)
        for pipe in (child.stdin, child.stdout, child.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        child.wait()
        raise
    empty: str | bytes = "" if text else b""
    return child.returncode, out or empty, err or empty, time.monotonic() - start


class SshHost(Host):
    def __init__(
        self,
        name: str,
        section: HostSection,
        *,
        project_root: Path,
        state_dir: Path,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.name = name
        self.destination = section.ssh
        self.port = section.port
        self.max_active = section.max_active
        self.labels = tuple(section.labels)
        self.project_root = project_root
        self.ssh_config: Path | None = None
        if section.ssh_config:
            config = Path(section.ssh_config).expanduser()
            self.ssh_config = config if config.is_absolute() else project_root / config
        self._root = PurePosixPath(section.root)
        self.connect_timeout = max(1, round(connect_timeout))
        key = "\0".join([str(project_root), name, self.destination, str(self.port)])
        digest = hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:16]
        self.control_path = control_socket(state_dir, digest)
        self.log = logsetup.get(component="host", host=name)

    @property
    def root(self) -> PurePosixPath:
        return self._root

    @property
    def address(self) -> str:
        return self.destination + (f":{self.port}" if self.port else "")

    # -- argv ------------------------------------------------------------------------------
    def _options(self) -> list[str]:
        opts = ["-F", str(self.ssh_config)] if self.ssh_config is not None else []
        if self.port is not None:
            opts += ["-p", str(self.port)]
        for option in (
            "BatchMode=yes",  # never a password or host-key prompt: fail instead
            f"ConnectTimeout={self.connect_timeout}",
            f"ServerAliveInterval={ALIVE_INTERVAL}",
            f"ServerAliveCountMax={ALIVE_COUNT}",
            "ControlMaster=auto",
            f"ControlPath={self.control_path}",
            f"ControlPersist={PERSIST}",
        ):
            opts += ["-o", option]
        return opts

    def ssh_argv(self, *, tty: bool = False) -> list[str]:
        """``ssh ... -- DEST``: append one remote command string (see remote_command)."""
        return ["ssh", *self._options(), "-t" if tty else "-T", "--", self.destination]

    @staticmethod
    def remote_command(argv: list[str], cwd: PurePosixPath | None = None) -> str:
        """The one string ssh hands to the remote shell: every argument quoted."""
        if not argv or isinstance(argv, str):
            raise TypeError("argv must be a non-empty list of arguments")
        command = shlex.join(argv)
        return f"cd {shlex.quote(str(cwd))} && exec {command}" if cwd is not None else command

    def _env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k not in ("HATCH_JOB_KEY", "TMUX")}

    # -- calls -----------------------------------------------------------------------------
    def run(
        self,
        argv: list[str],
        *,
        timeout: float,
        input_text: str | None = None,
        check: bool = True,
        cwd: PurePosixPath | None = None,
    ) -> proc.Result:
        code, out, err, seconds = self._call(argv, timeout, input_text, cwd, text=True)
        assert isinstance(out, str) and isinstance(err, str)
        res = proc.Result(list(argv), code, out, err, seconds)
        if check and res.returncode != 0:
            message = f"{argv[0]} on host {self.name} exited with {res.returncode}"
            raise CommandError(
                list(argv), res.returncode, res.output, with_tail(message, res.output)
            )
        return res

    def run_bytes(self, argv: list[str], *, timeout: float) -> tuple[int, bytes]:
        """``run`` for a program whose output is bytes (a log): (exit status, stdout)."""
        code, out, _err, _seconds = self._call(argv, timeout, None, None, text=False)
        assert isinstance(out, bytes)
        return code, out

    def _call(
        self,
        argv: list[str],
        timeout: float,
        input_text: str | None,
        cwd: PurePosixPath | None,
        *,
        text: bool,
    ) -> tuple[int, str | bytes, str | bytes, float]:
        full = [*self.ssh_argv(), self.remote_command(argv, cwd)]
        try:
            got = _run_client(full, timeout, input_text, self._env(), text=text)
        except subprocess.TimeoutExpired:
            if not self.master_alive():
                self.log.warning("host_unreachable", reason="timeout", timeout=timeout)
                raise HostUnreachable(
                    f"host {self.name} ({self.address}) did not answer within {timeout:g}s"
                ) from None
            raise CommandTimeout(list(argv), timeout, "") from None
        except OSError as exc:  # ssh itself missing or not executable
            raise HostError(f"host {self.name}: cannot run ssh: {exc.strerror}") from None
        if got[0] == 255 and not self.master_alive():
            err = got[2] if isinstance(got[2], str) else got[2].decode("utf-8", "replace")
            self.log.warning("host_unreachable", reason=err.strip()[-300:])
            raise HostUnreachable(
                with_tail(f"host {self.name} ({self.address}) is unreachable", err)
            )
        return got

    def _control(self, operation: str) -> proc.Result | None:
        argv = ["ssh", *self._options(), "-O", operation, "--", self.destination]
        try:
            return proc.run(argv, timeout=CHECK_TIMEOUT, check=False, env=self._env())
        except CommandError:
            return None

    def master_pid(self) -> int | None:
        """The pid of the live master connection, or None."""
        res = self._control("check")
        if res is None or res.returncode != 0:
            return None
        match = re.search(r"pid=(\d+)", res.stderr)
        return int(match.group(1)) if match else None

    def master_alive(self) -> bool:
        return self.master_pid() is not None

    def connect(self, timeout: float) -> int:
        """Open the master connection now (a no-op when it is up); returns its pid."""
        self.run(["true"], timeout=timeout)
        pid = self.master_pid()
        if pid is None:
            raise HostUnreachable(f"host {self.name} ({self.address}): no master connection")
        return pid

    def stream(self, argv: list[str], cwd: PurePosixPath | None = None) -> subprocess.Popen[bytes]:
        """A long-lived command on the host over the master connection (a watcher): its stdout
        is read by the caller line by line; it ends when the program or the link ends. The
        caller kills it (its own session: ``os.killpg``) and waits for it."""
        full = [*self.ssh_argv(), self.remote_command(argv, cwd)]
        try:
            return subprocess.Popen(
                full,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            raise HostError(f"host {self.name}: cannot run ssh: {exc.strerror}") from None

    def git_ssh_command(self) -> str:
        """GIT_SSH_COMMAND riding on this host's master connection (git runs it through a
        shell: every word quoted)."""
        return shlex.join(["ssh", *self._options()])

    def git_url(self, path: PurePosixPath) -> str:
        """The ``ssh://`` URL of a repository at ``path`` on this host (the port is in
        git_ssh_command's options)."""
        if not path.is_absolute():
            raise HostError(f"host {self.name}: {path} is not absolute")
        return f"ssh://{self.destination}{path}"

    def close(self) -> None:
        """Close the master connection (its running calls end with it)."""
        if self.control_path.exists():
            self._control("exit")

    # -- tmux and paths ------------------------------------------------------------------
    def tmux(self, socket: str, *, timeout: float, tag: str | None = None) -> Tmux:
        from hatchctl.hosts.tmux import HostTmux

        return HostTmux(self, socket, timeout=timeout, tag=tag)

    def project_root_on_host(self, project_root: Path) -> PurePosixPath:
        return self._root / project_dir_name(project_root)

    def map_path(self, project_root: Path, path: Path) -> PurePosixPath:
        relative = relative_inside(project_root, path)
        return self.project_root_on_host(project_root) / relative
