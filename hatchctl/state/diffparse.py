"""Unified diff text (``git diff --stat --patch``) parsed into files and hunks, and a hunk's lines
paired into side-by-side rows. Pure: no I/O, no Textual. The text comes from an agent's branch,
so the parser is bounded (``max_files``, ``max_lines``: past either it stops and says why in
``Diff.truncated``) and never raises: what it does not understand it skips (the ``--stat``
preamble, combined-diff hunks, stray lines)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import zip_longest

MAX_FILES = 2000
MAX_LINES = 200_000

_HUNK = re.compile(r"@@ -(\d{1,18})(?:,(\d{1,18}))? \+(\d{1,18})(?:,(\d{1,18}))? @@ ?(.*)", re.S)
_SGR = re.compile(r"\x1b\[[0-9;]*m")  # color.diff=always in someone's config
_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


@dataclass(frozen=True, slots=True)
class DiffLine:
    """One line of a hunk: ``kind`` is ``" "`` (context), ``"+"`` or ``"-"``; ``old``/``new``
    its line number on each side (``None`` on the side it is not on); ``no_newline``: the file
    ends with this line and no newline (``\\ No newline at end of file``)."""

    kind: str
    text: str
    old: int | None
    new: int | None
    no_newline: bool = False


@dataclass(slots=True)
class Hunk:
    header: str  # the whole ``@@ -a,b +c,d @@ section`` line
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    section: str  # what git put after the second ``@@`` (the enclosing function), may be ""
    lines: list[DiffLine] = field(default_factory=list)


@dataclass(slots=True)
class FileDiff:
    """One file of the diff. ``status``: ``added``, ``deleted``, ``renamed``, ``copied``,
    ``modified``, or ``binary`` (a binary file modified in place; an added, deleted or renamed
    binary file keeps that status and has ``binary`` set). ``truncated``: the parse stopped in
    this file, so its hunks and counts are partial."""

    old_path: str | None
    new_path: str | None
    status: str = "modified"
    added: int = 0
    removed: int = 0
    hunks: list[Hunk] = field(default_factory=list)
    binary: bool = False
    old_mode: str = ""
    new_mode: str = ""
    similarity: int | None = None
    truncated: bool = False

    @property
    def path(self) -> str:
        return self.new_path or self.old_path or "(unnamed)"

    @property
    def line_count(self) -> int:
        return sum(len(h.lines) for h in self.hunks)


@dataclass(slots=True)
class Diff:
    files: list[FileDiff] = field(default_factory=list)
    truncated: str = ""  # why the parse stopped before the end, "" when it read everything
    lines: int = 0  # hunk lines kept, over all files

    @property
    def added(self) -> int:
        return sum(f.added for f in self.files)

    @property
    def removed(self) -> int:
        return sum(f.removed for f in self.files)


def unquote(name: str) -> str:
    """A path as git prints it: C-quoted (``"a\\tb\\303\\251"``) when it has special bytes."""
    if len(name) < 2 or not (name.startswith('"') and name.endswith('"')):
        return name
    out = bytearray()
    body, i = name[1:-1], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\" or i + 1 >= len(body):
            out += ch.encode("utf-8", "surrogatepass")
            i += 1
            continue
        nxt = body[i + 1]
        octal = body[i + 1 : i + 4]
        if len(octal) == 3 and all(c in "01234567" for c in octal):
            out.append(int(octal, 8) & 0xFF)
            i += 4
        else:
            out += (
                bytes([_ESCAPES[nxt]]) if nxt in _ESCAPES else nxt.encode("utf-8", "surrogatepass")
            )
            i += 2
    return out.decode("utf-8", "replace")


def _side_path(value: str, prefix: str) -> str | None:
    """The path of a ``---``/``+++`` line's value, or None for /dev/null."""
    if not value.startswith('"'):
        value = value.split("\t", 1)[0]  # git adds a tab after a name with a space
    value = unquote(value.rstrip("\t"))
    if value == "/dev/null":
        return None
    return value[len(prefix) :] if value.startswith(prefix) else value


def _git_paths(rest: str) -> tuple[str | None, str | None]:
    """The two paths of ``diff --git a/X b/Y`` (best effort: unquoted paths with spaces are
    ambiguous; the ``---``, ``+++`` and ``rename`` lines that follow win)."""
    if rest.startswith('"'):
        end = rest.find('"', 1)
        while end > 0 and rest[end - 1] == "\\":
            end = rest.find('"', end + 1)
        if end < 0:
            return None, None
        return _side_path(rest[: end + 1], "a/"), _side_path(rest[end + 1 :].lstrip(" "), "b/")
    if rest.endswith('"') and ' "' in rest:
        old, _, new = rest.rpartition(' "')
        return _side_path(old, "a/"), _side_path('"' + new, "b/")
    half = (len(rest) - 1) // 2
    if len(rest) % 2 == 1 and rest[half] == " " and rest[2:half] == rest[half + 3 :]:
        return _side_path(rest[:half], "a/"), _side_path(rest[half + 1 :], "b/")
    old, sep, new = rest.rpartition(" b/")
    return (_side_path(old, "a/"), new) if sep else (None, None)


