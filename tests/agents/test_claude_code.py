"""The real Claude Code CLI driven end to end by hatchctl, against a scripted fake model API.

Each test makes a real project (real git, a private tmux server, the bwrap sandbox where it
works), points Claude Code at ``FakeAnthropic`` and runs a supervisor until it drains. The fake
API plays the model: tool calls that write and commit a file and write the handover summary.
"""

from __future__ import annotations

import json
import shlex
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

from hatchctl.engine.deps import Deps
from hatchctl.engine.prompt import SUMMARY_REQUEST
from hatchctl.project import Project
from hatchctl.runtime.tmux import Tmux
from tests.agents.conftest import (
    CLAUDE_LIMITS,
    SUMMARY_TIMEOUT,
    Approver,
    ClaudeHome,
    PaneRecorder,
    claude_agent,
    git_out,
    tidy,
)
from tests.agents.fake_anthropic import Conversation, FakeAnthropic, Reply, bash, say, write
from tests.conftest import make_repo, poll
from tests.integration.conftest import Projects, drain, kinds

TASK = "HELLO-1"
SPEC = {
    "files": ["hello.txt"],
    "acceptance": "grep -q 'hello from claude' hello.txt",
    "body": "Create hello.txt saying hello.",
}
REQUEST_START = SUMMARY_REQUEST.split("{path}")[0]  # "hatchctl: your turn ended without ..."


def summary_command(role: str, status: str, extra: str = "") -> str:
    """A shell command writing a valid summary to $HATCH_SUMMARY_FILE (the commit from git)."""
    doc = (
        '{"schema_version": 1, "task_id": "%s", "role": "' + role + '", "iteration": %s, '
        '"status": "'
        + status
        + '", "commits": ["%s"], "test_results": {"passed": 1, "failed": 0}'
        + extra
        + ', "handover_notes": "scripted by the fake API"}'
    )
    return (
        f'printf \'{doc}\\n\' "$HATCH_TASK_ID" "$HATCH_ITERATION" "$(git rev-parse HEAD)" '
        '> "$HATCH_SUMMARY_FILE"'
    )


FACTORY_SUMMARY = summary_command("factory", "completed", ', "implementation_files": ["hello.txt"]')
QA_SUMMARY = summary_command("qa", "approved", ', "findings": []')
COMMIT = "git add hello.txt && git commit -q -m 'Add hello.txt' && git log --oneline -1"
QA = Conversation(
    "You are the QA agent",
    (
        bash("git diff --stat HEAD~1 && grep -q 'hello from claude' hello.txt", "review"),
        bash(QA_SUMMARY, "write the QA summary"),
        say("Approved: hello.txt is there and the acceptance command passes."),
    ),
)
ANSWER_REQUEST = Conversation(
    REQUEST_START,
    (bash(FACTORY_SUMMARY, "write the summary"), say("The summary is written.")),
)


def factory(worktree: Path, *, with_summary: bool = True) -> Conversation:
    replies: list[Reply] = [
        write(str(worktree / "hello.txt"), "hello from claude\n", text="Creating hello.txt."),
        bash(COMMIT, "commit"),
    ]
    if with_summary:
        replies.append(bash(FACTORY_SUMMARY, "write the summary"))
    replies.append(say("Done: hello.txt is committed."))
    return Conversation("You are the FACTORY agent", tuple(replies))


def claude_project(
    projects: Projects,
    claude_cli: Path,
    api: FakeAnthropic,
    home: ClaudeHome,
    *,
    factory_agent: dict[str, Any] | None = None,
    qa_agent: dict[str, Any] | None = None,
    claude_qa: bool = True,
    limits: dict[str, Any] | None = None,
) -> Project:
    """A project whose factory (and, unless ``claude_qa`` is false, QA) is Claude Code. A test
    about the factory's run alone leaves QA to the simulated agent: Claude Code as QA is
    covered by the first test, and each of its runs costs over a CPU-second."""
    agent = claude_agent(claude_cli, api, home)
    roles = {"factory": factory_agent or agent}
    if claude_qa:
        roles["qa"] = qa_agent or agent
    p = projects.make(
        {TASK: SPEC},
        {"agents": roles, "limits": {**CLAUDE_LIMITS, **(limits or {})}},
    )
    # trusting the repository is enough: Claude Code takes a git worktree's trust from its
    # main repository (an untrusted one shows the trust dialog, and no hook runs before it)
    home.trust(p.root)
    return p


