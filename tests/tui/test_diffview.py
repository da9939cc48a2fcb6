"""The Diff tab's view, mounted alone on a real `git diff` of a real repository (one file
modified, one added): the file list, `]` / `[` between files, `v` side by side with the old text
in the left column and the new in the right; and a large file capped with a "… N more lines" row,
an agent's escape sequences shown as symbols; in the drill-down, `4` gives the view the keys."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import OptionList

from hatchctl.runtime.gitrepo import Git
from hatchctl.state.diffparse import parse_diff
from hatchctl.tui.diffview import DiffLines, DiffView, file_rows
from tests.conftest import git, make_repo
from tests.tui.test_app import app_for
from tests.tui.test_message import until
from tests.tui.test_snapshots import drill_project, open_drill
from tests.unit.test_diffparse import PIECES


class DiffApp(App[None]):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        yield DiffView()

    def on_mount(self) -> None:
        self.query_one(DiffView).show(parse_diff(self.text))
        self.query_one(DiffLines).focus()


def shown(app: App[None]) -> list[str]:
    lines = app.query_one(DiffLines)
    return [lines.render_line(y).text for y in range(lines.size.height)]


def header(node: App[None] | Screen[None]) -> str:
    return str(node.query_one("#diff-header").render())


async def test_files_keys_and_side_by_side(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "calc.py").write_text("def add(a, b):\n    return a - b\n\n\nPI = 3.14\n")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "calc")
    base = git(repo, "rev-parse", "HEAD")
    (repo / "calc.py").write_text("def add(a, b):\n    return a + b\n\n\nPI = 3.14\n")
    (repo / "util").mkdir()
    (repo / "util" / "greet.py").write_text('def greet(name):\n    return f"hi {name}"\n')
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "fix add, greet")
    app = DiffApp(Git(repo, 20).diff_text(base, "HEAD"))
    async with app.run_test(size=(100, 24)) as pilot:
        files = app.query_one("#diff-files", OptionList)
        await until(pilot, lambda: files.option_count == 2, "the file list")
        labels = [str(files.get_option_at_index(i).prompt) for i in range(2)]
        assert labels[0].split() == ["M", "+1", "-1", "calc.py"]
        assert labels[1].split() == ["A", "+2", "-0", "util/greet.py"]
        assert "1/2 calc.py  modified  +1 -1" in header(app) and "unified" in header(app)
        assert any("-     return a - b" in line for line in shown(app))
        assert any("+     return a + b" in line for line in shown(app))

        await pilot.press("right_square_bracket")
        await until(pilot, lambda: "2/2 util/greet.py  added" in header(app), "the next file")
        assert files.highlighted == 1
        assert any('return f"hi {name}"' in line for line in shown(app))
        await pilot.press("left_square_bracket")
        await until(pilot, lambda: "1/2 calc.py" in header(app), "the previous file")

        await pilot.press("v")
        await until(pilot, lambda: "side by side   v unified" in header(app), "side by side")
        width = app.query_one(DiffLines).scrollable_content_region.width
        rows = [line for line in shown(app) if "return a" in line]
        assert len(rows) == 1, rows  # the removed and the added line: one row, two columns
        left, right = rows[0][: width // 2], rows[0][width // 2 :]
        assert "  2 -     return a - b" in left and "a + b" not in left
        assert "  2 +     return a + b" in right
        assert any("def add(a, b):" in line[: width // 2] for line in shown(app))
        await pilot.press("v")
        await until(pilot, lambda: "unified   v side by side" in header(app), "unified again")


async def test_the_drill_down_diff_tab_takes_the_keys(tmp_path: Path) -> None:
    """`4` shows the task's branch in the view and focuses it (so `]` and `v` work there);
    leaving the tab gives the focus back to the tabs."""
    app = app_for(*drill_project(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_drill(pilot, app)
        await pilot.press("4")
        view = screen.query_one(DiffView)
        await until(pilot, lambda: len(view.diff.files) == 2, "the diff")
        assert isinstance(app.focused, DiffLines)
        await pilot.press("right_square_bracket", "v")
        await until(pilot, lambda: "2/2 health.py  added" in header(screen), "the next file")
        assert view.side_by_side
        await pilot.press("1")
        await until(pilot, lambda: not isinstance(app.focused, DiffLines), "the focus back")


def test_a_large_file_is_capped_and_escapes_are_shown_as_symbols() -> None:
    body = "".join(f"+line {i}\n" for i in range(50))
    text = f"diff --git a/n.txt b/n.txt\n@@ -0,0 +1,51 @@\n+\x1b[2Jboom\x07\n{body}"
    rows, _ = file_rows(parse_diff(text).files[0], side_by_side=False, limit=10)
    assert str(rows[-1]) == "… 41 more lines (not shown)"
    code = rows[1]
    assert isinstance(code, tuple) and code[0] is not None
    assert code[0].code.plain == "␛[2Jboom␇"


@settings(max_examples=100, deadline=None)
@given(st.lists(PIECES | st.text(max_size=12), max_size=30), st.sampled_from(["x.py", "x", "M"]))
def test_any_parsed_diff_makes_rows(pieces: list[str], name: str) -> None:
    for f in parse_diff("\n".join(pieces)).files:
        f.new_path = name
        for side_by_side in (False, True):
            rows, gutter = file_rows(f, side_by_side, limit=20)
            assert gutter > 0 and len(rows) <= 20 + 2 * len(f.hunks) + 6
