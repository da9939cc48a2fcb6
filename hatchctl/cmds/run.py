"""``hatchctl run`` and ``hatchctl demo``."""

from __future__ import annotations

import argparse
from pathlib import Path

from hatchctl.cmds.common import load_project
from hatchctl.demo import EXPECTED, write_demo
from hatchctl.errors import HatchError, SpecError


def _print_queue(project_dir: Path) -> None:
    ns = argparse.Namespace(directory=project_dir)
    project = load_project(ns)
    specs = project.load_specs()
    if specs.problems:
        raise SpecError(f"demo specs are invalid: {specs.problems[0]}", specs.problems)
    print(f"demo project: {project.root}")
    print(f"{'ID':<10} {'PRIO':>4}  {'DEPENDS ON':<12} {'EXPECTED':<10} TITLE")
    for spec in sorted(specs.specs.values(), key=lambda s: (-s.priority, s.id)):
        deps = ",".join(spec.depends_on) or "-"
        print(
            f"{spec.id:<10} {spec.priority:>4}  {deps:<12} {EXPECTED.get(spec.id, '?'):<10} {spec.title}"
        )


def demo(args: argparse.Namespace) -> int:
    root = (args.dir or Path("demo-project")).resolve()
    if not args.keep or not (root / "hatch.toml").exists():
        write_demo(root)
    _print_queue(root)
    return 0


def run(args: argparse.Namespace) -> int:
    raise HatchError("the supervisor is not implemented yet")