def explain(
    api: FakeAnthropic,
    panes: PaneRecorder | None = None,
    deps: Deps | None = None,
    home: ClaudeHome | None = None,
) -> str:
    """What happened, for an assertion message: the API's requests, hatchctl's events, the
    hooks Claude fired and the last screen of each pane."""
    out = ["requests: " + ", ".join(f"{r.path.split('?')[0]}:{r.kind}" for r in api.requests)]
    if deps is not None:
        out.append(f"events: {[(e.kind, e.data) for e in deps.store.events(TASK)]}")
    if home is not None:
        out.append(f"hooks: {[e['hook_event_name'] for e in home.events()]}")
    if panes is not None:
        for name, screens in panes.screens.items():
            if screens:  # a window recorded before it drew anything has none
                out.append(f"--- last screen of {name}:\n{tidy(screens[-1][1])}")
    return "\n".join(out)


def assert_merged(p: Project) -> None:
    merged = git_out(p.root, "show", "hatch/integration:hello.txt")
    assert merged == "hello from claude"
    assert "Add hello.txt" in git_out(p.root, "log", "--format=%s", "hatch/integration")


def test_factory_and_qa_complete_with_transcript_usage_and_a_paste_reaches_a_slow_claude_once(
    projects: Projects, claude_cli: Path, claude_home: ClaudeHome
) -> None:
    """(c) The Stop hook's transcript_path is a real file whose per-message usage becomes the
    run's metrics: the sums equal what the fake API reported for that run's calls.
    (b) The factory's prompt is an argument; QA's is pasted (prompt_delivery = "paste"):
    hatchctl pastes it into Claude's input box once it has started, the whole prompt is that
    conversation's first user message, and Claude's UserPromptSubmit hook confirms the
    delivery. QA's Claude starts 1 s after its pane (a loaded machine, a wrapper script): the
    prompt must still be its first user message, once. (One run for each claim: each Claude
    run costs over a CPU-second.)"""
    with FakeAnthropic([]) as api:
        paste = claude_agent(claude_cli, api, claude_home, delivery="paste")
        paste["command"] = ["sh", "-c", 'sleep 1; exec "$@"', "sh", *paste["command"]]
        p = claude_project(projects, claude_cli, api, claude_home, qa_agent=paste)
        api.conversations[:] = [factory(p.paths.worktree(TASK)), QA]
        with PaneRecorder(p) as panes:
            code, tasks, deps = drain(p, time_limit=60)
    assert code == 0 and tasks[TASK].state == "completed", explain(api, panes, deps, claude_home)
    assert_merged(p)
    events = kinds(deps, TASK)
    assert "summary_requested" not in events and "agent_waiting" not in events
    factory_run, qa_run = deps.store.runs(TASK)
    assert (factory_run.role, factory_run.state, qa_run.role, qa_run.state) == (
        "factory",
        "succeeded",
        "qa",
        "succeeded",
    )

    # the prompt arrived whole as the first user message (argument delivery)
    prompt = p.paths.prompt_file(TASK, "factory", 1, 1).read_text()
    first = api.main_calls()[0]
    assert (first.conversation, first.step) == (0, 0)
    assert prompt.strip() in first.prompt

    # (c) hatchctl's Stop hook copied the transcript's path into the .stop file: a real file
    for run in (factory_run, qa_run):
        stop = json.loads((p.root / run.stop_path).read_text())
        assert stop["reason"] == "hook" and stop["session_id"], stop
        transcript = Path(stop["transcript_path"])
        assert transcript.is_file() and transcript.is_relative_to(claude_home.path / ".claude")
        assert run.transcript_path == str(transcript)

    # the transcript's usage is what the fake API reported, call by call
    for run, conv in ((factory_run, 0), (qa_run, 1)):
        calls = [r for r in api.main_calls() if r.conversation == conv]
        m = run.metrics
        assert m["source"] == "claude-transcript", m
        assert m["turns"] == len(calls) == len(api.conversations[conv].replies)
        assert m["tokens_in"] == sum(c.usage["input_tokens"] for c in calls)
        assert m["tokens_out"] == sum(c.usage["output_tokens"] for c in calls)
        assert m["cache_read"] == sum(c.usage["cache_read_input_tokens"] for c in calls)
        assert m["cache_write"] == sum(c.usage["cache_creation_input_tokens"] for c in calls)

    # (b) QA's prompt was pasted: all of it (newlines and quotes intact) is the first user
    # message of QA's conversation, and Claude's UserPromptSubmit hook confirmed the delivery
    qa_prompt = p.paths.prompt_file(TASK, "qa", 1, 1).read_text()
    qa_first = next(r for r in api.main_calls() if r.conversation == 1)
    assert qa_first.step == 0
    body = qa_first.body
    assert isinstance(body, dict)
    users = [m for m in body["messages"] if m["role"] == "user"]
    assert len(users) == 1 and "assistant" not in [m["role"] for m in body["messages"]]
    assert qa_prompt.strip() in qa_first.prompt
    # hatchctl pastes only once Claude turned bracketed paste on (ESC[?2004h in the pane log):
    # pasted earlier, the terminal echoed it and Claude read it again when it started
    assert qa_first.prompt.count(qa_prompt.strip().splitlines()[0]) == 1, qa_first.prompt
    qa_session = json.loads((p.root / qa_run.stop_path).read_text())["session_id"]
    submitted = [e for e in claude_home.events("UserPromptSubmit") if e["session_id"] == qa_session]
    assert submitted and qa_prompt.strip() in submitted[0]["prompt"]
    delivered = [e for e in deps.store.events(TASK) if e.run_id == qa_run.id]
    confirmed = [e.data for e in delivered if e.kind == "delivered"]
    assert [d["kind"] for d in confirmed] == ["prompt"] and confirmed[0]["how"] == "hook"
    assert confirmed[0]["pastes"] == 1, confirmed
    assert "delivery_failed" not in [e.kind for e in delivered]

    launch = factory_run.running_at or factory_run.started_at
    print(f"\nfirst API call {first.wall - launch:.2f}s after the launch")
    print(f"factory metrics: {factory_run.metrics}")
    print(
        f"QA paste delivery: {confirmed[0]}; UserPromptSubmit saw {submitted[0]['prompt'][:60]!r}"
    )


