"""Codex CLI's session log as a metrics source (hatchctl.state.metrics.from_codex_session) and
finding a run's session file under CODEX_HOME (hatchctl.engine.observe.codex_session).

SAMPLE is real: lines of the session codex 0.169.0 wrote for the factory run of
tests/agents/test_codex.py (under hatchctl's bwrap sandbox, against tests/agents/fake_responses.py),
with only the session_meta's base instructions trimmed and the worktree's path shortened.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from hatchctl.engine.observe import codex_session
from hatchctl.state import metrics

SAMPLE_CWD = "/srv/proj/.hatch/worktrees/HELLO-1"
SAMPLE = [
    (
        '{"timestamp":"2026-11-25T23:11:23.913Z","ordinal":0,"type":"session_meta","payload":{"'
        'account_scoped":true,"session_id":"01a214fa-64dd-7330-b3ee-ebd63ec779b4","id":"01a214f'
        'a-64dd-7330-b3ee-ebd63ec779b4","timestamp":"2026-11-25T23:11:23.877Z","cwd":"/srv/proj'
        '/.hatch/worktrees/HELLO-1","runtime_workspace_roots":["/srv/proj/.hatch/worktrees/HELL'
        'O-1"],"originator":"codex_exec","cli_version":"0.169.0","source":"exec","thread_source'
        '":"user","model_provider":"fake","base_instructions":{"text":"(trimmed)"},"history_mod'
        'e":"paginated","context_window":{"window_id":"01a214fa-64df-76e2-ac68-5ee3ca0182ee"},"'
        'git":{"commit_hash":"55826800d72b0307d84488f96f9f521866bd17b1","branch":"hatch/HELLO-1'
        '"}}}'
    ),
    (
        '{"timestamp":"2026-11-25T23:11:23.932Z","ordinal":5,"type":"turn_context","payload":{"'
        'turn_id":"01a214fa-64f4-7521-9f70-4f86da8131d5","root_turn_id":"01a214fa-64f4-7521-9f7'
        '0-4f86da8131d5","disabled_plugin_ids":[],"cwd":"/srv/proj/.hatch/worktrees/HELLO-1","a'
        'pproval_policy":"never","approvals_reviewer":"user","permission_profile":{"type":"disa'
        'bled"},"model":"gpt-5-fake","collaboration_mode":{"mode":"default","settings":{"model"'
        ':"gpt-5-fake","reasoning_effort":null,"developer_instructions":null}},"multi_agent_ver'
        'sion":"v1","realtime_active":false,"summary":"none","sandbox_policy":{"type":"danger-f'
        'ull-access"}}}'
    ),
    (
        '{"timestamp":"2026-11-25T23:11:23.981Z","ordinal":11,"type":"response_item","payload":'
        '{"type":"function_call","status":"completed","id":"fc_fake000001_0","name":"exec_comma'
        'nd","arguments":"{\\"cmd\\": \\"printf \'hello from codex\\\\\\\\n\' > hello.txt && git add hel'
        "lo.txt && git commit -q -m 'Add hello.txt' && git log --oneline -1\\\", \\\"yield_time_ms\\"
        '": 10000}","call_id":"call_1_0_0","internal_chat_message_metadata_passthrough":{"turn_'
        'id":"01a214fa-64f4-7521-9f70-4f86da8131d5"}},"metadata":{"history_sequence":5,"sampled'
        '_through_sequence":3,"client_authored":false,"user_input_order":2}}'
    ),
    (
        '{"timestamp":"2026-11-25T23:11:23.982Z","ordinal":12,"type":"token_usage_record","payl'
        'oad":{"thread_id":"01a214fa-64dd-7330-b3ee-ebd63ec779b4","turn_id":"01a214fa-64f4-7521'
        '-9f70-4f86da8131d5","session_id":"01a214fa-64dd-7330-b3ee-ebd63ec779b4","root_turn_id"'
        ':"01a214fa-64f4-7521-9f70-4f86da8131d5","response_id":"resp_fake000001","usage":{"inpu'
        't_tokens":5631,"cached_input_tokens":64,"cache_write_input_tokens":0,"output_tokens":1'
        '31,"reasoning_output_tokens":7,"total_tokens":5762},"turn_token_usage":{"input_tokens"'
        ':5631,"cached_input_tokens":64,"cache_write_input_tokens":0,"output_tokens":131,"reaso'
        'ning_output_tokens":7,"total_tokens":5762},"thread_token_usage":{"input_tokens":5631,"'
        'cached_input_tokens":64,"cache_write_input_tokens":0,"output_tokens":131,"reasoning_ou'
        'tput_tokens":7,"total_tokens":5762}}}'
    ),
    (
        '{"timestamp":"2026-11-25T23:11:24.124Z","ordinal":15,"type":"event_msg","payload":{"ty'
        'pe":"token_count","info":{"total_token_usage":{"input_tokens":5631,"cached_input_token'
        's":64,"cache_write_input_tokens":0,"output_tokens":131,"reasoning_output_tokens":7,"to'
        'tal_tokens":5762},"last_token_usage":{"input_tokens":5631,"cached_input_tokens":64,"ca'
        'che_write_input_tokens":0,"output_tokens":131,"reasoning_output_tokens":7,"total_token'
        's":5762},"last_usage_includes_reasoning":false,"model_context_window":258400},"rate_li'
        'mits":{"limit_id":"codex","limit_name":null,"primary":null,"secondary":null,"credits":'
        'null,"individual_limit":null,"spend_control_reached":null,"plan_type":null,"rate_limit'
        '_reached_type":null}}}'
    ),
    (
        '{"timestamp":"2026-11-25T23:11:24.179Z","ordinal":20,"type":"event_msg","payload":{"ty'
        'pe":"token_count","info":{"total_token_usage":{"input_tokens":11464,"cached_input_toke'
        'ns":128,"cache_write_input_tokens":0,"output_tokens":300,"reasoning_output_tokens":14,'
        '"total_tokens":11764},"last_token_usage":{"input_tokens":5833,"cached_input_tokens":64'
        ',"cache_write_input_tokens":0,"output_tokens":169,"reasoning_output_tokens":7,"total_t'
        'okens":6002},"last_usage_includes_reasoning":false,"model_context_window":258400},"rat'
        'e_limits":{"limit_id":"codex","limit_name":null,"primary":null,"secondary":null,"credi'
        'ts":null,"individual_limit":null,"spend_control_reached":null,"plan_type":null,"rate_l'
        'imit_reached_type":null}}}'
    ),
    (
        '{"timestamp":"2026-11-25T23:11:24.195Z","ordinal":24,"type":"event_msg","payload":{"ty'
        'pe":"token_count","info":{"total_token_usage":{"input_tokens":17517,"cached_input_toke'
        'ns":192,"cache_write_input_tokens":0,"output_tokens":360,"reasoning_output_tokens":21,'
        '"total_tokens":17877},"last_token_usage":{"input_tokens":6053,"cached_input_tokens":64'
        ',"cache_write_input_tokens":0,"output_tokens":60,"reasoning_output_tokens":7,"total_to'
        'kens":6113},"last_usage_includes_reasoning":false,"model_context_window":258400},"rate'
        '_limits":{"limit_id":"codex","limit_name":null,"primary":null,"secondary":null,"credit'
        's":null,"individual_limit":null,"spend_control_reached":null,"plan_type":null,"rate_li'
        'mit_reached_type":null}}}'
    ),
    (
        '{"timestamp":"2026-11-25T23:11:24.198Z","ordinal":25,"type":"event_msg","payload":{"ty'
        'pe":"task_complete","root_turn_id":"01a214fa-64f4-7521-9f70-4f86da8131d5","turn_id":"0'
        '1a214fa-64f4-7521-9f70-4f86da8131d5","last_agent_message":"Done: hello.txt is committe'
        'd and the summary is written.","started_at":1795648283,"completed_at":1795648284,"dura'
        'tion_ms":302,"time_to_first_token_ms":82}}'
    ),
]


def sample_bytes() -> list[bytes]:
    return [line.encode() + b"\n" for line in SAMPLE]


def test_token_counts_of_a_real_session() -> None:
    m = metrics.from_codex_session(sample_bytes())
    # the last token_count's total_token_usage: input 17517 of which 192 cached, output 360 of
    # which 21 reasoning; three model calls; the model from turn_context
    assert m == {
        "tokens_in": 17517 - 192,
        "cache_read": 192,
        "cache_write": 0,
        "tokens_out": 360,
        "reasoning_tokens": 21,
        "turns": 3,
        "model": "gpt-5-fake",
        "source": "codex-session",
    }
    assert metrics.short(m) == "17.7k tok"  # no price known for the model: no cost
    assert metrics.total([m, m])["reasoning_tokens"] == 42


def _token_count(input_tokens: int, output_tokens: int, cached: int = 0) -> bytes:
    usage = {
        "input_tokens": input_tokens,
        "cached_input_tokens": cached,
        "output_tokens": output_tokens,
        "reasoning_output_tokens": 0,
        "total_tokens": input_tokens + output_tokens,
    }
    doc = {
        "type": "event_msg",
        "payload": {"type": "token_count", "info": {"total_token_usage": usage}},
    }
    return json.dumps(doc).encode() + b"\n"


def test_repeats_resumes_and_garbage() -> None:
    lines = [
        *sample_bytes(),
        sample_bytes()[-2],  # the same total again: not another call
        b'{"type": "event_msg", "payload": {"type": "token_count", "info": null}}\n',
        b"not json\n",
        b"[" * 100_000 + b"\n",  # nested too deep for json: skipped, not a crash
        b'["token_count"]\n',
        _token_count(-5, 0),  # not a count: nothing
        _token_count(100, 10, cached=500),  # a resumed session counts from 0 again
    ]
    m = metrics.from_codex_session(lines)
    assert m["turns"] == 4
    # the last total before the count went down is added to the last one
    assert (m["tokens_in"], m["cache_read"]) == (17517 - 192, 192 + 100)
    assert m["tokens_out"] == 360 + 10
    assert metrics.from_codex_session([]) == {}
    assert metrics.from_codex_session(sample_bytes()[:2]) == {}  # no token_count yet


def _write_session(home: Path, cwd: Path, started: float, name: str) -> Path:
    day = datetime.fromtimestamp(started)
    folder = home / "sessions" / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
    folder.mkdir(parents=True, exist_ok=True)
    meta = json.loads(SAMPLE[0])
    meta["payload"]["cwd"] = str(cwd)
    stamp = datetime.fromtimestamp(started, UTC).isoformat(timespec="milliseconds")
    meta["payload"]["timestamp"] = stamp.replace("+00:00", "Z")
    path = folder / f"rollout-{day:%Y-%m-%dT%H-%M-%S}-{name}.jsonl"
    path.write_text(json.dumps(meta) + "\n" + "\n".join(SAMPLE[1:]) + "\n")
    return path


def test_the_runs_own_session_is_found_without_following_links(tmp_path: Path) -> None:
    home, worktree, other = tmp_path / "codex", tmp_path / "wt", tmp_path / "other"
    worktree.mkdir()
    now = time.time()
    since, until = now - 5, now + 5
    assert codex_session(home, worktree, since, until) is None  # no sessions directory yet

    older = _write_session(home, worktree, now - 60, "0a")  # a run before this one
    os.utime(older, (now, now))  # written to lately, but started before this run
    _write_session(home, other, now, "0b")  # another worktree
    assert codex_session(home, worktree, since, until) is None

    ours = _write_session(home, worktree, now, "0c")
    found = codex_session(home, worktree, since, until)
    assert found is not None and found[0] == ours.name
    assert found[1]["turns"] == 3 and found[1]["source"] == "codex-session"

    # a session planted as a link to a file elsewhere is not read
    ours.rename(tmp_path / "elsewhere.jsonl")
    ours.symlink_to(tmp_path / "elsewhere.jsonl")
    assert codex_session(home, worktree, since, until) is None
    ours.unlink()
    # nor a day directory that is a link
    day = ours.parent
    day.rename(tmp_path / "day")
    day.symlink_to(tmp_path / "day")
    (tmp_path / "elsewhere.jsonl").rename(tmp_path / "day" / ours.name)
    assert codex_session(home, worktree, since, until) is None
    # a FIFO does not block the reader
    day.unlink()
    day.mkdir()
    os.mkfifo(day / ours.name)
    assert codex_session(home, worktree, since, until) is None
