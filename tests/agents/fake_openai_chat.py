"""A scripted stand-in for the OpenAI chat completions API on 127.0.0.1 (stdlib only).

Real agent CLIs that speak chat completions (aider, through litellm) talk to it through
``OPENAI_API_BASE``/``--openai-api-base``. It answers ``POST <base>/chat/completions``
(streamed as server-sent events when the request says ``"stream": true``, else one JSON object)
and ``GET <base>/models``; anything else gets a 404 in the API's error format. Every request is
recorded (``requests``) so tests can assert what the agent sent.

The script is a list of ``Script``s: the first whose ``trigger`` is in the request's last user
message answers it with its ``reply`` (an aider edit, for instance: a file's path then its whole
new content in a fence, aider's "whole" edit format). A call whose system message asks for a
commit message (aider's weak-model call after it applied an edit) is a "commit" call and gets
``commit_message``. Anything else is a "side" call with a short fixed text. The answer is a
function of what was sent, never of timing: a retried request gets the same answer.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from tests.agents.fake_server import FakeServer

MODEL = "fake-model"
SIDE_TEXT = "(fake API: nothing to say)"


@dataclass(frozen=True)
class Script:
    trigger: str  # a substring of the last user message that selects this reply
    reply: str
    commit_message: str = "feat: apply the requested change"


def whole_file(path: str, content: str, text: str = "") -> str:
    """A reply in aider's "whole" edit format: the file's path, then its full content fenced."""
    lead = f"{text}\n\n" if text else ""
    return f"{lead}{path}\n```\n{content.rstrip(chr(10))}\n```\n"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the parsed JSON body, or None
    at: float  # time.monotonic() when it arrived
    kind: str = "other"  # main | commit | side | models | other
    script: int | None = None  # index of the script that answered (main and commit calls)
    prompt: str = ""  # the last user message (chat calls)
    reply: str = ""
    usage: dict[str, int] = field(default_factory=dict)  # what the answer reported

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and bool(self.body.get("stream"))


def message_text(message: dict[str, Any]) -> str:
    """A message's text (a string, or the text parts of a list of content parts)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    parts = [p for p in content or [] if isinstance(p, dict) and p.get("type") == "text"]
    return "\n".join(str(p.get("text", "")) for p in parts)


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


class FakeOpenAIChat(FakeServer[Recorded]):
    """The server; a context manager (``with FakeOpenAIChat([...]) as api: api.base``)."""

    def __init__(self, scripts: list[Script], *, model: str = MODEL) -> None:
        self.scripts = list(scripts)
        self.model = model
        self._ids = itertools.count(1)
        super().__init__()

    @property
    def base(self) -> str:
        """What to give the client as its API base (OpenAI's clients append the route)."""
        return f"{self.url}/v1"

    # -- what was asked --------------------------------------------------------------------
    def calls(self, kind: str) -> list[Recorded]:
        return [r for r in self.requests if r.kind == kind]

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path} {r.kind}" for r in self.requests]

    # -- answering -------------------------------------------------------------------------
    def _choose(self, body: dict[str, Any], rec: Recorded) -> str:
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        system = "\n".join(message_text(m) for m in messages if m.get("role") == "system")
        users = [message_text(m) for m in messages if m.get("role") == "user"]
        rec.prompt = users[-1] if users else ""
        commit = "commit message" in system.lower()
        for n, script in enumerate(self.scripts):
            if script.trigger in rec.prompt or (commit and script.trigger in "\n".join(users)):
                rec.script = n
                rec.kind = "commit" if commit else "main"
                return script.commit_message if commit else script.reply
        rec.kind = "commit" if commit else "side"
        return "chore: change files" if commit else SIDE_TEXT

    def _completion(self, body: dict[str, Any], rec: Recorded) -> tuple[bytes, str]:
        text = self._choose(body, rec)
        rec.reply = text
        prompt_tokens = _tokens(json.dumps(body.get("messages", "")))
        completion_tokens = _tokens(text)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        rec.usage = usage
        ident = f"chatcmpl-fake{next(self._ids):06d}"
        created = int(time.time())
        model = str(body.get("model") or self.model)
        if not body.get("stream"):
            doc = {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
            return json.dumps(doc).encode(), "application/json"

        def chunk(delta: dict[str, Any], finish: str | None, **extra: Any) -> bytes:
            doc = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
            return f"data: {json.dumps(doc)}\n\n".encode()

        half = len(text) // 2  # two pieces: the client must join the deltas
        parts = [
            chunk({"role": "assistant", "content": ""}, None),
            chunk({"content": text[:half]}, None),
            chunk({"content": text[half:]}, None),
            chunk({}, "stop"),
        ]
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            usage_doc = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            parts.append(f"data: {json.dumps(usage_doc)}\n\n".encode())
        parts.append(b"data: [DONE]\n\n")
        return b"".join(parts), "text/event-stream"

    def _models(self) -> bytes:
        data = [{"id": self.model, "object": "model", "created": 0, "owned_by": "fake"}]
        return json.dumps({"object": "list", "data": data}).encode()

    def record_for(self, method: str, path: str, headers: dict[str, str], body: Any) -> Recorded:
        return Recorded(method, path, headers, body, time.monotonic())

    def answer(
        self, method: str, route: str, body: Any, rec: Recorded
    ) -> tuple[int, bytes, str] | None:
        if method == "POST" and route.endswith("/chat/completions") and isinstance(body, dict):
            data, ctype = self._completion(body, rec)
            return 200, data, ctype
        if method == "GET" and route.endswith("/models"):
            rec.kind = "models"
            return 200, self._models(), "application/json"
        return None
