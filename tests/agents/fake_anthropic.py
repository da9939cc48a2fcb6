"""A scripted stand-in for the Anthropic Messages API on 127.0.0.1 (stdlib only).

Real agent CLIs (Claude Code) talk to it through ``ANTHROPIC_BASE_URL``. It answers
``POST /v1/messages`` (streamed as server-sent events when the request says ``"stream": true``,
else one JSON object), ``POST /v1/messages/count_tokens`` and ``GET /v1/models``; anything else
gets a 404 in the API's error format. Every request is recorded (``requests``) so tests can
assert what the agent was sent.

The script is a list of ``Conversation``s. A conversation starts when a user message holding its
``trigger`` text arrives (a prompt: a user message without a ``tool_result``), and its replies
are played one per model call: the reply for a call is ``replies[n]`` where ``n`` is the number
of assistant messages after that prompt in the request. So the answer is a function of the
conversation the agent sends, never of timing: a retried request gets the same answer.

"Main" calls are the agent loop's (the request offers tools); every other call (titles, topic
detection, quota checks...) is a "side" call and gets a short fixed text.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from tests.agents.fake_server import FakeServer

MODEL = "claude-sonnet-4-5-20250929"
SIDE_TEXT = '{"isNewTopic": false, "title": null}'


@dataclass(frozen=True)
class ToolCall:
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """One assistant message: optional text, then tool calls (stop_reason tool_use if any)."""

    text: str = ""
    tools: tuple[ToolCall, ...] = ()

    @property
    def stop_reason(self) -> str:
        return "tool_use" if self.tools else "end_turn"


def say(text: str) -> Reply:
    return Reply(text=text)


def bash(command: str, description: str = "run a command", text: str = "") -> Reply:
    return Reply(
        text=text, tools=(ToolCall("Bash", {"command": command, "description": description}),)
    )


def write(file_path: str, content: str, text: str = "") -> Reply:
    return Reply(
        text=text, tools=(ToolCall("Write", {"file_path": file_path, "content": content}),)
    )


@dataclass(frozen=True)
class Conversation:
    trigger: str  # a substring of the prompt (user message) that starts this conversation
    replies: tuple[Reply, ...]
    after_end: Reply = Reply(text="(fake API: nothing more to do)")

    def reply(self, step: int) -> Reply:
        return self.replies[step] if step < len(self.replies) else self.after_end


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the parsed JSON body, or None
    at: float  # time.monotonic() when it arrived
    wall: float  # time.time() when it arrived
    kind: str = "other"  # main | side | count_tokens | models | other
    conversation: int | None = None  # index of the conversation that answered (main calls)
    step: int | None = None
    prompt: str = ""  # the text of the prompt it answered (main calls)
    reply: Reply | None = None
    usage: dict[str, int] = field(default_factory=dict)  # what the answer reported


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or [] if isinstance(b, dict)]


def message_text(message: dict[str, Any]) -> str:
    """The text blocks of a message, joined by newlines."""
    return "\n".join(str(b.get("text", "")) for b in _blocks(message) if b.get("type") == "text")


def is_prompt(message: dict[str, Any]) -> bool:
    """A user message typed (or pasted) by the user, not a tool's result."""
    if message.get("role") != "user":
        return False
    return not any(b.get("type") == "tool_result" for b in _blocks(message))


