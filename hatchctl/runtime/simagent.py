"""``hatchctl sim-agent``: a test double for an agent CLI that does real work in the worktree.

It reads the HATCH_* environment and the spec's ``sim:`` block, writes files, runs the
acceptance command, commits, and writes its summary; or hangs, crashes, skips or botches its
summary, or lies, as scripted per role, iteration and attempt (see state/simscript.py; read by state/simsteps.py).
Interactive mode behaves like Claude Code: at the end of a turn it runs the Stop hooks from
``.claude/settings.local.json`` and waits for input (it answers a pasted summary request).
Its work in the worktree (git, acceptance, files) is runtime/simworktree.py; the hooks and the
transcript it imitates Claude Code with, runtime/simhooks.py.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hatchctl.runtime.simhooks import append_transcript, run_hooks
from hatchctl.runtime.simworktree import SimWorktree
from hatchctl.state.simsteps import SimSpec, read_sim_spec

WORK_STEPS = {
    "factory": ["reading the spec", "planning the change", "editing files", "running the tests"],
    "qa": ["reading the handover", "reviewing the diff", "running the tests"],
}
PACE_MAX = 20.0


def pace_from(text: str) -> float:
    """``HATCH_SIM_PACE`` as a factor in [0, PACE_MAX]; anything else is 0 (full speed)."""
    try:
        value = float(text)
    except ValueError:
        return 0.0
    return value if 0.0 < value <= PACE_MAX else 0.0


def say(text: str) -> None:
    print(f"\x1b[36msim-agent\x1b[0m {text}", flush=True)


class SimAgent:
    def __init__(self, env: dict[str, str], interactive: bool) -> None:
        self.env = env
        self.task_id = env["HATCH_TASK_ID"]
        self.role = env["HATCH_ROLE"]
        self.iteration = int(env["HATCH_ITERATION"])
        self.attempt = int(env["HATCH_ATTEMPT"])
        self.worktree = Path(env.get("HATCH_WORKTREE") or os.getcwd())
        self.turns = 0  # turns ended: its transcript's assistant messages (with a stop file)
        self.summary_file = Path(env["HATCH_SUMMARY_FILE"])
        self.base = env.get("HATCH_BASE_SHA", "")
        spec_file = Path(env["HATCH_SPEC_FILE"])
        try:
            self.spec: SimSpec = read_sim_spec(spec_file)
        except (OSError, ValueError) as exc:
            raise SystemExit(f"sim-agent: cannot read the spec: {exc}") from None
        self.sim = self.spec.sim
        self.behaviour = self.sim.behaviour(self.role, self.iteration, self.attempt)
        self.interactive = interactive if self.sim.interactive is None else self.sim.interactive
        self.pace = pace_from(env.get("HATCH_SIM_PACE", ""))
        self.tree = SimWorktree(self.worktree, self.base)

    def work_visibly(self) -> None:
        """At a demo's pace (``HATCH_SIM_PACE`` > 0): show the steps of the work, a line at
        least every 0.8 s (so the idle policy never mistakes it for a hang), about 4 s a run at
        pace 1. Pace 0 (tests, the headless demo) skips this."""
        if self.pace <= 0:
            return
        steps = WORK_STEPS[self.role if self.role in WORK_STEPS else "factory"]
        per_step = 4.0 * self.pace / len(steps)
        for step in steps:
            say(f"{step} ...")
            left = per_step
            while left > 0:
                time.sleep(min(0.8, left))
                left -= 0.8
                if left > 0:
                    print("  .", flush=True)

    # -- its summary ---------------------------------------------------------------------
    def write_summary(self, data: dict[str, Any] | str) -> None:
        text = data if isinstance(data, str) else json.dumps(data, indent=2)
        tmp = self.summary_file.with_name(self.summary_file.name + f".{os.getpid()}.tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.summary_file)
        say(f"summary written to {self.summary_file.name}")

    # -- roles -----------------------------------------------------------------------------
    def factory_work(self) -> dict[str, Any]:
        broken = self.behaviour == "fail_tests"
        files = self.sim.broken_files if broken and self.sim.broken_files else self.sim.files
        changed = self.tree.write_files(files, {} if broken else self.sim.append)
        if self.iteration > 1 and not changed:
            note = self.worktree / ".hatch-sim-notes"
            note.write_text(
                f"iteration {self.iteration}: addressed the findings\n", encoding="utf-8"
            )
        msg = (
            self.sim.commit_message
            or f"{self.task_id}: {self.spec.title} (iteration {self.iteration})"
        )
        self.tree.commit(msg)
        ok, passed, failed, _ = self.tree.acceptance(self.spec.acceptance_argv())
        say(f"acceptance {'passed' if ok else 'FAILED'}: {passed} passed, {failed} failed")
        status = "completed" if ok else "partial"
        summary: dict[str, Any] = {
            "schema_version": 1,
            "task_id": self.task_id,
            "role": "factory",
            "iteration": self.iteration,
            "status": status,
            "implementation_files": sorted(
                set(self.tree.diff_files()) & (set(files) | set(self.sim.append))
            )
            or sorted(files),
            "commits": self.tree.branch_commits(),
            "test_results": {"passed": passed, "failed": failed},
            "loc_analysis": {"actual": self.tree.loc(), "cap": self.spec.loc_cap},
            "next_steps": ["QA review"] if ok else ["fix the failing tests"],
            "handover_notes": f"simulated factory, behaviour {self.behaviour}",
            "metrics": {"turns": 1, "tokens_in": 0, "tokens_out": 0, "cost_usd": 0.0},
            "sim_extra": {"attempt": self.attempt},
        }
        if self.behaviour == "false_claims":
            phantom = secrets.token_hex(20)
            summary["commits"] = [*summary["commits"], phantom]
            summary["implementation_files"] = [*summary["implementation_files"], "src/phantom.py"]
            say(f"claiming commit {phantom} (it does not exist)")
        return summary

    def qa_work(self) -> dict[str, Any]:
        findings: list[str] = []
        passed = failed = 0
        if self.behaviour in ("reject", "fail_tests"):
            first = next(iter(self.sim.files), "the change")
            findings.append(f"{first}:1: simulated finding: handle the edge cases explicitly")
        elif self.behaviour != "approve":
            ok, passed, failed, output = self.tree.acceptance(self.spec.acceptance_argv())
            if not ok:
                findings.append(f"acceptance failed: {output.strip().splitlines()[-1:]}")
            if self.base and not self.tree.diff_files():
                findings.append("the branch has no changes")
        status = "rejected" if findings else "approved"
        say(f"review: {status}")
        return {
            "schema_version": 1,
            "task_id": self.task_id,
            "role": "qa",
            "iteration": self.iteration,
            "status": status,
            "findings": findings,
            "test_results": {"passed": passed, "failed": failed},
            "next_steps": ["merge"] if status == "approved" else ["address the findings"],
            "handover_notes": f"simulated QA, behaviour {self.behaviour}",
        }

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> int:
        b = self.behaviour
        say(f"{self.role} {self.task_id} iteration {self.iteration} attempt {self.attempt}: {b}")
        if b == "hang":
            say("thinking...")
            while True:
                signal.pause()
        if b == "needs_input":  # like Claude Code at a permission prompt: asks, then waits
            say("Do you want to proceed? (permission prompt)")  # the dialog, then the hook
            self.run_hooks("Notification", message="Claude needs your permission to use Bash")
            while True:
                signal.pause()
        if b == "chat":  # a person talks to it (hatchctl send, m in the control room)
            say("waiting for instructions (a message with 'finish' in it completes the task)")
            for line in sys.stdin:
                text = line.strip()
                if not text:
                    continue
                self.run_hooks("UserPromptSubmit", prompt=text[:2000])
                say(f"received: {text[:80]}")
                if "finish" in text.lower():
                    break
        if b == "stubborn":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            subprocess.Popen(  # a grandchild in its own session that also ignores SIGTERM
                [
                    sys.executable,
                    "-c",
                    "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(3600)",
                ],
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            say("ignoring SIGTERM; left a setsid grandchild behind")
            while True:
                signal.pause()
        if b not in ("crash",):
            self.work_visibly()
        if b == "slow":
            time.sleep(self.sim.slow_seconds)
        if b == "noisy":
            for i in range(self.sim.noisy_lines):
                print(f"\x1b[32m[{i:04d}]\x1b[0m compiling module_{i % 17}.py ... \x1b[1mok\x1b[0m")
            sys.stdout.flush()
        if b == "crash":
            first = next(iter(self.sim.files.items()), None)
            if first:
                (self.worktree / first[0]).parent.mkdir(parents=True, exist_ok=True)
                (self.worktree / first[0]).write_text(
                    first[1][: len(first[1]) // 2], encoding="utf-8"
                )
            print(
                'Traceback (most recent call last):\n  File "agent.py", line 1\nRuntimeError: simulated crash',
                file=sys.stderr,
                flush=True,
            )
            return 1
        summary = self.factory_work() if self.role == "factory" else self.qa_work()
        if b == "bad_summary":
            self.write_summary({"task_id": self.task_id, "role": self.role, "status": "done?"})
        elif b not in ("no_summary", "mute"):
            self.write_summary(summary)
        if not self.interactive:
            return 0
        return self.interact(summary)

    def run_stop_hooks(self) -> None:
        self.turns += 1
        self.run_hooks(
            "Stop", transcript_path=append_transcript(self.turns), stop_hook_active=False
        )

    def run_hooks(self, event: str, **fields: object) -> None:
        if not run_hooks(self.worktree, event, **fields):
            say(f"no {event} hook configured")

    def interact(self, summary: dict[str, Any]) -> int:
        say("turn finished; waiting for input")
        self.run_stop_hooks()
        for line in sys.stdin:
            text = line.strip()
            if not text:
                continue
            self.run_hooks("UserPromptSubmit", prompt=text[:2000])
            say(f"received: {text[:80]}")
            if "summary" in text.lower() and self.behaviour == "no_summary":
                self.write_summary(summary)
            self.run_stop_hooks()
        return 0


def main(argv_interactive: bool) -> int:
    env = dict(os.environ)
    if env.get("HATCH_ROLE") == "planner":
        from hatchctl.runtime import simplanner

        return simplanner.main(env)
    missing = [
        k
        for k in (
            "HATCH_TASK_ID",
            "HATCH_ROLE",
            "HATCH_ITERATION",
            "HATCH_ATTEMPT",
            "HATCH_SUMMARY_FILE",
            "HATCH_SPEC_FILE",
        )
        if not env.get(k)
    ]
    if missing:
        sys.stderr.write(
            f"hatchctl: sim-agent needs {', '.join(missing)} (it is started by hatchctl)\n"
        )
        return 2
    interactive = argv_interactive or env.get("HATCH_STOP_MODE") == "claude-hook"
    return SimAgent(env, interactive).run()
