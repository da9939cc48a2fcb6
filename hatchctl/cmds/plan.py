"""``hatchctl plan``: the planner agent turns a feature description into task specs, which are
checked (ids, dependencies, cycles) and held in ``.hatch/plans/<NAME>/`` until a person approves
them (``--approve NAME``: they enter the specs directory and so the queue) or rejects them."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
from pathlib import Path

from hatchctl.cmds.common import build_deps, load_project
from hatchctl.config import AgentSection
from hatchctl.engine import planner
from hatchctl.engine.deps import Deps
from hatchctl.errors import HatchError, SpecError
from hatchctl.project import Project
from hatchctl.state.atomicfile import write_atomic
from hatchctl.state.featureops import order_ids
from hatchctl.state.plan import Feature, PlanDir, Proposal, check, plan_dirs, read_feature
from hatchctl.tui.specedit import write_new


def plans_root(project: Project) -> Path:
    return project.paths.hatch / "plans"


def plan(args: argparse.Namespace) -> int:
    project = load_project(args)
    if args.list:
        return _list(project)
    if args.approve:
        return _approve(project, args.approve)
    if args.reject:
        return _reject(project, args.reject)
    return _run(project, Path(args.feature_file), args.timeout)


def _event(deps: Deps, kind: str, name: str, **data: object) -> None:
    with deps.store.tx() as tx:
        tx.event(kind, data={"plan": name, **data})
    deps.log.info(kind, plan=name, **data)


def _run(project: Project, feature_file: Path, timeout: float | None) -> int:
    agent = project.config.agents.planner
    if agent is None:
        raise HatchError(
            'no planner: add [agents.planner] to hatch.toml (preset = "claude", or '
            'command = ["hatchctl", "sim-agent"] to try it)'
        )
    feature = read_feature(feature_file)
    plan_dir = PlanDir(plans_root(project), feature.name)
    if plan_dir.root.exists():
        state = plan_dir.state().get("state", "unknown")
        raise HatchError(
            f"plan {feature.name} exists ({state}): hatchctl plan --approve {feature.name} or "
            f"--reject {feature.name} first"
        )
    deps = build_deps(project)
    try:
        return _plan(deps, agent, feature, plan_dir, timeout or agent_timeout(project))
    finally:
        deps.store.close()


def agent_timeout(project: Project) -> float:
    return float(project.config.limits.run_timeout)


def _plan(
    deps: Deps, agent: AgentSection, feature: Feature, plan_dir: PlanDir, timeout: float
) -> int:
    project = deps.project
    plan_dir.create(feature.text)
    ids = sorted(project.load_specs().specs)
    text = planner.prompt_text(agent, project.root, plan_dir, feature, ids)
    write_atomic(plan_dir.prompt, text.encode())  # 0600 from the start
    before = specs_listing(project.specs_dir)
    token = secrets.token_hex(16)
    plan_dir.set_state("running", feature=feature.name)
    try:
        run_key, pane_id = planner.launch(deps, agent, plan_dir, token)
    except HatchError as exc:
        plan_dir.set_state("refused", problems=[str(exc)])
        _event(deps, "plan_failed", feature.name, reason=str(exc))
        raise
    _event(deps, "plan_started", feature.name, pane_id=pane_id)
    print(
        f"planner running for {feature.name} (tmux window {planner.window_name(feature.name)}, "
        f"at most {timeout:g}s); its output: {plan_dir.log}",
        flush=True,
    )
    try:
        outcome = planner.wait(
            plan_dir, token, timeout, alive=lambda: planner.pane_alive(deps, pane_id)
        )
    finally:  # also on Ctrl-C: never leave the planner running
        planner.stop(deps, run_key, pane_id)
    if outcome.ended in ("timeout", "vanished") or (outcome.exit_code or 0) != 0:
        reason = outcome.detail or f"the planner exited with {outcome.exit_code}"
        plan_dir.set_state("refused", problems=[reason])
        _event(deps, "plan_failed", feature.name, reason=reason)
        raise HatchError(
            f"plan {feature.name}: {reason} (see {plan_dir.log}; hatchctl plan --reject "
            f"{feature.name} to discard)"
        )
    proposal = check(plan_dir.out, project.specs_dir, feature.name)
    changed = changes(before, specs_listing(project.specs_dir))
    if changed:  # an unsandboxed planner (or someone) wrote into the queue meanwhile: say so
        proposal.problems.insert(
            0, f"the specs directory changed while the planner ran: {', '.join(changed)}"
        )
    return _report(deps, plan_dir, proposal)


def specs_listing(specs_dir: Path) -> dict[str, tuple[int, int, int]]:
    """Each entry of the specs directory: (inode, size, mtime), never following a link."""
    out: dict[str, tuple[int, int, int]] = {}
    with contextlib.suppress(OSError):
        for entry in os.scandir(specs_dir):
            st = entry.stat(follow_symlinks=False)
            out[entry.name] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return out


def changes(
    before: dict[str, tuple[int, int, int]], after: dict[str, tuple[int, int, int]]
) -> list[str]:
    added = [f"{n} (added)" for n in sorted(set(after) - set(before))]
    gone = [f"{n} (removed)" for n in sorted(set(before) - set(after))]
    edited = [f"{n} (changed)" for n in sorted(set(before) & set(after)) if before[n] != after[n]]
    return added + gone + edited


def _report(deps: Deps, plan_dir: PlanDir, proposal: Proposal) -> int:
    name = plan_dir.name
    if not proposal.ok:
        plan_dir.set_state("refused", problems=proposal.problems)
        _event(deps, "plan_refused", name, problems=proposal.problems[:50])
        print(f"plan {name} refused: {len(proposal.problems)} problem(s)")
        for problem in proposal.problems:
            print(f"  {problem}")
        print(
            f"none of the plan's specs entered the queue; they are in {plan_dir.out} "
            f"(hatchctl plan --reject {name} discards them)"
        )
        return 1
    plan_dir.set_state("proposed", specs=sorted(proposal.specs))
    _event(deps, "plan_proposed", name, specs=sorted(proposal.specs))
    print(f"plan {name}: {len(proposal.specs)} task(s), held for your approval")
    for tid in sorted(proposal.specs):
        deps_text = f"  after {', '.join(proposal.depends[tid])}" if proposal.depends[tid] else ""
        print(f"  {tid}  {proposal.titles[tid]}{deps_text}")
    print(f"read them in {plan_dir.out}; then hatchctl plan --approve {name} (or --reject {name})")
    return 0


def _existing(project: Project, name: str) -> PlanDir:
    plan_dir = PlanDir(plans_root(project), name)
    if not plan_dir.root.is_dir() or plan_dir.root.is_symlink():
        known = ", ".join(p.name for p in plan_dirs(plans_root(project))) or "none"
        raise HatchError(f"no plan {name!r} (plans: {known})")
    return plan_dir


def _approve(project: Project, name: str) -> int:
    plan_dir = _existing(project, name)
    state = plan_dir.state().get("state")
    if state != "proposed":
        raise HatchError(f"plan {name} is {state}, not proposed: nothing to approve")
    proposal = check(plan_dir.out, project.specs_dir, name)  # the specs may have changed since
    deps = build_deps(project)
    try:
        if not proposal.ok:
            return _report(deps, plan_dir, proposal)
        written: list[str] = []
        # dependencies first: a supervisor that picks up each file at once never sees a
        # spec whose dependency is not there yet
        needs = {tid: set(proposal.depends[tid]) for tid in proposal.specs}
        for tid in order_ids(needs):
            try:
                write_new(project.specs_dir, tid, proposal.specs[tid])
            except SpecError as exc:
                raise HatchError(
                    f"plan {name}: {exc}; written before it: {', '.join(written) or 'none'}"
                ) from None
            written.append(tid)
        plan_dir.set_state("approved", specs=written)
        _event(deps, "plan_approved", name, specs=written)
    finally:
        deps.store.close()
    with contextlib.suppress(OSError):
        plan_dir.discard()
    print(
        f"plan {name} approved: {len(written)} task(s) in {project.specs_dir}: {', '.join(written)}"
    )
    return 0


def _reject(project: Project, name: str) -> int:
    plan_dir = _existing(project, name)
    deps = build_deps(project)
    try:
        pane = (
            next(
                (p for p in deps.tmux.list_panes() if p.window_name == planner.window_name(name)),
                None,
            )
            if deps.tmux.server_pid()
            else None
        )
        if pane is not None:
            deps.tmux.kill_pane(pane.pane_id)
        plan_dir.discard()
        _event(deps, "plan_rejected", name)
    finally:
        deps.store.close()
    print(f"plan {name} discarded")
    return 0


def _list(project: Project) -> int:
    dirs = plan_dirs(plans_root(project))
    if not dirs:
        print("no plans")
        return 0
    for plan_dir in dirs:
        doc = plan_dir.state()
        state = doc.get("state", "unknown")
        detail = ", ".join(doc.get("specs", [])) or "; ".join(doc.get("problems", []))[:200]
        print(f"{plan_dir.name}  {state}  {detail}")
    return 0
