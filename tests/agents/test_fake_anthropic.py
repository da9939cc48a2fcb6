"""The fake Messages API itself (no agent CLI needed): what it answers, and that the answer is a
function of the conversation sent."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from tests.agents.fake_anthropic import Conversation, FakeAnthropic, bash, say

SCRIPT = [
    Conversation("build it", (bash("make", "build"), say("built"))),
    Conversation("write the summary", (say("written"),)),
]
TOOLS = [{"name": "Bash", "input_schema": {"type": "object"}}]


def post(api: FakeAnthropic, path: str, body: dict[str, Any]) -> tuple[int, str, bytes]:
    req = urllib.request.Request(
        api.url + path,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def sse(data: bytes) -> list[dict[str, Any]]:
    events = []
    for block in data.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if lines:
            doc = json.loads(lines["data"])
            assert doc["type"] == lines["event"]
            events.append(doc)
    return events


def test_a_streamed_tool_call_then_the_next_reply_after_its_result() -> None:
    prompt = {"role": "user", "content": [{"type": "text", "text": "please build it"}]}
    with FakeAnthropic(SCRIPT) as api:
        status, ctype, data = post(
            api, "/v1/messages?beta=true", {"stream": True, "tools": TOOLS, "messages": [prompt]}
        )
        assert (status, ctype) == (200, "text/event-stream")
        events = sse(data)
        kinds = [e["type"] for e in events]
        assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
        start = next(e for e in events if e["type"] == "content_block_start")
        assert start["content_block"]["name"] == "Bash" and start["content_block"]["input"] == {}
        partial = "".join(
            e["delta"]["partial_json"]
            for e in events
            if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta"
        )
        assert json.loads(partial) == {"command": "make", "description": "build"}
        assert events[-2]["delta"]["stop_reason"] == "tool_use"
        assert events[0]["message"]["usage"]["cache_read_input_tokens"] == 1000

        tool_id = start["content_block"]["id"]
        result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id}]}
        conversation = [prompt, {"role": "assistant", "content": [start["content_block"]]}, result]
        body = {"tools": TOOLS, "messages": conversation}
        status, ctype, data = post(api, "/v1/messages", body)
        doc = json.loads(data)
        assert (status, ctype) == (200, "application/json")
        assert doc["content"] == [{"type": "text", "text": "built"}]
        assert doc["stop_reason"] == "end_turn" and doc["usage"]["output_tokens"] >= 1
        again = json.loads(post(api, "/v1/messages", body)[2])  # same conversation, same answer
        assert again["content"] == doc["content"] and again["id"] != doc["id"]

        # a new prompt in the same conversation starts the conversation it names
        later = [*conversation, {"role": "assistant", "content": doc["content"]}]
        later.append({"role": "user", "content": "now write the summary"})
        reply = json.loads(post(api, "/v1/messages", {"tools": TOOLS, "messages": later})[2])
        assert reply["content"][0]["text"] == "written"
    main = api.main_calls()
    assert [(r.conversation, r.step) for r in main] == [(0, 0), (0, 1), (0, 1), (1, 0)]
    assert api.prompts() == ["please build it", "now write the summary"]


def test_side_calls_token_counts_models_and_unknown_paths() -> None:
    with FakeAnthropic(SCRIPT) as api:
        side = json.loads(
            post(api, "/v1/messages", {"messages": [{"role": "user", "content": "x"}]})[2]
        )
        assert side["content"][0]["type"] == "text"
        status, _, data = post(api, "/v1/messages/count_tokens", {"messages": []})
        assert status == 200 and json.loads(data)["input_tokens"] >= 1
        with urllib.request.urlopen(api.url + "/v1/models", timeout=5) as resp:
            assert json.loads(resp.read())["data"][0]["id"] == api.model
        status, _, data = post(api, "/v1/nothing", {})
        assert status == 404 and json.loads(data)["error"]["type"] == "not_found_error"
    assert [r.kind for r in api.requests] == ["side", "count_tokens", "models", "other"]
