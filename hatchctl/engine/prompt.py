"""Prompts and handovers: what each agent launch is told, rendered from a template."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from string import Template
from typing import Any

from hatchctl.errors import SummaryError
from hatchctl.state.rows import TaskRow
from hatchctl.state.spec import TaskSpec
from hatchctl.state.summary import read_agent_file

BUILTIN = Path(__file__).resolve().parent.parent / "templates"
SUMMARY_REQUEST = (
    "hatchctl: your turn ended without a valid handover summary. Write it now as JSON to {path} "
    "(fields: schema_version, task_id, role, iteration, status, ...). Do nothing else."
)


def load_template(role: str, configured: str, root: Path) -> str:
    if configured:
        path = (root / configured).resolve()
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return (BUILTIN / f"{role}.md").read_text(encoding="utf-8")


def handover_text(path: Path | None) -> str:
    if path is None or not path.exists():
        return "(none: this is the first iteration)"
    try:
        return read_agent_file(path, "handover")[:20_000].decode("utf-8", "replace")
    except SummaryError as exc:
        return f"(unreadable: {exc})"


def render(
    template: str,
    *,
    spec: TaskSpec,
    task: TaskRow,
    role: str,
    iteration: int,
    attempt: int,
    worktree: Path,
    summary_file: Path,
    stop_file: Path,
    handover_file: Path | None,
    resume_note: str = "",
) -> str:
    values = {
        "task_id": spec.id,
        "title": spec.title,
        "role": role,
        "iteration": str(iteration),
        "attempt": str(attempt),
        "worktree": str(worktree),
        "branch": task.branch or f"hatch/{spec.id}",
        "base_sha": task.base_sha or "",
        "readonly_dir": str(worktree / "project-state-readonly"),
        "spec_text": spec.body,
        "files": ", ".join(spec.files) or "(not declared)",
        # shell-quoted: pasted into a shell it runs exactly the argv hatchctl runs
        "acceptance": shlex.join(spec.acceptance_argv() or []) or "(none)",
        "loc_cap": str(spec.loc_cap or "none"),
        "summary_file": str(summary_file),
        "stop_file": str(stop_file),
        "handover_file": str(handover_file) if handover_file else "(none)",
        "handover_text": handover_text(handover_file),
    }
    text = Template(template).safe_substitute(values)
    if resume_note:
        text += "\n\n## Resuming\n" + resume_note
    return text


def factory_handover(
    task: TaskRow, findings: list[str], previous_summary: dict[str, Any] | None
) -> str:
    """The handover a factory gets on iteration > 1: why the last cycle failed."""
    doc = {
        "task_id": task.id,
        "iteration": task.iteration,
        "previous_errors": task.errors,
        "qa_findings": findings,
        "previous_summary": previous_summary,
        "instructions": "Address every finding and error above, commit, and write a new summary.",
    }
    return json.dumps(doc, indent=2, sort_keys=True)
