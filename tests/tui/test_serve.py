"""`hatchctl serve` in a real headless Chromium: the page shows the dashboard with the demo's
tasks (a PNG screenshot is kept; the terminal's text is read from xterm.js's buffer over the
DevTools protocol), a key press in read-only mode is refused, and strangers are turned away."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import select
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest

from hatchctl.cmds.serve import port_arg, session_argv
from hatchctl.demo import EXPECTED
from tests.conftest import HATCHCTL
from tests.e2e.test_report import demo_like_project

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)

# textual.js keeps its xterm.js Terminal in a closure; this hook (run before the page's own
# scripts) catches the object that assigns `fitAddon`, textual.js's session, which holds it
HOOK = """
Object.defineProperty(Object.prototype, "fitAddon", {
  configurable: true,
  set(value) {
    window.__hatchSession = this;
    Object.defineProperty(this, "fitAddon", {value, writable: true, configurable: true});
  },
});
"""
SCREEN_TEXT = """(() => {
  const s = window.__hatchSession;
  if (!s || !s.terminal) return "";
  const b = s.terminal.buffer.active, out = [];
  for (let i = 0; i < s.terminal.rows; i++) {
    const line = b.getLine(b.viewportY + i);
    out.push(line ? line.translateToString(true) : "");
  }
  return out.join("\\n");
})()"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise AssertionError(f"no output from `hatchctl serve` within {timeout}s")
    return proc.stdout.readline()


