"""Plans: what the planner agent proposes for one feature, held until a person approves it.

A feature description is Markdown with optional front matter (``feature: NAME`` and, for the
simulated planner, ``sim:``). ``hatchctl plan FEATURE.md`` keeps everything of one plan in
``.hatch/plans/<NAME>/`` (0700): the description, the prompt, the planner's exchange directory
(its ``.stop``) and ``out/``, the only place the planner may write: one ``<ID>.md`` spec per task.

A proposal is checked as a whole with the project's specs (``check``): every file a bounded,
regular file, every spec valid, ids new, dependencies known, no cycle (spelled out), each spec
in the feature. Nothing enters the specs directory until ``approve`` (which checks again).
Nothing here imports Textual or runs an agent.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hatchctl.errors import HatchError, SpecError, SummaryError
from hatchctl.state.atomicfile import write_atomic
from hatchctl.state.ids import is_valid_task_id
from hatchctl.state.simscript import SimScript
from hatchctl.state.spec import MAX_SPEC_BYTES, copy_specs, load_front, load_specs, parse_spec
from hatchctl.state.summary import read_agent_file

MAX_FEATURE_BYTES = 48 * 1024  # the prompt holds it and goes as one argument (128 KiB max)
MAX_PLANNED_SPECS = 200
STATE_FILE = "plan.json"  # {"state": running|proposed|refused|approved|rejected, ...}


@dataclass(frozen=True)
class Feature:
    name: str
    title: str
    text: str  # the whole file, as read
    sim: SimScript | None = None


def read_feature(path: Path) -> Feature:
    """A feature description, bounded; its name from ``feature:`` or the file's stem."""
    import yaml  # only here: `hatchctl status` lists plans without parsing YAML

    try:
        text = read_agent_file(path, "feature description", MAX_FEATURE_BYTES).decode("utf-8")
    except SummaryError as exc:
        raise SpecError(str(exc)) from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"feature description {path.name} is not UTF-8 ({exc.reason})") from None
    front: dict[str, Any] = {}
    lines = text.splitlines()
    if lines and lines[0].strip() == "---":
        # unindented only: a sim block holds whole specs, their own --- indented inside it
        end = next((i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "...")), None)
        if end is None:
            raise SpecError(f"{path.name}:1: front matter is not closed with ---")
        try:
            data, _ = load_front("\n".join(lines[1:end]))
        except (yaml.YAMLError, RecursionError) as exc:
            raise SpecError(
                f"{path.name}: invalid front matter: {str(exc).splitlines()[0]}"
            ) from None
        if data is not None and not isinstance(data, dict):
            raise SpecError(f"{path.name}: front matter must be a mapping of keys to values")
        front = data or {}
    unknown = sorted(set(front) - {"feature", "title", "sim"})
    if unknown:
        raise SpecError(
            f"{path.name}: unknown front matter key {unknown[0]!r} (feature, title, sim)"
        )
    name = str(front.get("feature") or path.stem)
    if not is_valid_task_id(name):
        raise SpecError(f"{path.name}: invalid feature name {name!r} (letters, digits, . _ -)")
    sim = None
    if front.get("sim") is not None:
        try:
            sim = SimScript.model_validate(front["sim"])
        except ValueError as exc:
            raise SpecError(f"{path.name}: invalid sim block: {str(exc).splitlines()[0]}") from None
    title = str(front.get("title") or name)[:200]
    return Feature(name, title, text, sim)


class PlanDir:
    """The files of plan ``name`` under ``.hatch/plans/``."""

    def __init__(self, plans: Path, name: str) -> None:
        if not is_valid_task_id(name):
            raise HatchError(f"invalid plan name {name!r}")
        self.name = name
        self.root = plans / name

    @property
    def feature(self) -> Path:
        return self.root / "feature.md"

    @property
    def prompt(self) -> Path:
        return self.root / "prompt.md"

    @property
    def out(self) -> Path:
        return self.root / "out"

    @property
    def io(self) -> Path:
        return self.root / "io"

    @property
    def stop(self) -> Path:
        return self.io / "planner.stop"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def log(self) -> Path:
        return self.root / "planner.log"

    def create(self, feature_text: str) -> None:
        self.root.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root.mkdir(mode=0o700)  # FileExistsError: a plan of this name exists
        for d in (self.out, self.io, self.runs):
            d.mkdir(mode=0o700)
        write_atomic(self.feature, feature_text.encode())

    def state(self) -> dict[str, Any]:
        try:
            doc = json.loads(read_agent_file(self.root / STATE_FILE, "plan state", 1 << 20))
        except (SummaryError, ValueError):
            return {"state": "unknown"}
        return doc if isinstance(doc, dict) else {"state": "unknown"}

    def set_state(self, state: str, **data: Any) -> None:
        doc = json.dumps({"state": state, **data}, indent=1)
        write_atomic(self.root / STATE_FILE, doc.encode())

    def discard(self) -> None:
        shutil.rmtree(self.root)


