"""The drill-down's Diff tab: the branch's files (status, +N -M) over the selected file's diff,
unified or side by side (`v`), its code highlighted by a Pygments lexer guessed from the file's
name, `[` / `]` for the previous / next file. It shows a parsed ``Diff`` (``state.diffparse``)
and never runs git. Only the selected file is turned into rows (at most ``MAX_ROWS``, then a
"… N more lines" row), and only the rows on screen are drawn, so a large diff does not freeze
the UI. The text is an agent's: control and bidi characters are shown as symbols, never sent to
the terminal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import PurePosixPath

from pygments.lexer import Lexer  # type: ignore[import-untyped]
from pygments.lexers import get_lexer_for_filename  # type: ignore[import-untyped]
from pygments.util import ClassNotFound  # type: ignore[import-untyped]
from rich.segment import Segment
from rich.style import Style
from rich.syntax import PygmentsSyntaxTheme
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.cache import LRUCache
from textual.containers import Vertical
from textual.events import Resize
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from hatchctl.state.diffparse import Diff, DiffLine, FileDiff, pair_rows

MAX_ROWS = 4000  # rows of one file's diff that are drawn; the rest: one "… N more lines" row
SYNC_LINES = 300  # a file with more lines is shown plain at once, then highlighted in a thread
MAX_CHARS = 1000  # characters of one line that are shown
TAB = 4
REMOVED = Style(bgcolor="#4a1c1f")
ADDED = Style(bgcolor="#183d22")
GUTTER = Style(color="#8a8a8a")
SIGNS = {"-": Style(color="#ff7b72", bold=True), "+": Style(color="#56d364", bold=True)}
FILLS = {"-": REMOVED, "+": ADDED}
PLAIN = Style()
HUNK = Style(color="#79c0ff", bgcolor="#161b22")
NOTE = Style(color="#8a8a8a", italic=True)
STATUS = {"added": "A green", "deleted": "D red", "renamed": "R yellow", "copied": "C yellow",
          "modified": "M cyan", "binary": "B magenta"}  # fmt: skip
_THEME = PygmentsSyntaxTheme("monokai")
_SHOWN = {c: 0x2400 + c for c in range(32)} | {127: 0x2421}  # control pictures: ␍, ␛...
_SHOWN |= {c: 0xFFFD for c in (*range(0x80, 0xA0), 0x200E, 0x200F, 0x061C)}
_SHOWN |= {c: 0xFFFD for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}  # bidi


def printable(line: str) -> str:
    """A line as it may reach the terminal: tabs expanded, control and bidi characters shown as
    symbols (an agent's diff must not move the cursor or reorder what the reviewer reads), and
    cut at ``MAX_CHARS``."""
    cut = len(line) > MAX_CHARS
    line = line[:MAX_CHARS].expandtabs(TAB).translate(_SHOWN)
    return line + "…" if cut else line


@lru_cache(maxsize=512)
def token_style(token: tuple[str, ...]) -> Style:
    """The theme's style of a token without the theme's background (the line's shows)."""
    s = _THEME.get_style_for_token(token)
    return Style(color=s.color, bold=s.bold, italic=s.italic, underline=s.underline)


@lru_cache(maxsize=256)
def _lexer_class(name: str) -> type[Lexer] | None:
    try:
        return type(get_lexer_for_filename(name))
    except (ClassNotFound, ValueError):
        return None


def lexer_for(path: str) -> Lexer | None:
    """A Pygments lexer for a file name (a new one: lexers are not shared between threads), or
    None (plain text)."""
    cls = _lexer_class(PurePosixPath(path).name)
    return cls(stripnl=False, ensurenl=False) if cls is not None else None


def highlight(lines: list[str], lexer: Lexer | None) -> list[Text]:
    """``lines`` (already printable) highlighted together, one Text each; plain on any trouble."""
    if lexer is not None and lines:
        out = [Text()]
        try:
            for token, value in lexer.get_tokens("\n".join(lines)):
                style = token_style(token)
                for k, part in enumerate(value.split("\n")):
                    if k:
                        out.append(Text())
                    if part:
                        out[-1].append(part, style)
        except Exception:  # a lexer's bug must not cost the reviewer the diff
            out = []
        if len(out) == len(lines) and all(t.plain == s for t, s in zip(out, lines, strict=True)):
            return out
    return [Text(line) for line in lines]


@dataclass(frozen=True, slots=True)
class Side:
    """One column of a code row: the line numbers and sign, the code, the line's background."""

    numbers: str
    kind: str
    code: Text
    fill: Style


Row = Text | tuple[Side | None, ...]  # a Text: a note across the width (a hunk header...)


def _hunk_texts(lines: list[DiffLine], lexer: Lexer | None) -> list[Text]:
    """Each line highlighted within its side (old: context and removed lines, new: context and
    added lines), so a construct spanning lines is highlighted as a whole."""
    olds = highlight([printable(ln.text) for ln in lines if ln.kind != "+"], lexer)
    news = highlight([printable(ln.text) for ln in lines if ln.kind != "-"], lexer)
    out, o, n = [], 0, 0
    for ln in lines:
        out.append(news[n] if ln.kind != "-" else olds[o])
        o, n = o + (ln.kind != "+"), n + (ln.kind != "-")
    return out


def _side(line: DiffLine, numbers: str, text: Text) -> Side:
    if line.no_newline:
        text = Text.assemble(text, ("  no newline at end of file", NOTE))
    return Side(numbers, line.kind, text, FILLS.get(line.kind, PLAIN))


def file_notes(f: FileDiff) -> list[str]:
    notes = []
    if f.status in ("renamed", "copied"):
        similarity = f" ({f.similarity}% similar)" if f.similarity is not None else ""
        notes.append(f"{f.status} from {f.old_path} to {f.new_path}{similarity}")
    if f.old_mode and f.new_mode and f.old_mode != f.new_mode:
        notes.append(f"mode {f.old_mode} → {f.new_mode}")
    if f.binary:
        notes.append("binary file: its content is not shown")
    elif not f.hunks and f.status in ("added", "deleted"):
        notes.append(f"empty file {f.status}")
    return notes


def file_rows(
    f: FileDiff,
    side_by_side: bool,
    *,
    highlighted: bool = True,
    limit: int = MAX_ROWS,
    stop: Callable[[], bool] = lambda: False,
) -> tuple[list[Row], int]:
    """The rows of one file's diff (at most ``limit`` lines of it, then a "… N more lines"
    row), and the width of their gutter. ``stop`` is asked between hunks (a worker cancelled)."""
    numbers = [n for h in f.hunks for n in (h.old_start + h.old_count, h.new_start + h.new_count)]
    wide = max(3, len(str(max(numbers, default=0))))
    rows: list[Row] = [Text(printable(note), NOTE) for note in file_notes(f)]
    lexer = lexer_for(f.path) if highlighted else None
    shown = 0
    for hunk in f.hunks:
        if shown >= limit or stop():
            break
        rows.append(Text(printable(hunk.header), HUNK))
        lines = hunk.lines[: limit - shown]  # highlighted and shown: no more than the limit
        texts = _hunk_texts(lines, lexer)
        shown += len(lines)
        if side_by_side:
            at = {id(ln): i for i, ln in enumerate(lines)}
            for old, new in pair_rows(lines):
                left = _side(old, f"{old.old or '':>{wide}} ", texts[at[id(old)]]) if old else None
                right = _side(new, f"{new.new or '':>{wide}} ", texts[at[id(new)]]) if new else None
                rows.append((left, right))
        else:
            for ln, text in zip(lines, texts, strict=True):
                rows.append((_side(ln, f"{ln.old or '':>{wide}} {ln.new or '':>{wide}} ", text),))
    if shown < f.line_count:
        rows.append(Text(f"… {f.line_count - shown} more lines (not shown)", NOTE))
    if f.truncated:
        rows.append(Text("… the diff was cut here: it is too large to show whole", NOTE))
    return rows, (wide + 3 if side_by_side else 2 * wide + 4)


class DiffLines(ScrollView, can_focus=True):
    """Rows drawn on demand (only the visible ones are ever rendered). The gutters stay put
    when scrolling sideways; side by side, both code columns scroll together."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[Row] = []
        self.gutter_width = 0
        self._widest = 0  # the widest code text
        self._strips: LRUCache[tuple[int, int, int], Strip] = LRUCache(2048)

    def set_rows(self, rows: list[Row], gutter: int, *, keep_scroll: bool = False) -> None:
        self.rows, self.gutter_width = rows, gutter
        codes = (s.code.cell_len for r in rows if isinstance(r, tuple) for s in r if s)
        self._widest = max(codes, default=0)
        self._strips.clear()
        self._virtual_size()
        if not keep_scroll:
            self.scroll_to(0, 0, animate=False)
        self.refresh()

    def _columns(self, width: int, sides: int) -> list[int]:
        """The width of each side's code (the sides share the width, a separator between)."""
        side = (width - (sides - 1)) // sides
        last = width - (sides - 1) - side * (sides - 1)
        return [max(1, w - self.gutter_width) for w in [side] * (sides - 1) + [last]]

    def _virtual_size(self) -> None:
        width = max(1, self.scrollable_content_region.width)
        sides = max((len(r) for r in self.rows if isinstance(r, tuple)), default=1)
        spare = max(0, self._widest - min(self._columns(width, sides)))
        self.virtual_size = Size(width + spare, len(self.rows))

    def on_resize(self, _event: Resize) -> None:
        self._strips.clear()
        self._virtual_size()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        index = scroll_y + y
        if index >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        key = (index, scroll_x, width)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._render_row(self.rows[index], scroll_x, width)
            self._strips[key] = strip
        return strip.apply_style(self.rich_style)

    def _render_row(self, row: Row, scroll_x: int, width: int) -> Strip:
        console = self.app.console
        if isinstance(row, Text):  # a note: its style (a Style) across the width
            style = row.style if isinstance(row.style, Style) else Style()
            strip = Strip(row.render(console)).apply_style(style)
            return strip.crop(0, width).extend_cell_length(width, style)
        parts: list[Strip] = []
        for n, (side, code_width) in enumerate(
            zip(row, self._columns(width, len(row)), strict=True)
        ):
            if n:
                parts.append(Strip([Segment("│", GUTTER)]))
            if side is None:
                parts.append(Strip.blank(self.gutter_width + code_width))
                continue
            sign = SIGNS.get(side.kind, GUTTER)
            gutter = Strip([Segment(side.numbers, GUTTER), Segment(side.kind + " ", sign)])
            gutter = gutter.crop(0, self.gutter_width).extend_cell_length(self.gutter_width)
            code = Strip(side.code.render(console)).apply_style(side.fill)
            code = code.crop(scroll_x, scroll_x + code_width)
            parts.append(gutter.apply_style(side.fill))
            parts.append(code.extend_cell_length(code_width, side.fill))
        return Strip.join(parts)


def file_label(f: FileDiff) -> Text:
    letter, _, color = STATUS.get(f.status, "? white").partition(" ")
    label = Text(no_wrap=True, overflow="ellipsis")
    label.append(f"{letter} ", f"bold {color}")
    if f.binary:
        label.append(f"{'bin':>12} ", "magenta")
    else:
        label.append(f"{'+' + str(f.added):>6}", "green")
        label.append(f"{'-' + str(f.removed):>6} ", "red")
    if f.status in ("renamed", "copied") and f.old_path:
        label.append(printable(f.old_path) + " → ", "dim")
    label.append(printable(f.path))
    return label


class DiffView(Vertical):
    """The file list, a header line (which file, which mode, the keys), the file's diff."""

    DEFAULT_CSS = """
    DiffView #diff-files { height: auto; max-height: 8; border: none; padding: 0; }
    DiffView #diff-header { height: 1; padding: 0 1; background: $boost; }
    DiffView DiffLines {
        height: 1fr;
        background: $surface;
        color: $foreground;
        overflow-y: scroll;
        &:focus { background-tint: $foreground 5%; }
    }
    """
    BINDINGS = [
        Binding("v", "toggle_mode", "Unified/split"),
        Binding("left_square_bracket", "step(-1)", "Prev file"),
        Binding("right_square_bracket", "step(1)", "Next file"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.diff = Diff()
        self.index = -1
        self.side_by_side = False
        self.message = "no diff yet"
        self.generation = 0  # of the rows shown: a highlighting thread's rows must match it

    def compose(self) -> ComposeResult:
        yield OptionList(id="diff-files")
        yield Static("", id="diff-header")
        yield DiffLines(id="diff-lines")

    def show(self, diff: Diff | None, message: str = "") -> None:
        """A parsed diff (the selected file stays selected if it is still there), or a message
        when there is none."""
        old = self.diff.files[self.index].path if 0 <= self.index < len(self.diff.files) else ""
        self.diff, self.message = diff or Diff(), message
        files = self.query_one("#diff-files", OptionList)
        files.clear_options()
        files.add_options(Option(file_label(f), id=str(i)) for i, f in enumerate(self.diff.files))
        if self.diff.truncated:
            files.add_option(Option(Text(f"… {self.diff.truncated}", NOTE), disabled=True))
        files.display = bool(self.diff.files)
        paths = [f.path for f in self.diff.files]
        self.index = -1
        self.select(paths.index(old) if old in paths else 0)

    def select(self, index: int) -> None:
        """Show file ``index`` (the list's highlight follows)."""
        if not self.diff.files:
            self.index = -1
            self.query_one("#diff-header", Static).update(Text(self.message or "no changes"))
            self.query_one(DiffLines).set_rows([], 0)
            return
        index %= len(self.diff.files)
        files = self.query_one("#diff-files", OptionList)
        if files.highlighted != index:
            files.highlighted = index
        if index != self.index:
            self.index = index
            self._render_file()

    def _render_file(self) -> None:
        f = self.diff.files[self.index]
        self.generation += 1
        quick = f.line_count <= SYNC_LINES or _lexer_class(PurePosixPath(f.path).name) is None
        rows, gutter = file_rows(f, self.side_by_side, highlighted=quick)
        self.query_one(DiffLines).set_rows(rows, gutter)
        if not quick:
            self._highlight(self.generation, f, self.side_by_side)
        modes = ("side by side", "unified") if self.side_by_side else ("unified", "side by side")
        parts = [(f"{self.index + 1}/{len(self.diff.files)} ", "dim"), (printable(f.path), "bold")]
        parts += [(f"  {f.status}  ", ""), (f"+{f.added}", "green"), (f" -{f.removed}", "red")]
        parts += [(f"  ·  {modes[0]}", "bold"), ("   v ", "bold cyan"), (modes[1], "")]
        parts += [("  [ ] ", "bold cyan"), ("previous / next file", "")]
        header = Text.assemble(*parts, no_wrap=True, overflow="ellipsis")
        self.query_one("#diff-header", Static).update(header)

    class Highlighted(Message):
        """A file's rows, highlighted by the worker thread."""

        bubble = False

        def __init__(self, generation: int, rows: list[Row], gutter: int) -> None:
            super().__init__()
            self.generation, self.rows, self.gutter = generation, rows, gutter

    @work(thread=True, exclusive=True, group="diff-highlight", description="highlight a file")
    def _highlight(self, generation: int, f: FileDiff, side_by_side: bool) -> None:
        worker = get_current_worker()
        rows, gutter = file_rows(f, side_by_side, stop=lambda: worker.is_cancelled)
        if not worker.is_cancelled:
            self.post_message(self.Highlighted(generation, rows, gutter))

    def on_diff_view_highlighted(self, message: Highlighted) -> None:
        if message.generation == self.generation:  # still the file and the mode it was for
            self.query_one(DiffLines).set_rows(message.rows, message.gutter, keep_scroll=True)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option.id is not None:
            self.select(int(event.option.id))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()  # enter on a file: read its diff
        self.query_one(DiffLines).focus()

    def action_step(self, step: int) -> None:
        if self.diff.files:
            self.select(self.index + step)

    def action_toggle_mode(self) -> None:
        self.side_by_side = not self.side_by_side
        if 0 <= self.index < len(self.diff.files):
            lines = self.query_one(DiffLines)
            y = lines.scroll_y
            self._render_file()
            lines.scroll_to(y=y, animate=False)