def test_a_permission_prompt_waits_and_resumes_then_a_turn_without_a_summary_gets_the_request(
    projects: Projects, claude_cli: Path, claude_home: ClaudeHome
) -> None:
    """One factory session shows two claims (each Claude run costs over a CPU-second):
    (d) Without --dangerously-skip-permissions a tool call opens Claude's permission dialog.
    Claude fires PermissionRequest at once and Notification (permission_prompt) about 6 s
    later; hatchctl's hooks mark the run waiting (agent_waiting). A human (this test, through
    tmux) then approves it and the run carries on.
    (a) That turn then ends without a summary: after its Stop hook hatchctl pastes the
    summary request; Claude receives it as a new prompt and answers it. Two requests are
    allowed, so one request being enough shows the first paste was submitted."""
    with FakeAnthropic([]) as api:
        # "default" asks before a tool runs; Bash is allowed so that only the Write asks.
        # (2.1.332 starts in "auto" mode, whose safety check runs on Anthropic's servers:
        # through a gateway it shows a dialog of its own instead.) --allowedTools takes every
        # argument after it: it must not come last, where hatchctl appends the prompt.
        args = ("--allowedTools", "Bash", "--permission-mode", "default")
        agent = claude_agent(claude_cli, api, claude_home, args=args)
        p = claude_project(
            projects,
            claude_cli,
            api,
            claude_home,
            factory_agent=agent,
            claude_qa=False,
            limits={"summary_requests": 2},
        )
        wt = p.paths.worktree(TASK)
        api.conversations[:] = [
            Conversation(
                "You are the FACTORY agent",
                (
                    write(str(wt / "hello.txt"), "hello from claude\n"),  # asks first
                    bash(COMMIT, "commit"),
                    say("Done: hello.txt is committed."),  # no summary: hatchctl asks for it
                ),
            ),
            ANSWER_REQUEST,
        ]
        approver = Approver(p)
        with PaneRecorder(p) as panes, approver:
            code, tasks, deps = drain(p, time_limit=60)
    why = explain(api, panes, deps, claude_home)
    assert approver.error is None, f"{approver.error}\n{why}"
    assert code == 0 and tasks[TASK].state == "completed", why
    assert_merged(p)

    # (d) the permission dialog: waiting, approved, resumed
    dialog = approver.dialog
    assert dialog is not None and "Do you want to create hello.txt?" in dialog, why
    assert "1. Yes" in dialog
    requested = claude_home.events("PermissionRequest")
    assert [r["tool_name"] for r in requested] == ["Write"]
    assert requested[0]["tool_input"]["file_path"] == str(wt / "hello.txt")
    notes = claude_home.events("Notification")
    factory_run = deps.store.runs(TASK)[0]
    events = [e for e in deps.store.events(TASK) if e.run_id == factory_run.id]
    waiting = [e for e in events if e.kind == "agent_waiting"]
    # PermissionRequest marks the run waiting at once (Notification comes ~6 s later, if the
    # dialog is still open then); each signal is one agent_waiting, never repeated
    assert waiting and waiting[0].data["message"] == "permission to use Write", waiting
    assert len(waiting) <= len(requested) + len(notes)
    assert approver.waited_for is not None and approver.waited_for < 20
    resumed = [e for e in events if e.kind == "agent_resumed"]
    assert resumed and resumed[0].at > waiting[0].at

    # (a) the summary request, pasted after the turn's end and answered
    assert kinds(deps, TASK).count("summary_requested") == 1
    assert (factory_run.state, factory_run.summary_requests) == ("succeeded", 1)
    summary_path = p.paths.summary_file(TASK, "factory", 1)
    expected = SUMMARY_REQUEST.format(path=summary_path)
    answered = [r for r in api.main_calls() if r.conversation == 1]
    assert answered and answered[0].step == 0, why
    assert expected in answered[0].prompt  # verbatim, as the last user message
    # it came after the factory's own turn, in the same conversation (no new session)
    body = answered[0].body
    assert isinstance(body, dict)
    roles = [m["role"] for m in body["messages"]]
    assert roles[-1] == "user" and "assistant" in roles
    all_events = deps.store.events(TASK)
    confirmed = [e.data for e in all_events if e.kind == "delivered"]
    assert [d["kind"] for d in confirmed] == ["summary_request"], confirmed
    assert confirmed[0]["how"] == "hook"  # Claude's UserPromptSubmit hook saw it submitted
    summary_asked = next(e for e in all_events if e.kind == "summary_requested")
    delay = answered[0].wall - summary_asked.at
    assert delay < SUMMARY_TIMEOUT

    # on Claude's side: the factory's session took two prompts, the second the request
    stop = claude_home.events("Stop")[0]  # the first turn's end (its pane lived on)
    session = stop["session_id"]
    prompts = [e["prompt"] for e in claude_home.events("UserPromptSubmit")]
    ours = [e for e in claude_home.events("UserPromptSubmit") if e["session_id"] == session]
    assert len(ours) == 2 and expected in ours[1]["prompt"], prompts
    assert stop["stop_hook_active"] is False and stop["last_assistant_message"].startswith("Done")
    assert Path(stop["transcript_path"]).is_file()
    print(f"\npermission dialog (capture-pane):\n{tidy(dialog)}")
    print(f"PermissionRequest payload: {json.dumps(requested[0], indent=2)}")
    print(f"Notification payloads: {json.dumps(notes, indent=2)}")
    print(f"agent_waiting {approver.waited_for:.1f}s after the run started")
    print(f"summary request: {confirmed[0]}; answered {delay:.2f}s after it was requested")
    print(f"Stop hook payload: {json.dumps(stop, indent=2)}")


