"""A scripted stand-in for the OpenAI Responses API on 127.0.0.1 (stdlib only).

The Codex CLI talks to it through a custom model provider (``wire_api = "responses"``,
``base_url`` = ``api.url + "/v1"``; ``codex_config`` writes it as ``$CODEX_HOME/config.toml``). It answers ``POST .../responses``
as server-sent events (``response.created``, ``response.output_item.added`` /
``response.output_text.delta`` / ``response.output_item.done`` for each output item,
``response.completed`` with ``usage``), or as one JSON object when the request does not say
``"stream": true``, and ``GET .../models``; anything else gets a 404 in the API's error format.
Every request is recorded (``requests``) so tests can assert what the agent was sent.

The script is a list of ``Conversation``s. A conversation starts when a user message holding its
``trigger`` text arrives (the last ``role: user`` message item of ``input``), and its replies are
played one per model call: the reply for a call is ``replies[n]`` where ``n`` is the number of
replies of ours already in ``input`` after that prompt (their ``call_id``s carry the step). So
the answer is a function of what the agent sends, never of timing: a retried request gets the
same answer.

Codex 0.169.0's shell tool is the function ``exec_command`` with the argument ``{"cmd": "..."}``
(run in a PTY; a command that is still running after ``yield_time_ms`` comes back as a session
to poll, so scripted commands should be quick). ``shell`` builds such a reply.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from tests.agents.fake_server import FakeServer

MODEL = "gpt-5-fake"
SHELL_TOOL = "exec_command"  # codex 0.169.0's shell tool (its `tools` in every main request)
SIDE_TEXT = "ok"


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """One model response: optional text (an assistant message), then function calls."""

    text: str = ""
    tools: tuple[ToolCall, ...] = ()


def say(text: str) -> Reply:
    return Reply(text=text)


def shell(cmd: str, text: str = "") -> Reply:
    """A call to codex's shell tool running ``cmd`` (``bash -lc`` in the turn's cwd)."""
    return Reply(text=text, tools=(ToolCall(SHELL_TOOL, {"cmd": cmd, "yield_time_ms": 10000}),))


@dataclass(frozen=True)
class Conversation:
    trigger: str  # a substring of the prompt (last user message) that starts this conversation
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
    kind: str = "other"  # main | side | models | other
    conversation: int | None = None  # index of the conversation that answered (main calls)
    step: int | None = None
    prompt: str = ""  # the text of the prompt it answered (main calls)
    reply: Reply | None = None
    response_id: str = ""
    usage: dict[str, Any] = field(default_factory=dict)  # what the answer reported

    @property
    def tool_names(self) -> list[str]:
        tools = self.body.get("tools") if isinstance(self.body, dict) else None
        return [str(t.get("name")) for t in tools or [] if isinstance(t, dict)]

    def outputs(self) -> list[str]:
        """The outputs of the function calls this request carries back (``function_call_output``)."""
        items = self.body.get("input") if isinstance(self.body, dict) else None
        out = []
        for item in items or []:
            if isinstance(item, dict) and item.get("type") == "function_call_output":
                value = item.get("output")
                out.append(value if isinstance(value, str) else json.dumps(value))
        return out


def item_text(item: dict[str, Any]) -> str:
    """The text parts of a message item, joined by newlines."""
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "\n".join(
        str(p.get("text", ""))
        for p in content or []
        if isinstance(p, dict) and p.get("type") in ("input_text", "output_text", "text")
    )


def last_prompt(items: list[dict[str, Any]]) -> tuple[int, str]:
    """(index, text) of the last user message of ``input``; (-1, "") when there is none."""
    for i in range(len(items) - 1, -1, -1):
        item = items[i]
        if item.get("type", "message") == "message" and item.get("role") == "user":
            return i, item_text(item)
    return -1, ""


def _step_of(call_id: object) -> str | None:
    # ours: call_<response number>_<step>_<index>
    parts = str(call_id).split("_")
    return "_".join(parts[:3]) if len(parts) == 4 and parts[0] == "call" else None


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _sse(data: dict[str, Any]) -> bytes:
    return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode()


class FakeResponses(FakeServer[Recorded]):
    """The server; a context manager (``with FakeResponses([...]) as api: api.url``)."""

    request_id_header = "x-request-id"

    def __init__(
        self,
        conversations: list[Conversation],
        *,
        model: str = MODEL,
        cached: int = 64,
        reasoning: int = 7,
    ) -> None:
        self.conversations = list(conversations)
        self.model = model
        self.cached = cached  # input_tokens_details.cached_tokens of every answer (<= input)
        self.reasoning = reasoning  # output_tokens_details.reasoning_tokens (<= output)
        self._ids = itertools.count(1)
        super().__init__()

    # -- what was asked --------------------------------------------------------------------
    def main_calls(self) -> list[Recorded]:
        return [r for r in self.requests if r.kind == "main"]

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    # -- answering -------------------------------------------------------------------------
    def _choose(self, body: dict[str, Any], rec: Recorded) -> Reply:
        items = [i for i in body.get("input") or [] if isinstance(i, dict)]
        if not body.get("tools") or not items:
            rec.kind = "side"
            return say(SIDE_TEXT)
        rec.kind = "main"
        index, prompt = last_prompt(items)
        rec.prompt = prompt
        steps = {
            _step_of(i.get("call_id")) or f"other-{n}"
            for n, i in enumerate(items[index + 1 :])
            if i.get("type") == "function_call"
        }
        rec.step = len(steps)
        for n, conv in enumerate(self.conversations):
            if conv.trigger in prompt:
                rec.conversation = n
                return conv.reply(rec.step)
        return say("(fake API: no script for this prompt)")

    def _items(self, reply: Reply, number: int, step: int) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        if reply.text:
            items.append(
                {
                    "type": "message",
                    "id": f"msg_fake{number:06d}",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": reply.text, "annotations": []}],
                }
            )
        for i, tool in enumerate(reply.tools):
            items.append(
                {
                    "type": "function_call",
                    "id": f"fc_fake{number:06d}_{i}",
                    "status": "completed",
                    "call_id": f"call_{number}_{step}_{i}",
                    "name": tool.name,
                    "arguments": json.dumps(tool.arguments),
                }
            )
        return items

    def _usage(self, body: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
        tokens_in = _tokens(json.dumps(body.get("input", "")))
        tokens_out = _tokens(json.dumps(items)) + self.reasoning
        return {
            "input_tokens": tokens_in,
            "input_tokens_details": {"cached_tokens": min(self.cached, tokens_in)},
            "output_tokens": tokens_out,
            "output_tokens_details": {"reasoning_tokens": self.reasoning},
            "total_tokens": tokens_in + tokens_out,
        }

    def _response(self, body: dict[str, Any], rec: Recorded) -> tuple[bytes, str]:
        reply = self._choose(body, rec)
        rec.reply = reply
        number = next(self._ids)
        rec.response_id = f"resp_fake{number:06d}"
        items = self._items(reply, number, rec.step or 0)
        rec.usage = self._usage(body, items)
        model = str(body.get("model") or self.model)
        response: dict[str, Any] = {
            "id": rec.response_id,
            "object": "response",
            "created_at": int(rec.wall),
            "model": model,
            "status": "in_progress",
            "output": [],
        }
        if not body.get("stream"):
            done = {**response, "status": "completed", "output": items, "usage": rec.usage}
            return json.dumps(done).encode(), "application/json"
        parts = [_sse({"type": "response.created", "response": response})]
        for index, item in enumerate(items):
            added = {**item, "status": "in_progress"}
            if item["type"] == "message":
                added["content"] = []
            else:
                added["arguments"] = ""
            parts.append(
                _sse({"type": "response.output_item.added", "output_index": index, "item": added})
            )
            if item["type"] == "message":
                parts.append(
                    _sse(
                        {
                            "type": "response.output_text.delta",
                            "item_id": item["id"],
                            "output_index": index,
                            "content_index": 0,
                            "delta": item["content"][0]["text"],
                        }
                    )
                )
            parts.append(
                _sse({"type": "response.output_item.done", "output_index": index, "item": item})
            )
        completed = {**response, "status": "completed", "output": items, "usage": rec.usage}
        parts.append(_sse({"type": "response.completed", "response": completed}))
        return b"".join(parts), "text/event-stream"

    def _models(self) -> bytes:
        return json.dumps(
            {"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "fake"}]}
        ).encode()

    def record_for(self, method: str, path: str, headers: dict[str, str], body: Any) -> Recorded:
        return Recorded(method, path, headers, body, time.monotonic(), time.time())

    def answer(
        self, method: str, route: str, body: Any, rec: Recorded
    ) -> tuple[int, bytes, str] | None:
        if method == "POST" and route.endswith("/responses") and isinstance(body, dict):
            data, ctype = self._response(body, rec)
            return 200, data, ctype
        if method == "GET" and route.endswith("/models"):
            rec.kind = "models"
            return 200, self._models(), "application/json"
        return None


def codex_config(api: FakeResponses, key_var: str, model: str = MODEL) -> str:
    """A ``$CODEX_HOME/config.toml`` pointing codex at ``api`` through a custom model provider
    whose key is read from the environment variable ``key_var`` (no retries: a test fails fast).
    The same keys work as ``codex -c`` overrides (``-c model_provider="fake"``,
    ``-c 'model_providers.fake={name="fake", base_url=..., wire_api="responses", env_key=...}'``)."""
    return (
        f'model = "{model}"\n'
        'model_provider = "fake"\n'
        "\n[model_providers.fake]\n"
        'name = "fake"\n'
        f'base_url = "{api.url}/v1"\n'
        'wire_api = "responses"\n'
        f'env_key = "{key_var}"\n'
        "request_max_retries = 0\n"
        "stream_max_retries = 0\n"
    )
