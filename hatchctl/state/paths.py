"""The on-disk contract (DESIGN.md §3): every path hatchctl reads or writes under a project."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hatchctl.errors import HatchError
from hatchctl.state.ids import check_role, check_task_id, run_name


@dataclass(frozen=True)
class ProjectPaths:
    root: Path

    @property
    def hatch(self) -> Path:
        return self.root / ".hatch"

    @property
    def db(self) -> Path:
        return self.hatch / "hatch.db"

    @property
    def snapshot(self) -> Path:
        return self.hatch / "current_state.json"

    @property
    def supervisor_lock(self) -> Path:
        return self.hatch / "supervisor.lock"

    @property
    def wake(self) -> Path:
        """Touched by clients after writing a command; its directory is watched by the supervisor
        (not .hatch/ itself, where every database write would wake it)."""
        return self.hatch / "signals" / "wake"

    @property
    def worktrees(self) -> Path:
        return self.hatch / "worktrees"

    @property
    def logs(self) -> Path:
        return self.hatch / "logs"

    @property
    def orchestrator_log(self) -> Path:
        return self.logs / "orchestrator" / "hatchctl.jsonl"

    @property
    def io(self) -> Path:
        """Per-run exchange directories: the only part of ``.hatch/`` an agent's sandbox can
        write (its own directory only)."""
        return self.hatch / "io"

    @property
    def secret(self) -> Path:
        """The project's secret (0600): run tokens are derived from it; never shown to agents."""
        return self.hatch / "secret"

    @property
    def sandboxes(self) -> Path:
        """Per-task shadow ref directories bound into a sandbox over ``refs/heads/hatch``."""
        return self.hatch / "sandbox"

    @property
    def runs(self) -> Path:
        """Launch tickets and claim records (one per run)."""
        return self.hatch / "runs"

    @property
    def prompts(self) -> Path:
        return self.hatch / "prompts"

    @property
    def handovers(self) -> Path:
        return self.hatch / "handovers"

    def worktree(self, task_id: str) -> Path:
        return self.worktrees / check_task_id(task_id)

    def run_log(self, task_id: str, role: str, iteration: int, attempt: int) -> Path:
        return self.logs / check_role(role) / f"{run_name(task_id, role, iteration, attempt)}.log"

    def io_dir(self, task_id: str, role: str, iteration: int) -> Path:
        """Where one role's agent of one iteration writes its stop files and its summary."""
        return self.io / check_task_id(task_id) / f"{check_role(role)}.i{int(iteration)}"

    def stop_file(self, task_id: str, role: str, iteration: int, attempt: int) -> Path:
        name = run_name(task_id, role, iteration, attempt)
        return self.io_dir(task_id, role, iteration) / f"{name}.stop"

    def summary_file(self, task_id: str, role: str, iteration: int) -> Path:
        return self.io_dir(task_id, role, iteration) / "summary.json"

    def shadow_refs(self, task_id: str) -> Path:
        return self.sandboxes / check_task_id(task_id) / "refs"

    def shadow_logs(self, task_id: str) -> Path:
        return self.sandboxes / check_task_id(task_id) / "logs"

    def prompt_file(self, task_id: str, role: str, iteration: int, attempt: int) -> Path:
        return self.prompts / f"{run_name(task_id, role, iteration, attempt)}.md"

    def handover_file(self, task_id: str, role: str, iteration: int) -> Path:
        return self.handovers / f"{check_task_id(task_id)}.{check_role(role)}.i{iteration}.json"

    def ticket(self, run_id: int) -> Path:
        return self.runs / f"{run_id}.ticket"

    def claimed(self, run_id: int) -> Path:
        return self.runs / f"{run_id}.claimed"

    def cancelled(self, run_id: int) -> Path:
        return self.runs / f"{run_id}.cancelled"

    def ensure(self) -> None:
        for d in (
            self.hatch,
            self.wake.parent,
            self.worktrees,
            self.orchestrator_log.parent,
            self.io,
            self.sandboxes,
            self.runs,
            self.prompts,
            self.handovers,
            self.logs / "factory",
            self.logs / "qa",
        ):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.hatch.chmod(0o700)  # private even where an older hatchctl made it 0755

    def inside(self, path: Path) -> Path:
        """Return ``path`` resolved, refusing anything outside the project root."""
        resolved = path.resolve()
        root = self.root.resolve()
        if resolved != root and root not in resolved.parents:
            raise HatchError(f"path {path} is outside the project {root}")
        return resolved
