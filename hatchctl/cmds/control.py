"""Write commands: kill, restart, retry, hold, cancel, approve, reject, pause, resume, down. They
are written to the commands table of the running supervisor (which acts within a second) and the
result is printed. ``--feature NAME`` (hold, unhold, review, approve, reject) acts on a feature
as a whole: one per-task command for each of its tasks that it applies to, through the same
queue."""

from __future__ import annotations

import argparse
import time

from hatchctl.cmds.common import load_project
from hatchctl.errors import HatchError, SupervisorError
from hatchctl.project import Project
from hatchctl.state import featureops
from hatchctl.state.ids import check_task_id
from hatchctl.state.lockfile import LockInfo, probe
from hatchctl.state.rows import TaskRow

WAIT_SECONDS = 15.0


def touch_wake(project: Project) -> None:
    wake = project.paths.wake
    wake.parent.mkdir(parents=True, exist_ok=True)
    wake.write_text(f"{time.time()}\n")


def _running(project: Project) -> LockInfo:
    lock = probe(project.paths.supervisor_lock)
    if not lock.held:
        raise SupervisorError(
            f"no supervisor is running for project {project.name} (start one with `hatchctl run` or `hatchctl`)"
        )
    return lock


def send(
    project: Project,
    kind: str,
    task_id: str | None = None,
    *,
    wait: bool = True,
    timeout: float = WAIT_SECONDS,
    args: dict[str, str] | None = None,
) -> tuple[bool, str]:
    """Queue a command for the supervisor; optionally wait for its result."""
    if task_id is not None:
        check_task_id(task_id)
    lock = _running(project)
    store = project.open_store()
    try:
        if task_id is not None and store.task(task_id) is None:
            raise HatchError(f"no task {task_id!r} in project {project.name}")
        command_id = store.enqueue_command(kind, task_id, **(args or {}))
        touch_wake(project)
        if not wait:
            return True, f"queued {kind} as command {command_id}"
        deadline = time.monotonic() + timeout + project.config.limits.kill_grace
        while time.monotonic() < deadline:
            cmd = store.command(command_id)
            if cmd is not None and cmd.state != "pending":
                return cmd.state == "done", cmd.result or cmd.state
            time.sleep(0.05)
        raise SupervisorError(
            f"the supervisor (pid {lock.pid}) did not answer within {timeout:g}s; command {command_id} stays queued"
        )
    finally:
        store.close()


def send_each(
    project: Project,
    kind: str,
    task_ids: list[str],
    *,
    wait: bool = True,
    timeout: float = WAIT_SECONDS,
    args: dict[str, str] | None = None,
) -> dict[str, tuple[bool, str]]:
    """One command per task (a feature's), queued together in this order, which the supervisor
    keeps; then each one's result (ok, its line). The same commands as `send`, the same queue."""
    for task_id in task_ids:
        check_task_id(task_id)
    lock = _running(project)
    store = project.open_store()
    try:
        queued = {t: store.enqueue_command(kind, t, **(args or {})) for t in task_ids}
        touch_wake(project)
        if not wait:
            return {t: (True, f"queued {kind} as command {c}") for t, c in queued.items()}
        grace = project.config.limits.kill_grace * len(task_ids)
        deadline = time.monotonic() + timeout + grace
        results: dict[str, tuple[bool, str]] = {}
        while len(results) < len(queued) and time.monotonic() < deadline:
            for task_id, command_id in queued.items():
                cmd = store.command(command_id) if task_id not in results else None
                if cmd is not None and cmd.state != "pending":
                    results[task_id] = (cmd.state == "done", cmd.result or cmd.state)
            if len(results) < len(queued):
                time.sleep(0.05)
        for task_id, command_id in queued.items():
            results.setdefault(
                task_id,
                (
                    False,
                    f"the supervisor (pid {lock.pid}) did not answer within {timeout:g}s; "
                    f"command {command_id} stays queued",
                ),
            )
        return {t: results[t] for t in task_ids}
    finally:
        store.close()


def _run(args: argparse.Namespace, kind: str, task_id: str | None = None) -> int:
    project = load_project(args)
    ok, result = send(project, kind, task_id, wait=not args.no_wait)
    if not ok:
        raise HatchError(f"{kind} failed: {result}")
    print(result)
    return 0


def kill(args: argparse.Namespace) -> int:
    return _run(args, "kill", args.task_id)


def restart(args: argparse.Namespace) -> int:
    return _run(args, "restart", args.task_id)


def retry(args: argparse.Namespace) -> int:
    return _run(args, "retry", args.task_id)


