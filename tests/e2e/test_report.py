"""`hatchctl report` on a finished demo-like project: one self-contained, well-formed HTML file
with every task's lane and row; untrusted titles are escaped; the file is private and never
written through a symlink."""

from __future__ import annotations

import os
import re
import stat
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from hatchctl.demo import EXPECTED, write_demo
from hatchctl.project import Project
from hatchctl.state.store import Store
from hatchctl.state.sync import sync_specs
from tests.forkrun import Hatchctl

T0 = 1_795_000_000.0
OK = "succeeded"
# per task: when it became active, its runs (role, iteration, attempt, start, end, end state,
# reason, metrics), strikes (at, reason), restarts (at, reason), when it merged and ended
PLAN: dict[str, dict[str, Any]] = {
    "CALC-001": {
        "active": 0,
        "runs": [
            ("factory", 1, 1, 0, 20, OK, None, {"tokens_in": 1200, "tokens_out": 300}),
            ("qa", 1, 1, 20, 30, OK, None, {"cost_usd": 0.25}),
        ],
        "end": ("completed", 32),
    },
    "CALC-002": {
        "active": 33,
        "runs": [
            ("factory", 1, 1, 33, 45, OK, None, {}),
            ("qa", 1, 1, 45, 52, OK, None, {}),
            ("factory", 2, 1, 53, 63, OK, None, {}),
            ("qa", 2, 1, 63, 70, OK, None, {}),
        ],
        "strikes": [(52, "qa_rejected")],
        "end": ("completed", 72),
    },
    "CALC-003": {
        "active": 0,
        "runs": [
            ("factory", 1, 1, 0, 10, "killed", "idle_timeout", {}),
            ("factory", 1, 2, 11, 25, OK, None, {}),
            ("qa", 1, 1, 25, 30, OK, None, {}),
        ],
        "restarts": [(10, "idle_timeout")],
        "end": ("completed", 32),
    },
    "CALC-004": {"active": 0, "runs": [], "end": ("completed", 2)},
    "CALC-005": {
        "active": 2,
        "runs": [
            ("factory", 1, 1, 2, 12, "failed", "factory_partial", {}),
            ("factory", 2, 1, 13, 22, "failed", "unverified_claim", {}),
            ("factory", 3, 1, 23, 40, "failed", "no_summary", {}),
        ],
        "strikes": [(12, "factory_partial"), (22, "unverified_claim"), (40, "no_summary")],
        "end": ("failed", 40),
    },
    "CALC-006": {"end": ("blocked", 40)},
    "STATS-1": {
        "active": 0,
        "runs": [("factory", 1, 1, 0, 15, OK, None, {}), ("qa", 1, 1, 15, 20, OK, None, {})],
        "end": ("completed", 21),
    },
    "STATS-2": {
        "active": 22,
        "runs": [("factory", 1, 1, 22, 40, OK, None, {}), ("qa", 1, 1, 40, 45, OK, None, {})],
        "end": ("completed", 46),
    },
    "STATS-3": {
        "active": 47,
        "runs": [("factory", 1, 1, 47, 70, OK, None, {}), ("qa", 1, 1, 70, 80, OK, None, {})],
        "end": ("completed", 81),
    },
}


def demo_like_project(root: Path, titles: dict[str, str] | None = None) -> Project:
    """The demo project with the store of a finished demo run (deterministic rows, no agent
    ran): every task of ``EXPECTED`` in its expected end state. ``titles`` replaces spec titles
    before the specs are synced."""
    write_demo(root)
    for task_id, title in (titles or {}).items():
        spec = root / "specs" / f"{task_id}.md"
        line = f"title: {title}"
        text = re.sub(r"(?m)^title: .*$", lambda _, line=line: line, spec.read_text(), count=1)
        spec.write_text(text)
    project = Project.find(root)
    project.paths.ensure()
    clock = [T0 - 1]
    store = Store(project.paths.db, clock=lambda: clock[0])
    try:
        specs = project.load_specs()
        assert specs.ok, specs.problems
        sync_specs(store, specs.specs)
        steps: list[tuple[float, int, Any]] = []  # (time, order, action)

        def at(t: float, action: Any) -> None:
            steps.append((T0 + t, len(steps), action))

        for task_id, plan in PLAN.items():
            if "active" in plan:
                at(
                    plan["active"],
                    lambda tx, t=task_id: tx.transition_task(
                        t, "pending", "active", kind="task_started", phase="factory", iteration=1
                    ),
                )
            for role, it, att, start, end, state, reason, m in plan.get("runs", []):
                at(
                    start,
                    lambda tx, a=(task_id, role, it, att, end, state, reason, m): _run(
                        tx, clock, *a
                    ),
                )
            for n, (t, reason) in enumerate(plan.get("strikes", []), 1):
                at(
                    t,
                    lambda tx, tid=task_id, n=n, r=reason: (
                        tx.event(
                            "strike", task_id=tid, data={"strike": n, "reason": r, "class": "agent"}
                        ),
                        tx.update_task(tid, strikes=n),
                    ),
                )
            for n, (t, reason) in enumerate(plan.get("restarts", []), 1):
                at(
                    t,
                    lambda tx, tid=task_id, n=n, r=reason: tx.event(
                        "restart_scheduled", task_id=tid, data={"restart": n, "of": 3, "reason": r}
                    ),
                )
            end_state, t_end = plan["end"]
            if end_state == "completed" and plan["runs"]:
                at(t_end - 0.5, lambda tx, tid=task_id: tx.event("merged", task_id=tid))
            frm = "pending" if end_state == "blocked" else "active"
            at(
                t_end,
                lambda tx, tid=task_id, s=end_state, f=frm: tx.transition_task(
                    tid, f, s, kind=f"task_{s}", phase=None
                ),
            )
        for when, _, action in sorted(steps, key=lambda s: (s[0], s[1])):
            clock[0] = when
            with store.tx() as tx:
                action(tx)
        clock[0] = T0 + 90
    finally:
        store.close()
    return project


