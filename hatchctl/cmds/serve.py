"""``hatchctl serve``: the control room in a browser, served by textual-serve on 127.0.0.1.

Every browser session runs ``hatchctl -C <root> --read-only ui`` (without ``--read-only`` only
with ``--allow-actions``): the same Textual app, driven through textual-serve's web driver. The
command is built as an argv list and quoted with :func:`shlex.join` (textual-serve hands one
string to a shell).

Who may connect: the socket listens on 127.0.0.1 only, and a local port is reachable by every
process on the machine (agents too) and by any web page the user opens. So the page and its
websocket need the secret key from the URL hatchctl prints (kept in a same-site cookie after the
first visit), the Host header must name 127.0.0.1 or localhost (no DNS rebinding) and the
websocket's Origin must be this server (no cross-site websocket).

Offline: textual-serve's page links a web font from fonts.googleapis.com; hatchctl serves a copy
of the page that uses the font shipped in textual-serve's static files instead, so nothing is
fetched from outside the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import hmac
import io
import os
import re
import secrets
import shlex
import signal
import socket
import sys
import tempfile
from pathlib import Path

from hatchctl import logsetup
from hatchctl.cmds.common import load_project
from hatchctl.errors import HatchError

HOST = "127.0.0.1"
DEFAULT_PORT = 8000
WEB_DRIVER = "textual.drivers.web_driver:WebDriver"  # what textual-serve sets in TEXTUAL_DRIVER
MAX_SESSIONS = 8  # each browser tab runs a process of its own
SHUTDOWN_GRACE = 3.0  # seconds open sessions get to close when serving stops
_FONT_LINK = re.compile(r"<link[^>]*fonts\.googleapis\.com[^>]*/>", re.DOTALL)
_LOCAL_FONT = """<style>
      @font-face {
        font-family: "Roboto Mono";
        src: url("{{ config.static.url }}fonts/RobotoMono-VariableFont_wght.ttf");
      }
    </style>"""


def port_arg(text: str) -> int:
    """argparse type for --port: an integer 1-65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is not between 1 and 65535")
    return port


def session_argv(root: Path, *, allow_actions: bool) -> list[str]:
    """What each browser session runs: this hatchctl's control room for ``root``."""
    argv = [sys.executable, "-m", "hatchctl", "-C", str(root)]
    if not allow_actions:
        argv.append("--read-only")
    return [*argv, "ui"]


def check_port(port: int) -> None:
    """Fail with one line now, not with a traceback from inside the web server."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            why = "in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise HatchError(f"cannot listen on {HOST}:{port}: {why} (try --port N)") from None


def offline_templates(into: Path) -> Path:
    """textual-serve's page template without its link to fonts.googleapis.com."""
    import textual_serve

    source = Path(textual_serve.__file__).parent / "templates" / "app_index.html"
    text = source.read_text(encoding="utf-8")
    text = _FONT_LINK.sub(lambda _: _LOCAL_FONT, text)
    if "googleapis" in text:  # a textual-serve this code does not know: refuse, do not go online
        raise HatchError(f"{source}: unexpected template (links to fonts.googleapis.com)")
    (into / "app_index.html").write_text(text, encoding="utf-8")
    return into