def plan_dirs(plans: Path) -> list[PlanDir]:
    if not plans.is_dir():
        return []
    return [
        PlanDir(plans, p.name)
        for p in sorted(plans.iterdir())
        if p.is_dir() and not p.is_symlink() and is_valid_task_id(p.name)
    ]


@dataclass
class Proposal:
    """The specs a planner wrote, as checked: ``specs`` (id -> text) and every problem."""

    specs: dict[str, str] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    depends: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.specs)


def _with_feature(text: str, feature: str) -> str:
    """The spec with ``feature: NAME`` added to its front matter when it has none."""
    lines = text.splitlines(keepends=True)
    return "".join([lines[0], f"feature: {feature}\n", *lines[1:]])


def check(out: Path, specs_dir: Path, feature: str) -> Proposal:
    """Read every ``*.md`` the planner wrote in ``out`` and check them with the project's
    specs. Files other than ``*.md`` are ignored; links, FIFOs, huge files are problems."""
    prop = Proposal()
    names = sorted(p for p in out.iterdir() if p.suffix == ".md") if out.is_dir() else []
    if len(names) > MAX_PLANNED_SPECS:
        prop.problems.append(f"{len(names)} specs: at most {MAX_PLANNED_SPECS} per plan")
        return prop
    if not names:
        prop.problems.append("the planner wrote no spec (*.md) in its output directory")
        return prop
    texts: dict[str, str] = {}
    for path in names:
        try:
            text = read_agent_file(path, "spec", MAX_SPEC_BYTES).decode("utf-8")
        except SummaryError as exc:
            prop.problems.append(f"{path.name}: cannot read: {str(exc).removeprefix('spec ')}")
            continue
        except UnicodeDecodeError:
            prop.problems.append(f"{path.name}: not UTF-8")
            continue
        parsed = parse_spec(text, Path(path.name))
        if parsed.spec is None:
            prop.problems.extend(parsed.problems)
            continue
        spec = parsed.spec
        if spec.feature is None:
            text = _with_feature(text, feature)
        elif spec.feature != feature:
            prop.problems.append(f"{path.name}: feature {spec.feature!r} is not {feature!r}")
            continue
        if path.name != f"{spec.id}.md":
            prop.problems.append(f"{path.name}: a spec's file is named after its id ({spec.id}.md)")
            continue
        texts[spec.id] = text
        prop.titles[spec.id] = spec.title
        prop.depends[spec.id] = list(spec.depends_on)
    if prop.problems:
        return prop
    prop.problems = _with_project(texts, specs_dir)
    prop.specs = texts
    return prop


def _with_project(texts: dict[str, str], specs_dir: Path) -> list[str]:
    """The problems the planned specs bring to the project's spec set (ids taken, unknown
    dependencies, cycles), found by loading a copy of the specs with them added."""
    with tempfile.TemporaryDirectory(prefix="hatch-plan-") as tmp:
        copy = Path(tmp)
        copy_specs(specs_dir, copy)
        before = load_specs(copy)
        existing = set(before.specs)
        problems = [
            f"{tid}.md: id {tid} is taken by an existing spec" for tid in texts if tid in existing
        ]
        problems += [
            f"{tid}.md: a file {tid}.md exists in the specs directory"
            for tid in texts
            if tid not in existing and os.path.lexists(specs_dir / f"{tid}.md")
        ]
        if problems:
            return problems
        for tid, text in texts.items():
            (copy / f"{tid}.md").write_text(text, encoding="utf-8")
        after = load_specs(copy)
    old = set(before.problems)
    return [p.replace(str(copy) + "/", "", 1) for p in after.problems if p not in old]
