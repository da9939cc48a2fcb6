"""Tasks written from the control room (`n`, `e`): a new spec's text from the form, the editor's
argv, validation of the edited text with the whole spec set (a temporary copy of the specs dir
with the new text in it: unknown dependencies, duplicate ids and cycles are caught) and the
atomic write of an accepted spec (temp + rename, 0600, never through a symbolic link). A running
supervisor picks the file up by itself. Nothing here imports Textual."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import structlog
import yaml

from hatchctl.errors import SpecError, SummaryError
from hatchctl.state.ids import is_valid_task_id
from hatchctl.state.spec import MAX_SPEC_BYTES, copy_specs, load_specs, parse_spec
from hatchctl.state.summary import read_agent_file

log = structlog.get_logger(__name__)

BODY_HINT = "Describe the task: what to build, where, and how to tell it is done.\n"


def editor_argv(path: Path, env: dict[str, str] | None = None) -> list[str]:
    """``$VISUAL``, else ``$EDITOR`` (split like a shell would, never run by one), else vi."""
    env = dict(os.environ) if env is None else env
    command = env.get("VISUAL") or env.get("EDITOR") or "vi"
    try:
        argv = shlex.split(command)
    except ValueError:
        argv = [command]
    return [*(argv or ["vi"]), str(path)]


def split_ids(text: str) -> list[str]:
    """``"A-1, B-2"`` -> ``["A-1", "B-2"]``."""
    return [part.strip() for part in text.replace(",", " ").split() if part.strip()]


def form_problems(task_id: str, title: str, depends: str, taken: set[str]) -> list[str]:
    """What is wrong with the form before the editor opens (the whole spec is checked after)."""
    problems = []
    if not is_valid_task_id(task_id):
        problems.append(f"invalid id {task_id!r}")
    elif task_id in taken:
        problems.append(f"{task_id} exists")
    if not title.strip():
        problems.append("a title is needed")
    bad = [d for d in split_ids(depends) if not is_valid_task_id(d)]
    if bad:
        problems.append(f"invalid dependency id {bad[0]!r}")
    return problems


def new_spec_text(
    task_id: str, title: str, depends: str, acceptance: str, feature: str, body: str = BODY_HINT
) -> str:
    """The spec a new task starts from: front matter from the form, then a body to write."""
    front: dict[str, object] = {"id": task_id, "title": title.strip()}
    if deps := split_ids(depends):
        front["depends_on"] = deps
    if acceptance.strip():
        front["acceptance"] = acceptance.strip()
    if feature.strip():
        front["feature"] = feature.strip()
    dumped = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{dumped}---\n{body}"


@dataclass
class Checked:
    """An edited spec, validated: its id and the problems it brings to the set (none: ok)."""

    task_id: str | None
    problems: list[str] = field(default_factory=list)
    existing: int = 0  # problems the set had before this change (not this change's fault)


def read_spec(path: Path) -> str:
    """A spec file's text, bounded and never through a symbolic link."""
    try:
        return read_agent_file(path, "spec", MAX_SPEC_BYTES).decode("utf-8")
    except SummaryError as exc:
        raise SpecError(str(exc)) from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"spec {path.name} is not UTF-8 ({exc.reason})") from None


def check(
    specs_dir: Path, shown: str, text: str, *, name: str, new: bool, keep_id: str | None = None
) -> Checked:
    """Validate ``text`` as a new spec (``new``: named after its id, which must be free) or as
    the new content of the spec file ``name`` (whose id stays ``keep_id``): ``parse_spec``, then
    ``load_specs`` on a copy of the specs dir with it, reporting only the problems it adds to the
    set. Paths read as ``shown`` (the specs dir as the user knows it)."""
    parsed = parse_spec(text, Path(shown) / name)
    if parsed.spec is None:
        return Checked(None, parsed.problems)
    task_id = parsed.spec.id
    if new:
        name = f"{task_id}.md"
    elif keep_id is not None and task_id != keep_id:
        return Checked(task_id, [f"{shown}/{name}: the id cannot change ({keep_id} -> {task_id})"])
    with tempfile.TemporaryDirectory(prefix="hatch-spec-") as tmp:
        copy = Path(tmp)
        copy_specs(specs_dir, copy)
        if new and (os.path.lexists(specs_dir / name) or (copy / name).exists()):
            return Checked(task_id, [f"{shown}/{name} exists: {task_id} is taken"])
        before = load_specs(copy).problems
        (copy / name).write_text(text, encoding="utf-8")
        after = load_specs(copy).problems
    old = set(before)
    added = [p.replace(str(copy), shown, 1) for p in after if p not in old]
    return Checked(task_id, added, len(before))


def _write_temp(directory: Path, name: str, text: str) -> Path:
    tmp = directory / f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"  # not *.md: unwatched
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_new(specs_dir: Path, task_id: str, text: str) -> Path:
    """``specs/<ID>.md``, created atomically and only if no file (or link) has that name."""
    target = specs_dir / f"{task_id}.md"
    if specs_dir.is_symlink() or not specs_dir.is_dir():
        raise SpecError(f"{specs_dir} is not a directory")
    tmp = _write_temp(specs_dir, target.name, text)
    try:
        os.link(tmp, target, follow_symlinks=False)  # fails if the name exists, link or not
    except FileExistsError:
        raise SpecError(f"{target.name} exists: {task_id} is taken") from None
    except OSError as exc:
        raise SpecError(f"cannot write {target.name}: {exc.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
    log.info("spec_created", task_id=task_id, path=str(target))
    return target


def replace_spec(path: Path, text: str, was: str) -> None:
    """The spec file's new text, renamed over it (a link at its name is replaced, never
    followed), only if the file still holds ``was``."""
    if path.is_symlink():
        raise SpecError(f"{path.name} is a symbolic link (not followed)")
    if read_spec(path) != was:
        raise SpecError(f"{path.name} changed while it was edited: nothing written")
    tmp = _write_temp(path.parent, path.name, text)
    try:
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SpecError(f"cannot write {path.name}: {exc.strerror}") from None
    log.info("spec_edited", path=str(path))


def spec_file(root: Path, specs_dir: Path, spec_path: str) -> Path:
    """A task's spec file: directly in the specs dir and not a symbolic link."""
    path = root / spec_path
    if path.parent.resolve() != specs_dir.resolve() or path.suffix != ".md":
        raise SpecError(f"{spec_path} is not a spec file in {specs_dir}")
    if path.is_symlink():
        raise SpecError(f"{path.name} is a symbolic link (not followed)")
    return path


class Draft:
    """The private temporary file the editor works on (removed by ``close``)."""

    def __init__(self, name: str, text: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="hatch-edit-"))  # 0700
        self.path = _write_temp(self.dir, name, text)
        final = self.dir / name
        os.replace(self.path, final)
        self.path = final

    def text(self) -> str:
        return read_spec(self.path)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            shutil.rmtree(self.dir)