def _server_class() -> type:
    """A textual-serve Server that checks who connects (imported late: aiohttp is slow)."""
    from aiohttp import web
    from textual_serve.server import Server

    class GuardedServer(Server):
        def __init__(self, command: str, *, port: int, key: str, note: str, templates: Path):
            super().__init__(
                command, host=HOST, port=port, title="hatchctl", templates_path=templates
            )
            self.key = key
            self.note = note
            self.cookie = f"hatchctl_serve_{port}"
            self.hosts = {f"{HOST}:{port}", f"localhost:{port}"}
            self.origins = {f"http://{h}" for h in self.hosts}
            self.session_tasks: set[asyncio.Task[object]] = set()

        def initialize_logging(self) -> None:  # no access log on the terminal
            pass

        async def on_startup(self, app: web.Application) -> None:
            pass  # no banner: serve() says where, once the port is listening

        async def on_shutdown(self, app: web.Application) -> None:
            for task in list(self.session_tasks):  # each closes its socket, quits its app
                task.cancel()

        def serve(self, debug: bool = False) -> None:
            """textual-serve's serve(), but the URL is printed once the socket listens, and
            open sessions get SHUTDOWN_GRACE seconds on Ctrl+C, not aiohttp's minute."""
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.request_exit)
            web.run_app(
                self._make_app(),
                host=self.host,
                port=self.port,
                handle_signals=False,
                loop=loop,
                shutdown_timeout=SHUTDOWN_GRACE,
                print=lambda *_: print(self.note, flush=True),
            )

        def _refused(self, request: web.Request, *, websocket: bool) -> str | None:
            if request.host not in self.hosts:
                return "unknown Host"
            origin = request.headers.get("Origin")
            if websocket and origin not in self.origins:
                return "cross-site websocket"
            given = request.query.get("key", "") or request.cookies.get(self.cookie, "")
            if not hmac.compare_digest(given.encode(), self.key.encode()):
                return "missing or wrong key: open the URL `hatchctl serve` printed"
            return None

        async def handle_index(self, request: web.Request) -> web.StreamResponse:
            if (why := self._refused(request, websocket=False)) is not None:
                logsetup.get().warning("serve_refused", path="/", reason=why)
                raise web.HTTPForbidden(text=f"hatchctl serve: {why}\n")
            response: web.StreamResponse = await super().handle_index(request)
            response.set_cookie(self.cookie, self.key, httponly=True, samesite="Strict")
            response.headers["Cache-Control"] = "no-store"
            return response

        async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
            if (why := self._refused(request, websocket=True)) is not None:
                logsetup.get().warning("serve_refused", path="/ws", reason=why)
                raise web.HTTPForbidden(text=f"hatchctl serve: {why}\n")
            if len(self.session_tasks) >= MAX_SESSIONS:
                raise web.HTTPServiceUnavailable(text="hatchctl serve: too many sessions\n")
            task = asyncio.current_task()
            assert task is not None
            self.session_tasks.add(task)
            logsetup.get().info("serve_session_started", sessions=len(self.session_tasks))
            try:
                return await super().handle_websocket(request)
            finally:
                self.session_tasks.discard(task)
                logsetup.get().info("serve_session_ended", sessions=len(self.session_tasks))

    return GuardedServer


def serve(args: argparse.Namespace) -> int:
    project = load_project(args)
    port: int = args.port
    check_port(port)
    try:
        import textual_serve  # noqa: F401
    except ImportError:
        raise HatchError(
            "textual-serve is not installed (pip install 'textual-serve>=1.1,<2')"
        ) from None
    command = shlex.join(session_argv(project.root, allow_actions=args.allow_actions))
    key = secrets.token_urlsafe(18)
    mode = "actions allowed" if args.allow_actions else "read-only"
    note = (
        f"{project.name}: the control room ({mode}) on http://{HOST}:{port}/?key={key}\n"
        "open that URL in a browser (the key is needed); Ctrl+C stops serving "
        "(the supervisor and agents keep running)"
    )
    log = logsetup.get()
    with tempfile.TemporaryDirectory(prefix="hatchctl-serve-") as tmp:
        templates = offline_templates(Path(tmp))
        server = _server_class()(command, port=port, key=key, note=note, templates=templates)
        log.info("serve_started", port=port, allow_actions=bool(args.allow_actions))
        try:
            server.serve()
        except OSError as exc:  # lost the port between the check and the bind
            raise HatchError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from None
        finally:
            log.info("serve_stopped", port=port)
    return 0


def ui(args: argparse.Namespace) -> int:
    """``hatchctl ui``: the control room in the foreground. Run by ``serve`` for each browser
    session, where stdin/stdout are textual-serve's pipes (its web driver), not a terminal."""
    from hatchctl.cmds import ui as ui_cmd

    if os.environ.get("TEXTUAL_DRIVER") != WEB_DRIVER:
        return ui_cmd.main(args)
    project = load_project(args)
    # the web driver writes its protocol to sys.__stdout__: the note printed on exit must
    # not land in it
    with contextlib.redirect_stdout(io.StringIO()):
        return ui_cmd.run_ui(project, read_only=args.read_only)
