"""Run `python -m hatchctl ...` as forks of one interpreter that imported hatchctl once.

A `hatchctl` process costs ~0.25 CPU-s, ~0.2 of it importing (pydantic, structlog, the engine).
The zygote is a fresh `python` that imports hatchctl's modules (not the Textual ones) and then
forks once per call; the child runs `hatchctl/__main__.py` exactly as `python -m hatchctl` does,
as its own process: its pid, cwd, environment, stdin /dev/null, stdout/stderr to files, an exit
status (-9 when SIGKILLed). What is not repeated per call is only the import of modules, which
the zygote, itself a fresh interpreter, has done. One call at a time.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

Hatchctl = Callable[..., subprocess.CompletedProcess[str]]

# runs as `python -c ZYGOTE REQ_FD REP_FD`: requests and replies are JSON lines on two pipes, so
# fds 0/1/2 and sys.stdin/stdout/stderr stay untouched until a child points 1 and 2 at its files
ZYGOTE = r"""
import gc, importlib, json, os, pkgutil, runpy, sys, threading
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
send({"ready": sys.modules.__len__()})
buf = b""
while True:
    while b"\n" not in buf:
        chunk = os.read(req_fd, 1 << 16)
        if not chunk:
            raise SystemExit(0)
        buf += chunk
    line, buf = buf.split(b"\n", 1)
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        os.close(req_fd)
        os.close(rep_fd)
        for fd, path in ((1, req["stdout"]), (2, req["stderr"])):
            f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(f, fd)
            os.close(f)
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        sys.path[0] = os.getcwd()  # as `python -m` sets it
        sys.argv = ["-m", *req["argv"]]
        runpy.run_module("hatchctl", run_name="__main__", alter_sys=True)
        raise SystemExit(0)
    send({"pid": pid})
    _, status = os.waitpid(pid, 0)
    send({"returncode": os.waitstatus_to_exitcode(status)})
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
        req = {
            "argv": list(argv),
            "cwd": str(cwd or Path.cwd()),
            "env": {**os.environ, **(env or {})},
            "stdout": str(stdout),
            "stderr": str(stderr),
        }
        os.write(self._req_w, (json.dumps(req) + "\n").encode())
        self.pid = int(self._recv(30.0)["pid"])
        return self.pid

    def wait(self, timeout: float) -> int:
        """The child's exit status (negative: the signal); TimeoutExpired if it still runs."""
        assert self.pid is not None, "no call is running"
        code = int(self._recv(timeout)["returncode"])
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
            os.kill(self.pid, signal.SIGKILL)
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
                raise
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