@contextlib.contextmanager
def serving(root: Path, *extra: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`hatchctl serve` on a free port; yields it and the URL it printed (with its key)."""
    port = free_port()
    proc = subprocess.Popen(
        [*HATCHCTL, "-C", str(root), "serve", "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        line = read_line(proc, 20)
        assert f"http://127.0.0.1:{port}/?key=" in line, line + (
            proc.stderr.read() if proc.stderr else ""
        )
        url = line.split(" on ", 1)[1].split()[0]
        yield proc, url
    finally:
        children = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        finally:
            for child in children:  # every browser session's `hatchctl ui` ends with the server
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.wait(timeout=10)
            if proc.poll() is None:
                proc.kill()


class Page:
    """A minimal DevTools protocol client for one page."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:  # keep events until our answer
            msg = await asyncio.wait_for(self.ws.receive_json(), timeout=20)
            if "method" in msg:
                self.events.append(msg)
            if msg.get("id") == self.next_id:
                assert "error" not in msg, msg
                result: dict[str, Any] = msg["result"]
                return result

    async def text(self) -> str:
        out = await self.call("Runtime.evaluate", expression=SCREEN_TEXT, returnByValue=True)
        return str(out["result"].get("value", ""))

    async def wait_text(self, *needles: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = await self.text()
            if all(n in text for n in needles):
                return text
            await asyncio.sleep(0.1)
        raise AssertionError(f"not on the page within {timeout}s: {needles}; screen:\n{text}")

    async def key(self, char: str) -> None:
        code = f"Key{char.upper()}"
        vk = ord(char.upper())
        await self.call(
            "Input.dispatchKeyEvent",
            type="keyDown",
            key=char,
            code=code,
            text=char,
            windowsVirtualKeyCode=vk,
        )
        await self.call("Input.dispatchKeyEvent", type="keyUp", key=char, code=code)


@contextlib.asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[Page]:
    assert CHROMIUM is not None
    argv = [
        CHROMIUM,
        "--headless=new",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "--window-size=1400,900",
        "--no-first-run",
        "--disable-gpu",
        "about:blank",
    ]
    if os.geteuid() == 0:
        argv.insert(1, "--no-sandbox")  # chromium refuses to run as root with its sandbox
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 20
        while not (port_file.is_file() and port_file.read_text().count("\n") >= 1):
            assert proc.poll() is None, "chromium exited"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            await asyncio.sleep(0.05)
        port = port_file.read_text().split()[0]
        timeout = aiohttp.ClientTimeout(total=20)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                targets = await resp.json()
            target = next(t for t in targets if t["type"] == "page")
            async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                yield Page(ws)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def turns_strangers_away(url: str) -> None:
    """The page with the key answers; no key, a wrong key, another Host (DNS rebinding) and a
    websocket from another origin or from no page are turned away."""
    base = url.split("?")[0]

    def status(target: str, headers: dict[str, str] | None = None) -> int:
        req = urllib.request.Request(target, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    assert status(url) == 200
    assert status(base) == 403  # no key
    assert status(base + "?key=wrong") == 403
    assert status(url, {"Host": "attacker.example:80"}) == 403  # DNS rebinding
    ws_headers = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
    }
    ws = url.replace("/?", "/ws?")
    assert status(ws, {**ws_headers, "Origin": "http://attacker.example"}) == 403
    assert status(ws, ws_headers) == 403  # no Origin: not a page of this server


async def test_serve_turns_strangers_away_and_shows_the_dashboard_in_chromium(
    tmp_path: Path,
) -> None:
    """One `hatchctl serve` for two claims (a server started once, not twice): it turns
    strangers away, and in a real headless Chromium its page shows the dashboard and refuses
    actions (read-only). Without chromium only the strangers' part runs, then the test skips."""
    # a directory name a shell would act on: the session command must be quoted
    project = demo_like_project(tmp_path / "demo dir; touch pwned $(touch pwned2)")
    with serving(project.root) as (server, url):
        turns_strangers_away(url)
        if CHROMIUM is not None:
            await shows_the_dashboard_and_refuses_actions(tmp_path, url)
    with sqlite3.connect(project.paths.db) as db:
        assert db.execute("SELECT COUNT(*) FROM commands").fetchone() == (0,)
    assert server.returncode is not None
    assert not list(tmp_path.rglob("pwned*"))
    if CHROMIUM is None:
        pytest.skip("chromium is not installed: the page was not checked")


async def shows_the_dashboard_and_refuses_actions(tmp_path: Path, url: str) -> None:
    async with chromium(tmp_path / "chromium-profile") as page:
        await page.call("Page.enable")
        await page.call("Network.enable")
        await page.call("Page.addScriptToEvaluateOnNewDocument", source=HOOK)
        await page.call("Page.navigate", url=url)
        screen = await page.wait_text(*EXPECTED, "read-only")
        shot = await page.call("Page.captureScreenshot", format="png")
        png = base64.b64decode(shot["data"])
        (tmp_path / "serve.png").write_bytes(png)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert width == 1400 and height > 500  # the window's viewport
        assert "supervisor" in screen  # the dashboard's overview line
        # offline: the page fetched nothing from outside this server
        origin = url.split("/?")[0]
        fetched = [
            e["params"]["request"]["url"]
            for e in page.events
            if e["method"] == "Network.requestWillBeSent"
        ]
        assert fetched and all(
            u.startswith((origin + "/", origin.replace("http:", "ws:") + "/")) for u in fetched
        ), fetched

        # read-only: `p` (pause) is refused on screen, and nothing reaches the supervisor
        await page.call(
            "Runtime.evaluate",
            expression="document.querySelector('.xterm-helper-textarea').focus()",
        )
        await page.key("p")
        await page.wait_text("read-only: actions are refused")


def test_serve_quotes_its_session_command(tmp_path: Path) -> None:
    """The session command: a shell string that splits back into exactly the argv."""
    for allow in (False, True):
        argv = session_argv(tmp_path / "demo dir; touch pwned", allow_actions=allow)
        assert ("--read-only" in argv) is not allow and argv[-1] == "ui"
        assert argv[:3] == [sys.executable, "-m", "hatchctl"]
        assert shlex.split(shlex.join(argv)) == argv


def test_serve_port_errors_are_one_line(tmp_path: Path) -> None:
    project = demo_like_project(tmp_path / "demo")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = subprocess.run(
            [*HATCHCTL, "-C", str(project.root), "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert out.returncode == 1
    assert out.stderr == f"hatchctl: cannot listen on 127.0.0.1:{port}: in use (try --port N)\n"
    out = subprocess.run(
        [*HATCHCTL, "-C", str(project.root), "serve", "--port", "65536"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2 and out.stderr == (
        "hatchctl: argument --port: port 65536 is not between 1 and 65535 "
        "(see `hatchctl serve --help`)\n"
    )
    for bad in ("0", "http", "-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            port_arg(bad)