def _run(
    tx: Any,
    clock: list[float],
    task_id: str,
    role: str,
    it: int,
    att: int,
    end: float,
    state: str,
    reason: str | None,
    m: dict[str, Any],
) -> None:
    name = f"{task_id}.{role}.i{it}.a{att}"
    run = tx.insert_run(
        task_id=task_id,
        role=role,
        iteration=it,
        attempt=att,
        window_name=name,
        log_path=f".hatch/logs/{role}/{name}.log",
        stop_path="s",
        summary_path="m",
        prompt_path="p",
        started_at=clock[0],
    )
    tx.transition_run(run.id, "starting", "running", running_at=clock[0])
    if state == OK:
        tx.transition_run(run.id, "running", "stopped")
        tx.transition_run(run.id, "stopped", OK, ended_at=T0 + end, exit_code=0, metrics=m)
    else:
        tx.transition_run(run.id, "running", state, ended_at=T0 + end, reason=reason, metrics=m)


class _Checker(HTMLParser):
    """Well-formedness of the parts that matter: every non-void tag closed in order."""

    VOID = {"meta", "br", "hr", "img", "input", "link", "col", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_report_of_a_finished_demo_is_self_contained_and_escaped(
    tmp_path: Path, hatchctl: Hatchctl
) -> None:
    evil = "<script>alert('x')</script> & <b>bold</b>"
    project = demo_like_project(tmp_path / "demo", titles={"CALC-004": f'"{evil}"'})
    out = tmp_path / "report.html"
    result = hatchctl("-C", str(project.root), "report", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    html = out.read_text(encoding="utf-8")

    checker = _Checker()
    checker.feed(html)
    checker.close()
    assert checker.errors == [] and checker.stack == [], (checker.errors, checker.stack)
    tags = [t for t, _ in checker.tags]
    assert tags[0] == "html" and "svg" in tags and "table" in tags
    assert "script" not in tags  # the title's <script> is text, not a tag...
    assert "&lt;script&gt;alert(" in html and "<b>bold" not in html
    assert evil in "".join(checker.text)  # ...and reads as the title it is
    # self-contained: nothing fetched from anywhere
    for tag, attrs in checker.tags:
        for name in ("src", "href", "xlink:href"):
            assert not attrs.get(name), (tag, attrs)
    assert "url(" not in html and "@import" not in html

    text = " ".join(checker.text)
    for task_id in EXPECTED:  # a lane and a table row per task
        lanes = [a for t, a in checker.tags if a.get("data-lane") == task_id]
        rows = [a for t, a in checker.tags if t == "tr" and a.get("data-task") == task_id]
        assert len(lanes) == 1 and len(rows) == 1, task_id
        assert task_id in text
    bars = [a for _, a in checker.tags if "data-run" in a]
    assert len(bars) == sum(len(p.get("runs", [])) for p in PLAN.values())
    critical = [a["data-lane"] for _, a in checker.tags if a.get("data-critical") == "true"]
    assert critical == ["STATS-1", "STATS-2", "STATS-3"]
    marks = [a["data-mark"] for _, a in checker.tags if "data-mark" in a]
    assert marks.count("strike") == 4 and marks.count("restart") == 1
    assert "$0.25" in text and "1.5k tok" in text  # CALC-001's metrics


def test_report_refuses_a_symlink_and_defaults_to_exports(
    tmp_path: Path, hatchctl: Hatchctl
) -> None:
    project = demo_like_project(tmp_path / "demo")
    target = tmp_path / "victim.txt"
    target.write_text("keep me\n")
    link = tmp_path / "link.html"
    link.symlink_to(target)
    result = hatchctl("-C", str(project.root), "report", "--out", str(link))
    assert result.returncode == 1 and result.stderr.startswith("hatchctl: ")
    assert len(result.stderr.splitlines()) == 1 and "symlink" in result.stderr
    assert target.read_text() == "keep me\n"

    result = hatchctl("-C", str(project.root), "report")
    assert result.returncode == 0, result.stderr
    default = project.root / ".hatch" / "exports" / "report.html"
    assert default.is_file() and not default.is_symlink()
    assert os.stat(default).st_mode & 0o077 == 0