def _header(f: FileDiff, line: str) -> None:
    """A line between ``diff --git`` and the first hunk."""
    if line.startswith("--- "):
        f.old_path = _side_path(line[4:], "a/")
        if f.old_path is None:
            f.status = "added"
    elif line.startswith("+++ "):
        f.new_path = _side_path(line[4:], "b/")
        if f.new_path is None:
            f.status = "deleted"
    elif line.startswith("new file mode "):
        f.status, f.new_mode, f.old_path = "added", line[14:], None
    elif line.startswith("deleted file mode "):
        f.status, f.old_mode, f.new_path = "deleted", line[18:], None
    elif line.startswith("old mode "):
        f.old_mode = line[9:]
    elif line.startswith("new mode "):
        f.new_mode = line[9:]
    elif line.startswith(("rename from ", "copy from ")):
        f.status = "renamed" if line.startswith("rename") else "copied"
        f.old_path = unquote(line.partition(" from ")[2])
    elif line.startswith(("rename to ", "copy to ")):
        f.new_path = unquote(line.partition(" to ")[2])
    elif line.startswith("similarity index "):
        digits = line[17:].rstrip("%")
        f.similarity = int(digits) if digits.isdigit() and len(digits) < 4 else None
    elif line.startswith("Binary files ") or line == "GIT binary patch":
        f.binary = True


def parse_diff(
    text: str, *, max_files: int = MAX_FILES, max_lines: int = MAX_LINES, cut: str = ""
) -> Diff:
    """Every file of ``text``, in order; never raises. ``max_lines`` counts hunk lines. ``cut``:
    why ``text`` is known to stop early (read up to a size limit), "" when it is whole."""
    diff = Diff()
    if "\x1b[" in text:
        text = _SGR.sub("", text)
    rows = text.split("\n")
    if rows and rows[-1] == "":
        rows.pop()
    cur: FileDiff | None = None
    hunk: Hunk | None = None
    old_left = new_left = old_no = new_no = 0
    for i, row in enumerate(rows):
        if hunk is not None and (old_left > 0 or new_left > 0):
            kind = row[:1] or " "  # an empty line: a context line whose space was stripped
            if kind == "\\":
                _no_newline(hunk)
                continue
            if kind in " +-":
                if diff.lines >= max_lines:
                    diff.truncated = f"more than {max_lines} lines: the rest is not shown"
                    if cur is not None:
                        cur.truncated = True
                    break
                old = old_no if kind != "+" else None
                new = new_no if kind != "-" else None
                hunk.lines.append(DiffLine(kind, row[1:], old, new))
                diff.lines += 1
                if kind != "+":
                    old_no, old_left = old_no + 1, old_left - 1
                if kind != "-":
                    new_no, new_left = new_no + 1, new_left - 1
                if cur is not None:
                    cur.added += kind == "+"
                    cur.removed += kind == "-"
                continue
            old_left = new_left = 0  # a hunk shorter than its header said: it ends here
        if row.startswith("\\") and hunk is not None:
            _no_newline(hunk)
            continue
        plain = (  # a plain `diff -u` file: `---` then `+++`, no `diff --git` line
            row.startswith("--- ")
            and i + 1 < len(rows)
            and rows[i + 1].startswith("+++ ")
            and (cur is None or bool(cur.hunks) or cur.binary)
        )
        if row.startswith("diff --git ") or plain:
            if len(diff.files) >= max_files:
                diff.truncated = f"more than {max_files} files: the rest are not shown"
                break
            old_path, new_path = _git_paths(row[11:]) if not plain else (None, None)
            cur, hunk = FileDiff(old_path, new_path), None
            diff.files.append(cur)
            if plain:
                _header(cur, row)
            continue
        if row.startswith("@@ "):
            match = _HUNK.fullmatch(row)
            if match is None:  # a combined diff's `@@@`, or garbage: not a hunk we can show
                hunk, old_left, new_left = None, 0, 0
                continue
            if cur is None:
                if len(diff.files) >= max_files:
                    diff.truncated = f"more than {max_files} files: the rest are not shown"
                    break
                cur = FileDiff(None, None)
                diff.files.append(cur)
            a, b, c, d, section = match.groups()
            old_no, old_left = int(a), int(b) if b is not None else 1
            new_no, new_left = int(c), int(d) if d is not None else 1
            hunk = Hunk(row, old_no, old_left, new_no, new_left, section)
            cur.hunks.append(hunk)
            continue
        if cur is not None and not cur.hunks:
            _header(cur, row)
    for f in diff.files:
        if f.binary and f.status == "modified":
            f.status = "binary"
    if cut and not diff.truncated:
        diff.truncated = cut
        if diff.files:
            diff.files[-1].truncated = True
    return diff


def _no_newline(hunk: Hunk) -> None:
    if hunk.lines:
        last = hunk.lines[-1]
        hunk.lines[-1] = DiffLine(last.kind, last.text, last.old, last.new, True)


Row = tuple[DiffLine | None, DiffLine | None]


def pair_rows(lines: list[DiffLine]) -> list[Row]:
    """A hunk's lines as side-by-side rows (old on the left, new on the right): a context line
    on both sides; a run of removed lines and the run of added lines right after it paired row
    by row, the shorter run padded with None; a lone run against None."""
    rows: list[Row] = []
    removed: list[DiffLine] = []
    added: list[DiffLine] = []

    def flush() -> None:
        rows.extend(zip_longest(removed, added))
        removed.clear()
        added.clear()

    for line in lines:
        if line.kind == "-":
            if added:
                flush()
            removed.append(line)
        elif line.kind == "+":
            added.append(line)
        else:
            flush()
            rows.append((line, line))
    flush()
    return rows
