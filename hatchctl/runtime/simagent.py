"""``hatchctl sim-agent``: a test double for an agent CLI that does real work in the worktree.

It reads the HATCH_* environment and the spec's ``sim:`` block, writes files, runs the
acceptance command, commits, and writes its summary; or hangs, crashes, skips or botches its
summary, or lies, as scripted per role, iteration and attempt (see state/simscript.py; read by state/simsteps.py).
Interactive mode behaves like Claude Code: at the end of a turn it runs the Stop hooks from
``.claude/settings.local.json`` and waits for input (it answers a pasted summary request).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hatchctl.state.simsteps import SimSpec, read_sim_spec

GIT_ID = {
    "GIT_AUTHOR_NAME": "hatchctl sim-agent",
    "GIT_AUTHOR_EMAIL": "sim-agent@hatchctl.invalid",
    "GIT_COMMITTER_NAME": "hatchctl sim-agent",
    "GIT_COMMITTER_EMAIL": "sim-agent@hatchctl.invalid",
}


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
        self.turns = 0  # assistant messages written to its transcript
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

    # -- helpers -------------------------------------------------------------------------
    def git(self, *args: str, check: bool = True) -> str:
        env = {**os.environ}
        if not os.environ.get("GIT_AUTHOR_EMAIL"):
            env.update(GIT_ID)
        out = subprocess.run(
            ["git", *args],
            cwd=self.worktree,
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        if check and out.returncode != 0:
            raise SystemExit(f"sim-agent: git {args[0]} failed: {out.stderr.strip()}")
        return out.stdout.strip()

    def acceptance(self) -> tuple[bool, int, int, str]:
        argv = self.spec.acceptance_argv()
        if not argv:
            return True, 0, 0, "no acceptance command"
        try:
            out = subprocess.run(
                argv, cwd=self.worktree, capture_output=True, text=True, timeout=120, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, 0, 1, str(exc)
        text = out.stdout + out.stderr
        ran = re.search(r"Ran (\d+) tests?", text)
        total = int(ran.group(1)) if ran else 1
        bad = re.search(r"FAILED \((?:failures=(\d+))?(?:, )?(?:errors=(\d+))?", text)
        failed = (
            sum(int(g) for g in bad.groups() if g) if bad else (0 if out.returncode == 0 else 1)
        )
        return out.returncode == 0, max(total - failed, 0), failed, text[-2000:]

    def write_files(self, files: dict[str, str], append: dict[str, str]) -> list[str]:
        changed = []
        for rel, content in files.items():
            path = self.worktree / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists() or path.read_text(encoding="utf-8") != content:
                path.write_text(content, encoding="utf-8")
                changed.append(rel)
        for rel, text in append.items():
            path = self.worktree / rel
            current = path.read_text(encoding="utf-8") if path.exists() else ""
            if text not in current:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(current + text, encoding="utf-8")
                changed.append(rel)
        return changed

    def commit(self, message: str) -> None:
        self.git("add", "-A")  # project-state-readonly/ and .claude/ are in info/exclude
        if self.git("diff", "--cached", "--name-only"):
            self.git("commit", "-q", "-m", message)

    def branch_commits(self) -> list[str]:
        if not self.base:
            return [self.git("rev-parse", "HEAD")]
        out = self.git("rev-list", f"{self.base}..HEAD", check=False)
        return out.split()

    def diff_files(self) -> list[str]:
        if not self.base:
            return []
        return self.git("diff", "--name-only", f"{self.base}..HEAD", check=False).split()

    def loc(self) -> int:
        if not self.base:
            return 0
        total = 0
        for line in self.git("diff", "--numstat", f"{self.base}..HEAD", check=False).splitlines():
            parts = line.split("\t")
            total += sum(int(p) for p in parts[:2] if p.isdigit())
        return total

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
        changed = self.write_files(files, {} if broken else self.sim.append)
        if self.iteration > 1 and not changed:
            note = self.worktree / ".hatch-sim-notes"
            note.write_text(
                f"iteration {self.iteration}: addressed the findings\n", encoding="utf-8"
            )
        msg = (
            self.sim.commit_message
            or f"{self.task_id}: {self.spec.title} (iteration {self.iteration})"
        )
        self.commit(msg)
        ok, passed, failed, _ = self.acceptance()
        say(f"acceptance {'passed' if ok else 'FAILED'}: {passed} passed, {failed} failed")
        status = "completed" if ok else "partial"
        summary: dict[str, Any] = {
            "schema_version": 1,
            "task_id": self.task_id,
            "role": "factory",
            "iteration": self.iteration,
            "status": status,
            "implementation_files": sorted(
                set(self.diff_files()) & (set(files) | set(self.sim.append))
            )
            or sorted(files),
            "commits": self.branch_commits(),
            "test_results": {"passed": passed, "failed": failed},
            "loc_analysis": {"actual": self.loc(), "cap": self.spec.loc_cap},
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
            ok, passed, failed, output = self.acceptance()
            if not ok:
                findings.append(f"acceptance failed: {output.strip().splitlines()[-1:]}")
            if self.base and not self.diff_files():
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

    def write_transcript(self) -> str:
        """Like Claude Code's session transcript: one JSON line per assistant message with the
        API's usage (deterministic numbers), next to the stop file (the sandbox lets it write
        there and hatchctl can read it)."""
        stop = os.environ.get("HATCH_STOP_FILE", "")
        if not stop:
            return ""
        path = Path(stop).with_suffix(".transcript.jsonl")
        self.turns += 1
        line = {
            "type": "assistant",
            "message": {
                "id": f"msg_sim_{os.getpid()}_{self.turns}",
                "role": "assistant",
                "model": "claude-sonnet-sim",
                "usage": {
                    "input_tokens": 1000 * self.turns,
                    "output_tokens": 200,
                    "cache_creation_input_tokens": 500,
                    "cache_read_input_tokens": 3000,
                },
            },
        }
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
        return str(path)

    def run_stop_hooks(self) -> None:
        self.run_hooks("Stop", transcript_path=self.write_transcript(), stop_hook_active=False)

    def run_hooks(self, event: str, **fields: object) -> None:
        """Run the hooks configured for ``event`` in .claude/settings.local.json, as Claude Code
        does: through a shell, the event's JSON on stdin."""
        settings = self.worktree / ".claude" / "settings.local.json"
        try:
            hooks = json.loads(settings.read_text(encoding="utf-8"))["hooks"][event]
        except (OSError, ValueError, KeyError, TypeError):
            say(f"no {event} hook configured")
            return
        payload = json.dumps(
            {
                "session_id": f"sim-{os.getpid()}",
                "cwd": str(self.worktree),
                "hook_event_name": event,
                **fields,
            }
        )
        for entry in hooks:
            for hook in entry.get("hooks", []):
                if hook.get("type") == "command":
                    # Claude Code runs hook commands through a shell; so does its double.
                    subprocess.run(  # noqa: S602
                        hook["command"],
                        shell=True,
                        input=payload,
                        text=True,
                        timeout=float(hook.get("timeout", 60)),
                        check=False,
                        cwd=self.worktree,
                    )

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
