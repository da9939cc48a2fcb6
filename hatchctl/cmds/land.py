"""``hatchctl land``: bring the integration branch's work into the base branch (or push it to
a remote branch), after a preview of exactly what will land."""

from __future__ import annotations

import argparse
import re

from hatchctl.cmds.common import load_project
from hatchctl.errors import CommandError, HatchError, ScriptError
from hatchctl.project import Project
from hatchctl.runtime.gitrepo import Git
from hatchctl.runtime.scripts import Scripts, scripts_root

MERGE_SUBJECT = re.compile(r"^hatch: merge hatch/(\S+)$")


def _base_branch(project: Project, git: Git) -> str:
    base = project.config.project.base_ref
    if base == "HEAD":
        head = git.symbolic_head()
        if head is None:
            raise HatchError("base_ref is HEAD and HEAD is detached: check out a branch to land on")
        return head.removeprefix("refs/heads/")
    if base.startswith("refs/heads/"):
        return base.removeprefix("refs/heads/")
    try:
        git.rev_parse(f"refs/heads/{base}")
    except CommandError:
        raise HatchError(
            f"base_ref {base!r} is not a local branch: land with --branch NAME instead"
        ) from None
    return base


def preview(git: Git, base: str, tip: str) -> tuple[list[str], list[str], str]:
    """(tasks merged, commits, diffstat) that landing ``tip`` on ``base`` brings."""
    commits = git.log_oneline(f"refs/heads/{base}..{tip}", limit=10_000)
    tasks = []
    for line in commits:
        subject = line.split(" ", 1)[1] if " " in line else ""
        m = MERGE_SUBJECT.match(subject)
        if m and m.group(1) not in tasks:
            tasks.append(m.group(1))
    return sorted(tasks), commits, git.diffstat(f"refs/heads/{base}", tip)


def land(args: argparse.Namespace) -> int:
    project = load_project(args)
    cfg = project.config
    git = Git(project.root, cfg.limits.git_timeout)
    integ = cfg.project.integration_branch
    try:
        tip = git.rev_parse(f"refs/heads/{integ}")
    except CommandError:
        raise HatchError(f"nothing to land: there is no {integ} branch yet") from None
    base = args.branch or _base_branch(project, git)
    target = f"{args.remote} {args.branch}" if args.branch else base
    if args.branch:
        tasks: list[str] = []
        commits, stat = git.log_oneline(tip, limit=10_000), ""
    else:
        tasks, commits, stat = preview(git, base, tip)
        if not commits:
            print(f"nothing to land: {base} already has everything on {integ} ({tip[:12]})")
            return 0
    print(f"landing {integ} ({tip[:12]}) on {target}:")
    if tasks:
        print(f"  tasks: {', '.join(tasks)}")
    print(f"  commits: {len(commits)}")
    for line in commits[:20]:
        print(f"    {line}")
    if len(commits) > 20:
        print(f"    ... and {len(commits) - 20} more")
    if stat:
        print("  " + stat.rstrip().replace("\n", "\n  "))
    if args.dry_run:
        print("(--dry-run: nothing changed)")
        return 0
    root = scripts_root(project.root / cfg.project.scripts_dir if cfg.project.scripts_dir else None)
    scripts = Scripts(root, timeout=cfg.limits.script_timeout)
    try:
        if args.branch:
            out = scripts.run(
                "git/push_branch.sh", str(project.root), args.remote, tip, args.branch
            )
        else:
            out = scripts.run("git/land.sh", str(project.root), base, tip)
    except ScriptError as exc:
        last = [ln for ln in exc.output.strip().splitlines() if ln.strip()]
        why = last[-1].split(": ", 1)[-1] if last else str(exc)
        raise HatchError(f"land refused: {why}") from None
    print(out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "landed")
    return 0
