"""Task specs: Markdown with YAML front matter, parsed with the line of every problem."""

from __future__ import annotations

import functools
import hashlib
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hatchctl.errors import SummaryError
from hatchctl.state.durations import parse_duration
from hatchctl.state.ids import TASK_ID_PATTERN, is_valid_task_id
from hatchctl.state.simscript import SimScript
from hatchctl.state.simsteps import LOC_CAP
from hatchctl.state.summary import read_agent_file

if TYPE_CHECKING:
    import yaml

# bounds: a spec is read by hatchctl and handed to an agent (as one argument by default, which
# Linux caps at 128 KiB: MAX_ARG_STRLEN), so sizes are checked when it is validated
MAX_SPEC_BYTES = 256 * 1024
MAX_BODY_BYTES = 96 * 1024
MAX_TITLE = 200
MAX_ITEMS = 1000


class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str = Field(min_length=1, max_length=MAX_TITLE)
    depends_on: list[str] = Field(default_factory=list, max_length=MAX_ITEMS)
    priority: int = Field(default=50, ge=-1_000_000, le=1_000_000)
    files: list[str] = Field(default_factory=list, max_length=MAX_ITEMS)
    acceptance: str | list[str] | None = None
    tdd: bool = False
    loc_cap: int | None = Field(default=LOC_CAP, ge=1, le=10_000_000)
    timeout: float | None = None
    review: Literal["human", "none"] | None = None  # None: the project's [project] review
    # groups tasks: status and the control room roll each feature up
    feature: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
    sim: SimScript | None = None
    # placement: only on hosts carrying every one of these labels ([hosts.NAME] labels)
    host_labels: list[str] = Field(default_factory=list, max_length=32)
    # filled by the loader, not by the front matter
    body: str = Field(default="", max_length=MAX_BODY_BYTES)
    path: str = ""
    digest: str = ""

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not is_valid_task_id(v):
            raise ValueError(f"invalid id {v!r}: must match {TASK_ID_PATTERN}")
        return v

    @field_validator("depends_on")
    @classmethod
    def _deps(cls, v: list[str]) -> list[str]:
        for dep in v:
            if not is_valid_task_id(dep):
                raise ValueError(f"invalid dependency id {dep!r}")
        return v

    @field_validator("files")
    @classmethod
    def _files(cls, v: list[str]) -> list[str]:
        for f in v:
            p = PurePosixPath(f)
            if not f or p.is_absolute() or ".." in p.parts:
                raise ValueError(f"file {f!r} must be a relative path inside the repository")
        return v

    @field_validator("host_labels")
    @classmethod
    def _host_labels(cls, v: list[str]) -> list[str]:
        from hatchctl.config import check_labels

        return check_labels(v, "host label")

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, v: object) -> float | None:
        return None if v is None else parse_duration(v)

    @field_validator("acceptance")
    @classmethod
    def _acceptance(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, str):
            try:
                if not shlex.split(v):
                    raise ValueError("acceptance command is empty")
            except ValueError as exc:
                raise ValueError(f"acceptance command cannot be parsed: {exc}") from None
        elif isinstance(v, list) and not v:
            raise ValueError("acceptance command is empty")
        return v

    def acceptance_argv(self) -> list[str] | None:
        """The acceptance command as an argv list (never run through a shell)."""
        if self.acceptance is None:
            return None
        if isinstance(self.acceptance, list):
            return list(self.acceptance)
        return shlex.split(self.acceptance)


@dataclass
class SpecParse:
    spec: TaskSpec | None
    problems: list[str] = field(default_factory=list)
    key_lines: dict[str, int] = field(default_factory=dict)
    id_line: int = 1


@functools.cache
def _unique_key_loader() -> Any:
    """The loader class, made at the first spec parsed: PyYAML is imported then (a command
    that parses no spec, such as `hatchctl status` with unchanged specs, never imports it)."""
    import yaml

    # libyaml's parser where PyYAML has it (10x faster at thousands of specs); same safe constructor
    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class _UniqueKeyLoader(base):  # type: ignore[misc]
        """SafeLoader that refuses a key given twice in one mapping (YAML would keep the last)."""

        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if isinstance(key, str | int | float | bool) and key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key '{key}'", key_node.start_mark
                    )
                seen.add(key)
            mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
            return mapping

    return _UniqueKeyLoader


def _load(text: str) -> tuple[Any, yaml.Node | None]:
    """The front matter's value and its node (for key lines), parsed once."""
    loader = _unique_key_loader()(text)
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    finally:
        loader.dispose()


load_front = _load  # for other front matter (a feature description): unique keys, bounded


def _key_lines(node: yaml.Node | None, offset: int) -> dict[str, int]:
    """Line (1-based, in the whole file) of each top-level key of the front matter."""
    import yaml

    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                lines[str(key_node.value)] = key_node.start_mark.line + 1 + offset
    return lines


def spec_digest(data: bytes) -> str:
    """What identifies a spec file's content (stored per task; `status` compares it)."""
    return hashlib.sha256(data).hexdigest()[:16]


