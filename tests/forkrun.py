"""Run `python -m hatchctl ...` as forks of interpreters that imported hatchctl once.

A `hatchctl` process costs ~0.25 CPU-s, ~0.2 of it importing (pydantic, structlog, the engine).
A zygote is a fresh `python` that imports hatchctl's modules (not the Textual ones) and then
forks once per call; the child runs `hatchctl/__main__.py` exactly as `python -m hatchctl` does,
as its own process: its pid, cwd, environment, umask, stdin /dev/null, stdout/stderr to files,
no other fd, the signal dispositions of a fresh interpreter, an exit status (-9 when SIGKILLed).
What is not repeated per call is only the import of modules, which the zygote, itself a fresh
interpreter, has done. A zygote runs one child at a time; each pytest process keeps a pool of
them (`pool()`): a call takes an idle one or starts one more. A zygote keeps its ended child a
zombie until told to reap it (so no signal sent by a handle can reach a reused pid), kills it
and exits on EOF of its request pipe (the pytest process died), and the pool closes them all
when the pytest process exits.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

Hatchctl = Callable[..., subprocess.CompletedProcess[str]]

# runs as `python -c ZYGOTE REQ_FD REP_FD`: requests and replies are JSON lines on two pipes, so
# fds 0/1/2 and sys.stdin/stdout/stderr stay untouched until a child points 1 and 2 at its files
ZYGOTE = r"""
import gc, importlib, json, os, pkgutil, runpy, select, signal, sys, threading
SIGNALS = [s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)]
FRESH = {s: signal.getsignal(s) for s in SIGNALS}  # as a fresh interpreter has them
import hatchctl
SKIP = ("hatchctl.__main__", "hatchctl.tui", "hatchctl.cmds.ui", "hatchctl.cmds.serve")
req_fd, rep_fd = int(sys.argv[1]), int(sys.argv[2])
def preload(path, prefix):
    for mod in pkgutil.iter_modules(path, prefix):
        if not mod.name.startswith(SKIP):
            try:  # one that fails fails the same way when a child imports it
                module = importlib.import_module(mod.name)
            except Exception:
                continue
            if mod.ispkg:
                preload(module.__path__, mod.name + ".")
preload(hatchctl.__path__, "hatchctl.")
gc.freeze()  # the children's collections then skip (and do not copy) the preloaded objects
threads = os.listdir("/proc/self/task")  # native ones too: a fork copies only this thread
assert len(threads) == 1 and threading.active_count() == 1, threads
def send(msg):
    os.write(rep_fd, (json.dumps(msg) + "\n").encode())
def child(req):
    for s, handler in FRESH.items():
        if handler is not None and signal.getsignal(s) is not handler:
            signal.signal(s, handler)
    os.umask(req["umask"])
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for fd, path in ((1, req["stdout"]), (2, req["stderr"])):
        f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(f, fd)
        os.close(f)
    for fd in [int(name) for name in os.listdir("/proc/self/fd")]:
        if fd > 2:  # a fresh process has 0, 1 and 2 only (close_fds)
            try:
                os.close(fd)
            except OSError:
                pass
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    sys.path[0] = os.getcwd()  # as `python -m` sets it
    sys.argv = ["-m", *req["argv"]]
    runpy.run_module("hatchctl", run_name="__main__", alter_sys=True)
    raise SystemExit(0)
send({"ready": sys.modules.__len__()})
buf, pid, pidfd = b"", None, None
while True:
    while b"\n" not in buf:
        ready = select.select([req_fd] + ([pidfd] if pidfd is not None else []), [], [])[0]
        if pidfd in ready:  # the child ended: say how, and keep it a zombie until told to reap
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
            code = info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
            os.close(pidfd)
            pidfd = None
            send({"returncode": code})
        if req_fd in ready:
            chunk = os.read(req_fd, 1 << 16)
            if not chunk:  # the pytest process is gone
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                raise SystemExit(0)
            buf += chunk
    line, buf = buf.split(b"\n", 1)
    req = json.loads(line)
    if req.get("reap"):
        os.waitpid(pid, 0)
        pid = None
        send({"reaped": True})
        continue
    assert pid is None, "one child at a time"
    pid = os.fork()
    if pid == 0:
        child(req)
    pidfd = os.pidfd_open(pid)
    send({"pid": pid})