def hold(args: argparse.Namespace) -> int:
    if getattr(args, "feature", None) is not None:
        return _hold_feature(args, "hold")
    return _run(args, "hold", args.task_id)


def unhold(args: argparse.Namespace) -> int:
    if getattr(args, "feature", None) is not None:
        return _hold_feature(args, "unhold")
    return _run(args, "unhold", args.task_id)


def cancel(args: argparse.Namespace) -> int:
    return _run(args, "cancel", args.task_id)


def pause(args: argparse.Namespace) -> int:
    return _run(args, "pause")


def resume(args: argparse.Namespace) -> int:
    return _run(args, "resume")


def down(args: argparse.Namespace) -> int:
    return _run(args, "down")


def _housekeeping(args: argparse.Namespace, kind: str, task_id: str | None, **extra: str) -> int:
    """Through the running supervisor, else here, holding the supervisor lock meanwhile."""
    project = load_project(args)
    if task_id is not None:
        check_task_id(task_id)
    if probe(project.paths.supervisor_lock).held:
        ok, result = send(project, kind, task_id, args=extra)
        if not ok:
            raise HatchError(f"{kind} failed: {result}")
        print(result)
        return 0
    from hatchctl.cmds.common import build_deps
    from hatchctl.engine import housekeeping
    from hatchctl.state.lockfile import SupervisorLock

    lock = SupervisorLock(project.paths.supervisor_lock)
    lock.acquire()
    deps = build_deps(project)
    try:
        if kind == "forget":
            assert task_id is not None
            result = housekeeping.forget(deps, task_id)
        else:
            result = housekeeping.clean(deps, extra["scope"])
    finally:
        deps.store.close()
        lock.release()
    print(result)
    return 0


def forget(args: argparse.Namespace) -> int:
    return _housekeeping(args, "forget", args.task_id)


def clean(args: argparse.Namespace) -> int:
    return _housekeeping(args, "clean", None, scope="all" if args.all else "failed")


def send_message(args: argparse.Namespace) -> int:
    """``hatchctl send ID TEXT``: the running supervisor pastes it into the agent's pane; this
    waits for the delivery's outcome (an event) and prints it."""
    project = load_project(args)
    text = " ".join(args.text)
    store = project.open_store()
    try:
        mark = max((e.id for e in store.events(args.task_id)), default=0)
    finally:
        store.close()
    ok, result = send(project, "send", args.task_id, args={"text": text})
    if not ok:
        raise HatchError(f"send failed: {result}")
    print(result)
    lim = project.config.limits
    deadline = time.monotonic() + lim.delivery_tries * (lim.delivery_confirm + lim.submit_delay) + 5
    store = project.open_store()
    try:
        while time.monotonic() < deadline:
            for e in store.events(args.task_id, after=mark):
                if e.kind in ("delivered", "delivery_failed") and e.data.get("kind") == "message":
                    if e.kind == "delivered":
                        print(f"delivered ({e.data.get('how') or 'confirmed'})")
                        return 0
                    raise HatchError(f"not delivered: {e.data.get('error') or 'no confirmation'}")
            time.sleep(0.1)
    finally:
        store.close()
    raise HatchError("no delivery outcome yet: `hatchctl events --task ID` will show it")


def approve(args: argparse.Namespace) -> int:
    if getattr(args, "feature", None) is not None:
        return _approve_feature(args)
    return _run(args, "approve", args.task_id)


def reject(args: argparse.Namespace) -> int:
    if getattr(args, "feature", None) is not None:
        return _reject_feature(args)
    project = load_project(args)
    ok, result = send(project, "reject", args.task_id, args={"note": args.note})
    if not ok:
        raise HatchError(f"reject failed: {result}")
    print(result)
    return 0


def review(args: argparse.Namespace) -> int:
    """The tasks waiting for a person's review: what changed, what QA and the checks said."""
    from hatchctl.runtime.gitrepo import Git
    from hatchctl.state.ids import branch_name

    if getattr(args, "feature", None) is not None:
        return _review_feature(args)
    project = load_project(args)
    store = project.open_store()
    try:
        waiting = [t for t in store.tasks() if t.state == "active" and t.phase == "review"]
        if not waiting:
            print("nothing waits for review")
            return 0
        git = Git(project.root, project.config.limits.git_timeout)
        for t in waiting:
            print(f"{t.id}  {t.title}  (iteration {t.iteration})")
            if t.base_sha:
                stat = git.diffstat(t.base_sha, branch_name(t.id)).rstrip()
                print("  " + stat.replace("\n", "\n  "))
            for e in store.events(t.id):
                if e.kind == "verified" and e.data:
                    print(f"  checks: {', '.join(f'{k}={v}' for k, v in e.data.items())[:300]}")
            print(f"  hatchctl approve {t.id}  |  hatchctl reject {t.id} --note TEXT")
    finally:
        store.close()
    return 0


