"""Commands written by clients (``hatchctl kill|restart|retry|pause|resume|down|undrain``) into the
commands table, applied by the supervisor. Each ends as done or failed with a result line."""

from __future__ import annotations

from collections.abc import Callable

from hatchctl.engine import housekeeping, runend
from hatchctl.engine.courier import Courier
from hatchctl.engine.deps import Deps
from hatchctl.engine.lifecycle import fail, strike
from hatchctl.errors import HatchError
from hatchctl.state.rows import CommandRow, RunRow, TaskRow
from hatchctl.state.transitions import RUN_LIVE

KINDS = (
    "kill",
    "restart",
    "retry",
    "pause",
    "resume",
    "down",
    "forget",
    "clean",
    "send",
    "hold",
    "unhold",
    "cancel",
    "approve",
    "reject",
    "undrain",
)
MAX_NOTE = 20_000  # characters of a reviewer's note
MAX_MESSAGE = 64 * 1024  # bytes: a message to an agent is pasted, like a prompt


class CommandFailed(HatchError):
    pass


class Commands:
    def __init__(
        self,
        deps: Deps,
        on_down: Callable[[], None],
        on_resume: Callable[[], None],
        courier: Courier | None = None,
    ) -> None:
        self.deps = deps
        self.on_down = on_down
        self.on_resume = on_resume
        self.courier = courier

    def process(self) -> int:
        done = 0
        for cmd in self.deps.store.pending_commands():
            try:
                result = self.apply(cmd)
                ok = True
            except HatchError as exc:
                result, ok = str(exc), False
            with self.deps.store.tx() as tx:
                tx.finish_command(cmd.id, ok, result)
                tx.event(
                    "command_done" if ok else "command_failed",
                    task_id=cmd.task_id,
                    data={"command": cmd.kind, "id": cmd.id, "result": result},
                )
            self.deps.log.info(
                "command_applied", command=cmd.kind, task_id=cmd.task_id, ok=ok, result=result
            )
            done += 1
        return done

    def apply(self, cmd: CommandRow) -> str:
        if cmd.kind not in KINDS:
            raise CommandFailed(f"unknown command {cmd.kind!r}")
        if cmd.kind == "pause":
            return self.pause()
        if cmd.kind == "resume":
            return self.resume()
        if cmd.kind == "down":
            return self.down()
        if cmd.kind == "clean":
            return housekeeping.clean(self.deps, str(cmd.args.get("scope", "failed")))
        if cmd.kind == "undrain":
            return self.deps.remote.health.undrain(str(cmd.args.get("host", "")))
        if cmd.kind == "forget":
            task_id = cmd.task_id or ""
            return housekeeping.forget(self.deps, task_id)
        task = self.deps.store.task(cmd.task_id or "")
        if task is None:
            raise CommandFailed(f"no task {cmd.task_id!r}")
        if cmd.kind == "send":
            return self.send(task.id, str(cmd.args.get("text", "")))
        if cmd.kind == "reject":
            return self.reject(task.id, str(cmd.args.get("note", "")))
        per_task = {
            "kill": self.kill,
            "restart": self.restart,
            "retry": self.retry,
            "hold": self.hold,
            "unhold": self.unhold,
            "cancel": self.cancel,
            "approve": self.approve,
        }
        return per_task[cmd.kind](task.id)

    def _in_review(self, task_id: str, verb: str) -> TaskRow:
        task = self.deps.store.task(task_id)
        if task is None or task.state != "active" or task.phase != "review":
            where = f"{task.state}, phase {task.phase or '-'}" if task else "unknown"
            raise CommandFailed(f"{task_id} is not waiting for review ({where}): nothing to {verb}")
        return task

    def approve(self, task_id: str) -> str:
        """A person approves reviewed work: it merges (and is re-checked) like QA-approved work."""
        self._in_review(task_id, "approve")
        with self.deps.store.tx() as tx:
            tx.update_task(task_id, phase="merge")
            tx.event("review_approved", task_id=task_id)
            tx.event("handover", task_id=task_id, data={"from": "review", "to": "merge"})
        return f"approved {task_id}: merging"

    def reject(self, task_id: str, note: str) -> str:
        """A person rejects reviewed work: a strike, and the factory's next iteration gets the
        note as its findings (as after a QA rejection)."""
        task = self._in_review(task_id, "reject")
        note = note.strip()
        if not note:
            raise CommandFailed("a rejection needs a note saying what to change")
        note = note[:MAX_NOTE]
        with self.deps.store.tx() as tx:
            tx.event("review_rejected", task_id=task_id, data={"note": note[:500]})
            row = strike(
                self.deps,
                tx,
                task,
                role=None,
                failure_class="code",
                reason="review_rejected",
                detail=note[:500],
                findings=[f"reviewer: {note}"],
            )
        if row.state == "failed":
            return f"rejected {task_id}: it has no strikes left and failed"
        return f"rejected {task_id}: the factory starts iteration {row.iteration} with the note"

    def hold(self, task_id: str) -> str:
        """Not started while held; an active task's running agent finishes its run, then the
        task waits (no verification, QA, merge or next launch) until unheld."""
        task = self.deps.store.task(task_id)
        assert task is not None
        if task.state in ("completed", "failed"):
            raise CommandFailed(f"{task_id} is {task.state}: nothing to hold")
        if task.held:
            return f"{task_id} is already held"
        with self.deps.store.tx() as tx:
            tx.update_task(task_id, held=1)
            tx.event("task_held", task_id=task_id, data={"state": task.state})
        live = self._live(task_id)
        return f"held {task_id}" + (f" (its {live[0].role} finishes its run first)" if live else "")

    def unhold(self, task_id: str) -> str:
        task = self.deps.store.task(task_id)
        assert task is not None
        if not task.held:
            return f"{task_id} is not held"
        with self.deps.store.tx() as tx:
            tx.update_task(task_id, held=0)
            tx.event("task_unheld", task_id=task_id, data={"state": task.state})
        return f"unheld {task_id}"

    def cancel(self, task_id: str) -> str:
        """Take a task out of the queue: its agents are stopped and it fails as cancelled
        (its dependents are blocked); ``retry`` brings it back."""
        deps = self.deps
        task = deps.store.task(task_id)
        assert task is not None
        if task.state in ("completed", "failed"):
            raise CommandFailed(f"{task_id} is {task.state}: nothing to cancel")
        live = self._live(task_id)
        for run in live:
            runend.end_run(deps, run, "killed", "cancelled_by_user")
        note = "cancelled by user (hatchctl cancel)"
        with deps.store.tx() as tx:
            current = tx.task(task_id)
            assert current is not None
            if current.state == "active":
                fail(deps, tx, current, failure_class=None, last_error=note, held=0)
            else:
                tx.transition_task(
                    task_id,
                    current.state,
                    "failed",
                    kind="task_cancelled",
                    phase=None,
                    last_error=note,
                    held=0,
                )
        return f"cancelled {task_id}" + (f": {len(live)} agent(s) stopped" if live else "")

    def send(self, task_id: str, text: str) -> str:
        """Paste a person's message into the task's running agent, with the delivery
        confirmation prompts get; the outcome is a ``delivered``/``delivery_failed`` event
        (kind ``message``)."""
        self._active(task_id, "send a message to")
        if not text.strip():
            raise CommandFailed("the message is empty")
        if len(text.encode()) > MAX_MESSAGE:
            raise CommandFailed(f"the message is over {MAX_MESSAGE // 1024} KiB")
        live = [r for r in self._live(task_id) if r.pane_id]
        if not live:
            raise CommandFailed(f"{task_id} has no agent running to send to")
        run = live[-1]
        if self.courier is None or not self.courier.send(run, text, "message"):
            raise CommandFailed(f"a delivery to {run.window_name} is under way: try again")
        with self.deps.store.tx() as tx:
            tx.event(
                "message_sent",
                task_id=task_id,
                run_id=run.id,
                data={"chars": len(text), "text": text[:500]},
            )
        return f"sending {len(text)} characters to {run.window_name} (run {run.id})"

    def _live(self, task_id: str) -> list[RunRow]:
        return [r for r in self.deps.store.runs(task_id) if r.state in RUN_LIVE]

    def _active(self, task_id: str, verb: str) -> TaskRow:
        task = self.deps.store.task(task_id)
        if task is None or task.state != "active":
            state = task.state if task else "unknown"
            raise CommandFailed(f"{task_id} is {state}, not active: nothing to {verb}")
        return task

    def kill(self, task_id: str) -> str:
        deps = self.deps
        self._active(task_id, "kill")
        survivors = 0
        live = self._live(task_id)
        for run in live:
            report = runend.end_run(deps, run, "killed", "killed_by_user")
            survivors += len(report.survivors)
        with deps.store.tx() as tx:
            current_task = tx.task(task_id)
            assert current_task is not None
            fail(
                deps,
                tx,
                current_task,
                failure_class=None,
                last_error="killed by user (hatchctl kill)",
            )
        return f"killed {task_id}: {len(live)} agent(s) stopped" + (
            f", {survivors} process(es) survived SIGKILL" if survivors else ""
        )

    def restart(self, task_id: str) -> str:
        deps = self.deps
        task = self._active(task_id, "restart")
        live = self._live(task_id)
        if not live and task.phase != "backoff":
            raise CommandFailed(f"{task_id} has no running agent (phase {task.phase})")
        role = live[0].role if live else (task.resume_phase or "factory")
        for run in live:
            runend.end_run(deps, run, "killed", "restarted_by_user")
        with deps.store.tx() as tx:  # relaunch on the next loop, no strike, no restart counted
            tx.update_task(
                task_id, phase="backoff", resume_phase=role, next_retry_at=tx.now, pane_id=None
            )
        return f"restarting the {role} of {task_id}"

    def retry(self, task_id: str) -> str:
        deps = self.deps
        task = deps.store.task(task_id)
        assert task is not None
        if task.state not in ("failed", "blocked"):
            raise CommandFailed(
                f"{task_id} is {task.state}; only failed or blocked tasks can be retried"
            )
        with deps.store.tx() as tx:
            errors = (
                [*task.errors, {"retry": True, "at_strikes": task.strikes}] if task.errors else []
            )
            tx.transition_task(
                task_id,
                task.state,
                "pending",
                kind="task_retried",
                phase=None,
                iteration=0,
                attempt=0,
                strikes=0,
                restarts=0,
                failure_class=None,
                last_error=None,
                base_sha=None,
                next_retry_at=None,
                resume_phase=None,
                errors=errors,
                data={"previous_strikes": task.strikes},
            )
        return f"{task_id} is pending again (its previous errors are kept)"

    def pause(self) -> str:
        with self.deps.store.tx() as tx:
            tx.set_meta("paused", "1")
            tx.set_meta("pause_reason", "paused by user")
            tx.event("paused", data={"reason": "paused by user"})
        return "paused: no new agents will be started"

    def resume(self) -> str:
        with self.deps.store.tx() as tx:
            tx.set_meta("paused", "0")
            tx.set_meta("pause_reason", "")
            tx.event("resumed")
        self.on_resume()
        return "resumed"

    def down(self) -> str:
        self.on_down()
        return "stopping every agent and the supervisor"
