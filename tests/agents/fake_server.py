"""What the scripted fake model APIs share: a threaded HTTP server on 127.0.0.1 that records
every request and lets a test wait on their arrival (no polling sleep). Each fake
(fake_anthropic, fake_responses, fake_openai_chat) answers its own API in ``handle``."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, Protocol, Self, TypeVar


class Request(Protocol):
    method: str
    path: str
    kind: str


R = TypeVar("R", bound=Request)


def openai_error(method: str, route: str) -> bytes:
    """A 404's body in the OpenAI APIs' error format."""
    error = {
        "message": f"fake API: no {method} {route}",
        "type": "invalid_request_error",
        "code": "not_found",
    }
    return json.dumps({"error": error}).encode()


class FakeServer(Generic[R]):
    """A context manager: ``with Fake(...) as api: api.url``."""

    request_id_header = ""  # e.g. "request-id": sent with a made-up id on every answer

    def __init__(self) -> None:
        self._requests: list[R] = []
        self._lock = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def handle(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, bytes, str]:
        """(status, body, content type) for one request, which is recorded whatever happens."""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        rec = self.record_for(method, path, headers, body)
        route = path.split("?", 1)[0].rstrip("/")
        try:
            answer = self.answer(method, route, body, rec)
            if answer is not None:
                return answer
            return 404, self.not_found(method, route), "application/json"
        finally:
            self._record(rec)

    # -- what each fake API answers ----------------------------------------------------------
    def record_for(self, method: str, path: str, headers: dict[str, str], body: Any) -> R:
        raise NotImplementedError

    def answer(self, method: str, route: str, body: Any, rec: R) -> tuple[int, bytes, str] | None:
        """The answer to a request this API knows, or None (a 404 in the API's format)."""
        raise NotImplementedError

    def not_found(self, method: str, route: str) -> bytes:
        return openai_error(method, route)

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what was asked --------------------------------------------------------------------
    @property
    def requests(self) -> list[R]:
        with self._lock:
            return list(self._requests)

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    def wait_for(self, predicate: Callable[[list[R]], Any], timeout: float, what: str) -> Any:
        """Wait (on the arrival of requests, no polling sleep) until ``predicate(requests)``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                value = predicate(list(self._requests))
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out after {timeout:g}s waiting for {what}; "
                        f"requests so far: {[f'{r.method} {r.path} {r.kind}' for r in self._requests]}"
                    )
                self._lock.wait(left)

    def _record(self, rec: R) -> None:
        with self._lock:
            self._requests.append(rec)
            self._lock.notify_all()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, data, ctype = api.handle(self.command, self.path, headers, raw)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                if api.request_id_header:
                    self.send_header(api.request_id_header, f"req_fake{len(api.requests):06d}")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass  # requests are recorded, not printed

        return Handler