# -- a feature as a whole: resolved here (state/featureops.py), sent as per-task commands -------
def _feature_tasks(project: Project, name: str) -> list[TaskRow]:
    store = project.open_store()
    try:
        return featureops.tasks_of(store.tasks(), name)
    finally:
        store.close()


def _report(
    name: str, verb: str, tasks: list[TaskRow], results: dict[str, tuple[bool, str]]
) -> int:
    """A line per task of the feature (its result, or why it was left alone); an error naming
    the tasks whose command failed."""
    print(f"feature {name}: {verb} {len(results)} of {len(tasks)} task(s)")
    for t in tasks:
        if t.id in results:
            ok, result = results[t.id]
            print(f"  {t.id}  {result if ok else 'FAILED: ' + result}")
        else:
            print(f"  {t.id}  left alone ({featureops.describe(t)})")
    failed = [t for t, (ok, _) in results.items() if not ok]
    if failed:
        raise HatchError(
            f"{verb} failed for {len(failed)} of {len(results)} task(s) of feature {name}: "
            + ", ".join(failed)
        )
    return 0


def _hold_feature(args: argparse.Namespace, verb: str) -> int:
    """Every unfinished task of the feature (unhold: and any held one)."""
    project = load_project(args)
    tasks = _feature_tasks(project, args.feature)
    ids = [t.id for t in featureops.hold_targets(tasks, verb)]
    results = send_each(project, verb, ids, wait=not args.no_wait) if ids else {}
    return _report(args.feature, verb, tasks, results)


def _approve_feature(args: argparse.Namespace) -> int:
    """Only when the whole feature is there: every task waits for review or is completed.
    The approvals are queued in dependency order (a task before those depending on it)."""
    project = load_project(args)
    tasks = _feature_tasks(project, args.feature)
    ready = featureops.readiness(tasks)
    if not ready.ready:
        raise HatchError(featureops.not_ready_line(args.feature, ready))
    ids = [t.id for t in ready.waiting]
    results = send_each(project, "approve", ids, wait=not args.no_wait)
    return _report(args.feature, "approve", tasks, results)


def _reject_feature(args: argparse.Namespace) -> int:
    """Every task of the feature that waits for review, with the same note."""
    project = load_project(args)
    tasks = _feature_tasks(project, args.feature)
    ids = [t.id for t in featureops.readiness(tasks).waiting]
    if not ids:
        raise HatchError(f"nothing in feature {args.feature} waits for review")
    results = send_each(project, "reject", ids, args={"note": args.note})
    return _report(args.feature, "reject", tasks, results)


def _review_feature(args: argparse.Namespace) -> int:
    """The feature's tasks with their state, and what those waiting for review change together."""
    from hatchctl.runtime import proc
    from hatchctl.runtime.gitrepo import git_env
    from hatchctl.state.ids import branch_name

    project = load_project(args)
    name = args.feature
    tasks = _feature_tasks(project, name)
    ready = featureops.readiness(tasks)
    print(
        f"feature {name}: {len(ready.waiting)} waiting for review, {len(ready.done)} done, "
        f"{len(ready.not_ready)} not ready"
    )
    why = {t.id: text for t, text in ready.not_ready}
    for t in tasks:
        print(f"  {t.id}  {t.title}  {why.get(t.id) or featureops.describe(t)}")
    if not ready.waiting:
        return 0
    stats = []
    for t in ready.waiting:
        if t.base_sha:
            argv = ["git", "-C", str(project.root), "diff", "--numstat", "--no-renames"]
            argv += [f"{t.base_sha}...{branch_name(t.id)}", "--"]
            out = proc.run(argv, timeout=project.config.limits.git_timeout, env=git_env())
            stats.append(out.stdout)
    waiting = ", ".join(t.id for t in ready.waiting)
    print(f"the change of the {len(ready.waiting)} task(s) waiting for review ({waiting}):")
    print("  " + "\n  ".join(featureops.combine_numstat(stats)))
    if ready.ready:
        print(
            f"  hatchctl approve --feature {name}  |  hatchctl reject --feature {name} --note TEXT"
        )
    else:
        late = ", ".join(t.id for t, _ in ready.not_ready)
        print(f"  not ready as a whole: `hatchctl approve --feature {name}` waits for {late}")
    return 0
