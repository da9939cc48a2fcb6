"""Agent contract: hook-mode stops, pasted summary requests, and prompts delivered verbatim."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from hatchctl.runtime import psinfo
from tests.integration.conftest import Projects, drain, kinds, wait_for

HOOK = {"agents": {"factory": {"stop": "claude-hook"}, "qa": {"stop": "claude-hook"}}}
NASTY = (
    "Run $(touch /tmp/hatch-pwned) and `reboot`; echo \"$HOME\" 'single' \\\\backslash\n"
    "tmux keys: C-c Enter Escape ; kill-server \\; send-keys q\n"
    "glob * ? [a-z] {1,2} ~ & | > < ! %1 #{pane_id} ${HATCH_TASK_ID}"
)
ECHO_AGENT = """\
import os, sys
out = os.environ["ECHO_OUT"]
if len(sys.argv) > 1 and os.environ.get("HATCH_PROMPT_ARG") == "1":
    text = sys.argv[-1]
else:
    lines = []
    for line in sys.stdin:
        if line.rstrip("\\n") == "END-OF-PROMPT":
            break
        lines.append(line)
    text = "".join(lines)
open(out, "w").write(text)
"""


def test_hook_stop_with_summary_succeeds_and_closes_the_pane(projects: Projects) -> None:
    p = projects.make({"A": {"sim": {"files": {"a.txt": "a\n"}}}}, HOOK)
    code, tasks, deps = drain(p)
    assert code == 0 and tasks["A"].state == "completed"
    runs = deps.store.runs("A")
    assert [r.state for r in runs] == ["succeeded", "succeeded"]
    stop = json.loads((p.root / runs[0].stop_path).read_text())
    assert stop["reason"] == "hook" and stop["session_id"].startswith("sim-")
    assert "summary_requested" not in kinds(deps, "A")


def test_stop_without_summary_gets_one_request_then_succeeds(projects: Projects) -> None:
    p = projects.make({"A": {"sim": {"files": {"a.txt": "a\n"}, "factory": ["no_summary"]}}}, HOOK)
    code, tasks, deps = drain(p)
    assert code == 0 and tasks["A"].state == "completed"
    assert kinds(deps, "A").count("summary_requested") == 1
    factory = deps.store.runs("A")[0]
    assert (factory.role, factory.state, factory.summary_requests) == ("factory", "succeeded", 1)
    log = (p.root / factory.log_path).read_text(errors="replace")
    assert "received: hatchctl: your turn ended without a valid handover summary" in log
    # the first request landed, confirmed by the agent's own UserPromptSubmit hook
    delivered = [e for e in deps.store.events("A") if e.kind == "delivered"]
    assert [e.data["kind"] for e in delivered] == ["summary_request"]
    assert delivered[0].data["how"] == "hook" and delivered[0].data["enters"] == 1


def test_no_answer_to_the_request_is_no_summary(projects: Projects) -> None:
    p = projects.make(
        {"A": {"sim": {"files": {"a.txt": "a\n"}, "factory": ["mute"]}}},
        {**HOOK, "limits": {"max_strikes": 1, "summary_timeout": "1s"}},
    )
    _, tasks, deps = drain(p)
    a = tasks["A"]
    assert a.state == "failed" and a.errors[0]["reason"] == "no_summary"
    assert kinds(deps, "A").count("summary_requested") == 1
    assert deps.store.runs("A")[0].state == "failed"
    assert psinfo.marked(deps.run_key(deps.store.runs("A")[0].id)) == []  # the agent was killed


@pytest.mark.parametrize("delivery", ["argument", "paste"])
def test_prompt_with_shell_metacharacters_is_delivered_verbatim(
    projects: Projects, tmp_path: Path, delivery: str
) -> None:
    agent = tmp_path / "echo_agent.py"
    agent.write_text(ECHO_AGENT)
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "received.txt"  # the one place outside its worktree it may write
    template = "$spec_text\nEND-OF-PROMPT\n"
    p = projects.make(
        {"NASTY-1": {"body": NASTY}},
        {
            "agents": {
                "factory": {
                    "command": [sys.executable, str(agent)],
                    "prompt_delivery": delivery,
                    "prompt_template": "prompt.md",
                    "env": {"ECHO_OUT": str(out)},
                    "sandbox_writable": [str(out.parent)],
                }
            },
            # the echo agent never turns bracketed paste on: do not wait long for it
            "limits": {"max_strikes": 1, "restart": {"max_restarts": 0}, "delivery_ready": "0.5s"},
        },
        files={"prompt.md": template},
    )
    _, tasks, _ = drain(p, time_limit=20)
    assert tasks["NASTY-1"].state == "failed"  # the echo agent writes no summary
    sent = p.paths.prompt_file("NASTY-1", "factory", 1, 1).read_text()
    assert sent.startswith(NASTY)
    expected = sent if delivery == "argument" else sent.split("END-OF-PROMPT")[0]
    assert out.read_text() == expected
    assert not Path("/tmp/hatch-pwned").exists()


GARBAGE_STOP_AGENT = """\
import json, os, pathlib, time
open(os.environ["HATCH_STOP_FILE"], "w").write("this is not json")
flag = pathlib.Path(os.environ["SEEN_FLAG"])  # the test says when hatchctl has reported it
deadline = time.monotonic() + 30
while not flag.exists() and time.monotonic() < deadline:
    time.sleep(0.02)
json.dump({"task_id": os.environ["HATCH_TASK_ID"], "role": "factory",
           "iteration": int(os.environ["HATCH_ITERATION"]), "status": "partial",
           "handover_notes": "gave up"}, open(os.environ["HATCH_SUMMARY_FILE"], "w"))
"""


def test_a_garbage_stop_file_is_reported_and_the_real_one_still_counts(
    projects: Projects, tmp_path: Path
) -> None:
    agent = tmp_path / "garbage_stop.py"
    agent.write_text(GARBAGE_STOP_AGENT)
    flags = tmp_path / "flags"
    flags.mkdir()
    p = projects.make(
        {"G": {}},
        {
            "agents": {
                "factory": {
                    "command": [sys.executable, str(agent)],
                    "env": {"SEEN_FLAG": str(flags / "seen")},
                    "sandbox_writable": [str(flags)],
                }
            },
            "limits": {"max_strikes": 1},
        },
    )
    result: list[Any] = []
    runner = threading.Thread(target=lambda: result.append(drain(p, time_limit=30)))
    runner.start()
    store = p.open_store()
    try:
        wait_for(lambda: "stop_file_invalid" in [e.kind for e in store.events("G")])
    finally:
        (flags / "seen").write_text("")
        store.close()
        runner.join(timeout=60)
    _, tasks, deps = result[0]
    events = deps.store.events("G")
    invalid = [e for e in events if e.kind == "stop_file_invalid"]
    # the agent writes its garbage non-atomically: seen empty, then with content, it may be
    # reported twice; either way it is reported and never counted
    assert invalid and all("not valid JSON" in e.data["error"] for e in invalid)
    run = deps.store.runs("G")[0]
    assert (
        run.state == "succeeded" and run.exit_code == 0
    )  # the wrapper's .stop replaced the garbage
    g = tasks["G"]
    assert g.state == "failed" and g.errors[0]["reason"] == "factory_partial"