def parse_spec(text: str, path: Path) -> SpecParse:
    """Parse one spec. Never raises for bad content: problems are returned as ``file:line: msg``."""
    import yaml  # loaded by _load's first call (a dict lookup afterwards)

    name = str(path)
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return SpecParse(
            None, [f"{name}:1: missing YAML front matter (the file must start with ---)"]
        )
    end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
    if end is None:
        return SpecParse(None, [f"{name}:1: front matter is not closed with ---"])
    front = "\n".join(lines[1:end])
    body = "\n".join(lines[end + 1 :]).strip()
    try:
        data, node = _load(front)
    except RecursionError:
        return SpecParse(None, [f"{name}:2: invalid YAML: nested too deeply"])
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = (mark.line + 2) if mark is not None else 2
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return SpecParse(None, [f"{name}:{line}: invalid YAML: {problem}"])
    if not isinstance(data, dict):
        return SpecParse(None, [f"{name}:2: front matter must be a mapping of keys to values"])
    key_lines = _key_lines(node, offset=1)
    digest = spec_digest(text.encode())
    try:
        spec = TaskSpec.model_validate({**data, "body": body, "path": name, "digest": digest})
    except ValidationError as exc:
        problems = []
        reported: set[str] = set()
        for err in exc.errors():
            key = str(err["loc"][0]) if err["loc"] else ""
            if key in reported and err["type"] not in ("extra_forbidden", "missing"):
                continue  # one problem per key: a union reports every branch otherwise
            reported.add(key)
            line = key_lines.get(key, 1)
            if err["type"] == "extra_forbidden":
                msg = f"unknown key '{key}'"
            elif err["type"] == "missing":
                msg = f"missing required key '{key}'"
            else:
                # drop pydantic's union-branch tags such as "literal['ok',...]" from the location
                parts = [str(p) for p in err["loc"] if "[" not in str(p)]
                msg = f"{'.'.join(parts)}: {err['msg'].removeprefix('Value error, ')}"
            problems.append(f"{name}:{line}: {msg}")
        return SpecParse(None, problems, key_lines)
    return SpecParse(spec, [], key_lines, key_lines.get("id", 1))


@dataclass
class SpecSet:
    specs: dict[str, TaskSpec]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def find_cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Every elementary cycle found by DFS, each once, as ``[A, B, C, A]``."""
    cycles: list[list[str]] = []
    seen_keys: set[frozenset[str]] = set()
    color: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        color[node] = 1
        stack.append(node)
        for dep in graph.get(node, []):
            if dep not in graph:
                continue
            if color.get(dep, 0) == 0:
                visit(dep)
            elif color.get(dep) == 1:
                cycle = [*stack[stack.index(dep) :], dep]
                key = frozenset(cycle)
                if key not in seen_keys:
                    seen_keys.add(key)
                    cycles.append(cycle)
        stack.pop()
        color[node] = 2

    for node in sorted(graph):
        if color.get(node, 0) == 0:
            visit(node)
    return cycles


def copy_specs(specs_dir: Path, into: Path) -> None:
    """The readable ``*.md`` specs, copied into ``into`` to be checked with a change (bounded
    reads; links, FIFOs and unreadable files are left out: they are problems of the set as it
    is, not of the change)."""
    for path in sorted(specs_dir.glob("*.md")):
        try:
            data = read_agent_file(path, "spec", MAX_SPEC_BYTES)
        except SummaryError:
            continue
        (into / path.name).write_bytes(data)


def load_specs(specs_dir: Path) -> SpecSet:
    """Load every ``*.md`` spec under ``specs_dir`` and report every problem at once."""
    problems: list[str] = []
    specs: dict[str, TaskSpec] = {}
    parsed: dict[str, SpecParse] = {}
    if not specs_dir.is_dir():
        return SpecSet({}, [f"{specs_dir}: specs directory does not exist"])
    for path in sorted(specs_dir.glob("*.md")):
        try:  # a FIFO, a link to /dev/zero or a huge file must not hang or exhaust anything
            text = read_agent_file(path, "spec", MAX_SPEC_BYTES).decode("utf-8")
        except SummaryError as exc:
            problems.append(f"{path}:1: cannot read: {str(exc).removeprefix('spec ')}")
            continue
        except UnicodeDecodeError as exc:
            problems.append(f"{path}:1: cannot read: not UTF-8 ({exc.reason})")
            continue
        result = parse_spec(text, path)
        problems.extend(result.problems)
        if result.spec is None:
            continue
        spec = result.spec
        if spec.id in specs:
            problems.append(
                f"{path}:{result.id_line}: duplicate id '{spec.id}' (also in {specs[spec.id].path})"
            )
            continue
        specs[spec.id] = spec
        parsed[spec.id] = result
    for spec in specs.values():
        line = parsed[spec.id].key_lines.get("depends_on", 1)
        for dep in spec.depends_on:
            if dep not in specs:
                problems.append(f"{spec.path}:{line}: unknown dependency '{dep}'")
            elif dep == spec.id:
                problems.append(f"{spec.path}:{line}: task depends on itself")
    graph = {sid: [d for d in s.depends_on if d != sid] for sid, s in specs.items()}
    for cycle in find_cycles(graph):
        first = specs[cycle[0]]
        line = parsed[first.id].key_lines.get("depends_on", 1)
        problems.append(f"{first.path}:{line}: dependency cycle: {' -> '.join(cycle)}")
    return SpecSet(specs, problems)