"""


class Zygote:
    def __init__(self) -> None:
        req_r, self._req_w = os.pipe()
        self._rep_r, rep_w = os.pipe()
        self._proc = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE, str(req_r), str(rep_w)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            pass_fds=(req_r, rep_w),
        )
        os.close(req_r)
        os.close(rep_w)
        self._buf = b""
        self.pid: int | None = None  # the running child
        self._recv(60.0)  # ready

    def _recv(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = max(0.0, deadline - time.monotonic())
            if not select.select([self._rep_r], [], [], left)[0]:
                raise subprocess.TimeoutExpired("hatchctl (forked)", timeout)
            chunk = os.read(self._rep_r, 1 << 16)
            if not chunk:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                raise RuntimeError(f"the hatchctl zygote exited: {err[-3000:]}")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        msg: dict[str, Any] = json.loads(line)
        return msg

    def _send(self, req: Mapping[str, Any]) -> None:
        os.write(self._req_w, (json.dumps(req) + "\n").encode())

    def start(
        self,
        argv: Sequence[str],
        stdout: Path,
        stderr: Path,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> int:
        """Fork `python -m hatchctl ARGV`; its pid. Output is appended to the two files."""
        assert self.pid is None, "one call at a time"
        workdir = Path(cwd) if cwd is not None else Path.cwd()
        if not workdir.is_dir():  # as subprocess raises it, before any process runs
            raise FileNotFoundError(2, "No such file or directory", str(workdir))
        umask = os.umask(0o077)
        os.umask(umask)
        self._send(
            {
                "argv": list(argv),
                "cwd": str(workdir.absolute()),
                "env": {**os.environ, **(env or {})},
                "umask": umask,
                "stdout": str(Path(stdout).absolute()),
                "stderr": str(Path(stderr).absolute()),
            }
        )
        self.pid = int(self._recv(30.0)["pid"])
        return self.pid

    def wait(self, timeout: float | None) -> int:
        """The child's exit status (negative: the signal), once reaped; TimeoutExpired if it
        still runs."""
        assert self.pid is not None, "no call is running"
        code = int(self._recv(1e9 if timeout is None else timeout)["returncode"])
        self._send({"reap": True})
        self._recv(30.0)
        self.pid = None
        return code

    def poll(self) -> int | None:
        """The exit status if the child has ended (the call is then over), else None."""
        try:
            return self.wait(0.0)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """SIGKILL the running child, if any, and reap it."""
        if self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)  # at worst a zombie: the zygote has not reaped it
            self.wait(30.0)

    def run(
        self,
        *args: str,
        cwd: Path | None = None,
        timeout: float = 60,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """As tests.conftest.hatchctl: the finished call, stdout and stderr as text."""
        with tempfile.TemporaryDirectory(prefix="hatchctl-fork-") as tmp:
            out, err = Path(tmp) / "out", Path(tmp) / "err"
            self.start(args, out, err, cwd=cwd, env=env)
            try:
                code = self.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise subprocess.TimeoutExpired(["hatchctl", *args], timeout) from None
            text = out.read_text() if out.exists() else ""
            errs = err.read_text() if err.exists() else ""
        return subprocess.CompletedProcess(["hatchctl", *args], code, text, errs)

    def close(self) -> None:
        self.kill()
        os.close(self._req_w)  # the zygote exits at the end of its requests
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(30)
        os.close(self._rep_r)
        if self._proc.stderr:
            self._proc.stderr.close()


class ForkedProcess:
    """A Popen-like handle of one forked `hatchctl` child; its zygote returns to the pool once
    the child is reaped (by poll(), wait() or kill())."""

    def __init__(self, owner: Pool, zygote: Zygote, args: list[str], pid: int) -> None:
        self._pool, self._zygote = owner, zygote
        self.args = args
        self.pid = pid
        self.returncode: int | None = None

    def _ended(self, code: int) -> int:
        self.returncode = code
        self._pool.release(self._zygote)
        return code

    def poll(self) -> int | None:
        if self.returncode is None:
            code = self._zygote.poll()
            if code is not None:
                self._ended(code)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            try:
                return self._ended(self._zygote.wait(timeout))
            except subprocess.TimeoutExpired:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0) from None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:  # an ended child stays a zombie until reaped: never a reused pid
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Pool:
    """The zygotes of one pytest process: a call takes an idle one or starts one more."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[Zygote] = []
        self._all: list[Zygote] = []

    def acquire(self) -> Zygote:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        zygote = Zygote()
        with self._lock:
            self._all.append(zygote)
        return zygote

    def release(self, zygote: Zygote) -> None:
        assert zygote.pid is None, "its child still runs"
        with self._lock:
            self._idle.append(zygote)

    def run(
        self,
        *args: str,
        cwd: Path | None = None,
        timeout: float = 60,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        zygote = self.acquire()
        try:
            result = zygote.run(*args, cwd=cwd, timeout=timeout, env=env)
        except BaseException:
            if zygote.pid is None:
                self.release(zygote)
            raise
        self.release(zygote)
        return result

    def popen(
        self,
        args: Sequence[str],
        stdout: Path,
        stderr: Path,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ForkedProcess:
        """Start `python -m hatchctl ARGS` (output appended to the files) and return at once."""
        zygote = self.acquire()
        try:
            pid = zygote.start(args, stdout, stderr, cwd=cwd, env=env)
        except BaseException:
            if zygote.pid is None:
                self.release(zygote)
            raise
        return ForkedProcess(self, zygote, ["hatchctl", *args], pid)

    def close(self) -> None:
        with self._lock:
            zygotes, self._all, self._idle = self._all, [], []
        for zygote in zygotes:
            zygote.close()


_pools: dict[int, Pool] = {}


def pool() -> Pool:
    """This process's pool (a forked process gets its own: pipes are not shared)."""
    pid = os.getpid()
    if pid not in _pools:
        _pools[pid] = Pool()
        atexit.register(_close, pid)
    return _pools[pid]


def _close(pid: int) -> None:
    if os.getpid() == pid and pid in _pools:
        _pools.pop(pid).close()