def last_prompt(messages: list[dict[str, Any]]) -> tuple[int, str]:
    """(index, text) of the last prompt message; (-1, "") when there is none."""
    for i in range(len(messages) - 1, -1, -1):
        if is_prompt(messages[i]):
            return i, message_text(messages[i])
    return -1, ""


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class FakeAnthropic(FakeServer[Recorded]):
    """The server; a context manager (``with FakeAnthropic([...]) as api: api.url``)."""

    request_id_header = "request-id"

    def __init__(
        self,
        conversations: list[Conversation],
        *,
        model: str = MODEL,
        cache_read: int = 1000,
        cache_write: int = 200,
    ) -> None:
        self.conversations = list(conversations)
        self.model = model
        self.cache_read = cache_read
        self.cache_write = cache_write
        self._ids = itertools.count(1)
        super().__init__()

    # -- what was asked --------------------------------------------------------------------
    def main_calls(self) -> list[Recorded]:
        return [r for r in self.requests if r.kind == "main"]

    def prompts(self) -> list[str]:
        """The distinct prompts the agent loop answered, in the order they first arrived."""
        seen: list[str] = []
        for r in self.main_calls():
            if r.prompt not in seen:
                seen.append(r.prompt)
        return seen

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    # -- answering -------------------------------------------------------------------------
    def _choose(self, body: dict[str, Any], rec: Recorded) -> Reply:
        tools = body.get("tools") or []
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        if not tools or not messages:
            rec.kind = "side"
            return say(SIDE_TEXT)
        rec.kind = "main"
        index, prompt = last_prompt(messages)
        rec.prompt = prompt
        step = sum(1 for m in messages[index + 1 :] if m.get("role") == "assistant")
        rec.step = step
        for n, conv in enumerate(self.conversations):
            if conv.trigger in prompt:
                rec.conversation = n
                return conv.reply(step)
        return say("(fake API: no script for this prompt)")

    def _usage(self, body: dict[str, Any], reply: Reply) -> tuple[dict[str, int], int]:
        sent = json.dumps(body.get("messages", ""))
        out = _tokens(reply.text + "".join(json.dumps(t.input) for t in reply.tools))
        usage = {
            "input_tokens": _tokens(sent),
            "cache_creation_input_tokens": self.cache_write,
            "cache_read_input_tokens": self.cache_read,
            "output_tokens": out,
        }
        return usage, out

    def _content(self, reply: Reply, msg_id: str) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if reply.text:
            blocks.append({"type": "text", "text": reply.text})
        for i, tool in enumerate(reply.tools):
            blocks.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_{msg_id[4:]}_{i}",
                    "name": tool.name,
                    "input": tool.input,
                }
            )
        return blocks

    def _message(self, body: dict[str, Any], rec: Recorded) -> tuple[bytes, str]:
        reply = self._choose(body, rec)
        rec.reply = reply
        msg_id = f"msg_fake{next(self._ids):06d}"
        usage, out = self._usage(body, reply)
        rec.usage = usage
        content = self._content(reply, msg_id)
        model = str(body.get("model") or self.model)
        if not body.get("stream"):
            doc = {
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": reply.stop_reason,
                "stop_sequence": None,
                "usage": usage,
            }
            return json.dumps(doc).encode(), "application/json"
        start_usage = {**usage, "output_tokens": 1}
        parts = [
            _sse(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": msg_id,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": start_usage,
                    },
                },
            ),
            _sse("ping", {"type": "ping"}),
        ]
        for index, block in enumerate(content):
            start: dict[str, Any]
            if block["type"] == "text":
                start = {"type": "text", "text": ""}
                deltas = [{"type": "text_delta", "text": block["text"]}]
            else:
                start = {**block, "input": {}}
                raw = json.dumps(block["input"])
                half = len(raw) // 2  # two fragments: the client must join partial JSON
                deltas = [
                    {"type": "input_json_delta", "partial_json": raw[:half]},
                    {"type": "input_json_delta", "partial_json": raw[half:]},
                ]
            parts.append(
                _sse(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": start},
                )
            )
            for delta in deltas:
                parts.append(
                    _sse(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": delta},
                    )
                )
            parts.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        parts.append(
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": out},
                },
            )
        )
        parts.append(_sse("message_stop", {"type": "message_stop"}))
        return b"".join(parts), "text/event-stream"

    def _models(self) -> bytes:
        data = [
            {
                "type": "model",
                "id": self.model,
                "display_name": "Fake Sonnet",
                "created_at": "2025-09-29T00:00:00Z",
            }
        ]
        return json.dumps(
            {"data": data, "has_more": False, "first_id": self.model, "last_id": self.model}
        ).encode()

    def record_for(self, method: str, path: str, headers: dict[str, str], body: Any) -> Recorded:
        return Recorded(method, path, headers, body, time.monotonic(), time.time())

    def answer(
        self, method: str, route: str, body: Any, rec: Recorded
    ) -> tuple[int, bytes, str] | None:
        if method == "POST" and route == "/v1/messages" and isinstance(body, dict):
            data, ctype = self._message(body, rec)
            return 200, data, ctype
        if method == "POST" and route == "/v1/messages/count_tokens":
            rec.kind = "count_tokens"
            tokens = _tokens(json.dumps(body))
            return 200, json.dumps({"input_tokens": tokens}).encode(), "application/json"
        if method == "GET" and route.startswith("/v1/models"):
            rec.kind = "models"
            return 200, self._models(), "application/json"
        return None

    def not_found(self, method: str, route: str) -> bytes:
        error = {"type": "not_found_error", "message": f"fake API: no {method} {route}"}
        return json.dumps({"type": "error", "error": error}).encode()