BRACKETED_PASTE_ON = b"\x1b[?2004h"  # what a TUI prints when it turns bracketed paste on


def test_claude_code_terminal_contract(
    claude_cli: Path, claude_home: ClaudeHome, tmp_path: Path
) -> None:
    """What hatchctl relies on from Claude Code's terminal UI, measured on the real binary in a
    bare tmux pane. Its SessionStart hook runs *before* it turns bracketed paste on (a paste
    before that is typed text: each newline submits a line), so the signal that it takes a
    paste is ``ESC[?2004h`` in its output. After it, a bracketed multi-line paste
    (``paste-buffer -p``) then Enter is one user message. SIGTERM ends it promptly (status
    143) and runs its SessionEnd hook."""
    repo = make_repo(tmp_path / "repo")
    claude_home.trust(repo)
    text = "BRACKETED line one\nline two with $HOME and `ticks`\nline three"
    raw, go, status_file = tmp_path / "pane.raw", tmp_path / "go", tmp_path / "exit-status"
    # claude starts once its output is piped to `raw`; the screen stays after it exits
    wrapper = 'while [ ! -e "$GO" ]; do sleep 0.01; done; "$@"; echo $? > "$STATUS"; exec sleep 600'
    with FakeAnthropic([Conversation("BRACKETED", (say("got it"),))]) as api:
        tmux = Tmux(f"hatch-claude-{uuid.uuid4().hex[:8]}", timeout=10)
        env = {**claude_agent(claude_cli, api, claude_home)["env"], "GO": str(go)}
        env["STATUS"] = str(status_file)
        try:
            flags = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
            tmux.run(
                "new-session", "-d", "-s", "c", "-x", "100", "-y", "30", "-c", str(repo),
                *flags, "--",
                "sh", "-c", wrapper, "sh", str(claude_cli), "--dangerously-skip-permissions",
            )  # fmt: skip
            pane = tmux.list_panes()[0]
            tmux.pipe_pane(pane.pane_id, f"exec cat >> {shlex.quote(str(raw))}")
            go.touch()
            started = time.monotonic()
            poll(lambda: claude_home.events("SessionStart"), 20, "Claude's SessionStart hook")
            session_start = time.monotonic() - started
            poll(lambda: raw.exists() and BRACKETED_PASTE_ON in raw.read_bytes(), 20, "ESC[?2004h")
            paste_ready = time.monotonic() - started
            agent = psutil.Process(pane.pid).children()[0]  # sh -> claude

            tmux.send_text(pane.pane_id, text, enter=False)  # bracketed paste
            poll(lambda: "line three" in tmux.capture(pane.pane_id, 0), 10, "the paste on screen")
            tmux.run("send-keys", "-t", pane.pane_id, "Enter")
            call = api.wait_for(lambda rs: [r for r in rs if r.kind == "main"], 15, "the prompt")
            assert text in call[0].prompt  # one message, newlines kept
            poll(lambda: claude_home.events("Stop"), 15, "the turn to end")
            submitted = claude_home.events("UserPromptSubmit")
            assert len(submitted) == 1 and text in submitted[0]["prompt"]
            rss_mb = agent.memory_info().rss / 2**20

            term_at = time.monotonic()
            agent.send_signal(signal.SIGTERM)
            status = poll(lambda: status_file.exists() and status_file.read_text().strip(), 10,
                          "Claude to exit on SIGTERM")  # fmt: skip
            exit_seconds = time.monotonic() - term_at
            session = submitted[0]["session_id"]
        finally:
            tmux.kill_server()
    assert status == "143", status  # 128 + SIGTERM
    ended = claude_home.events("SessionEnd")
    assert len(ended) == 1 and ended[0]["session_id"] == session
    # usually it prints "Resume this session with: claude ... --resume <id>" (not always under load)
    hint = f"--resume {session}".encode() in raw.read_bytes()
    print(
        f"\nClaude Code: SessionStart hook {session_start:.2f}s after launch, bracketed paste on "
        f"{paste_ready:.2f}s; first API call {call[0].at - started:.2f}s (paste included); "
        f"RSS {rss_mb:.0f} MiB; exit on SIGTERM in {exit_seconds:.2f}s, status {status}, "
        f"SessionEnd reason {ended[0].get('reason')!r}; resume hint printed: {hint}; "
        f"paths asked: {sorted(set(api.paths()))}"
    )
