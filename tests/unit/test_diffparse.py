"""diffparse: `git diff --stat --patch` text parsed into files and hunks (statuses, counts, line
numbers, quoted paths, the stat preamble skipped), hunks paired into side-by-side rows, the caps,
and any text at all parsed without an exception."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hatchctl.state.diffparse import Diff, Row, pair_rows, parse_diff

GIT_DIFF = """\
 b.bin               | Bin 7 -> 8 bytes
 x.py                |   4 ++--
 2 files changed, 2 insertions(+), 2 deletions(-)

diff --git a/b.bin b/b.bin
index 87ae6b6..22f6b3b 100644
Binary files a/b.bin and b/b.bin differ
diff --git a/ren.txt b/ren2.txt
similarity index 92%
rename from ren.txt
rename to ren2.txt
diff --git a/sp ace.txt b/sp ace.txt
index 3367afd..3e75765 100644
--- a/sp ace.txt\t
+++ b/sp ace.txt\t
@@ -1 +1 @@
-old
+new
diff --git a/x.py b/x.py
old mode 100644
new mode 100755
--- a/x.py
+++ b/x.py
@@ -1,4 +1,4 @@ def f():
 a
--- not a header, a removed line
-b
+B
+++ not a header, an added line
 c
\\ No newline at end of file
@@ -10,2 +10,3 @@
 k

+l
diff --git a/gone.py b/gone.py
deleted file mode 100644
--- a/gone.py
+++ /dev/null
@@ -1 +0,0 @@
-bye
diff --git "a/\\303\\251 \\"q\\".txt" "b/\\303\\251 \\"q\\".txt"
new file mode 100644
--- /dev/null
+++ "b/\\303\\251 \\"q\\".txt"
@@ -0,0 +1 @@
+new
"""


def test_a_git_diff_is_files_hunks_and_numbered_lines() -> None:
    diff = parse_diff(GIT_DIFF)
    assert not diff.truncated
    got = [(f.old_path, f.new_path, f.status, f.added, f.removed) for f in diff.files]
    assert got == [
        ("b.bin", "b.bin", "binary", 0, 0),
        ("ren.txt", "ren2.txt", "renamed", 0, 0),
        ("sp ace.txt", "sp ace.txt", "modified", 1, 1),
        ("x.py", "x.py", "modified", 3, 2),
        ("gone.py", None, "deleted", 0, 1),
        (None, 'é "q".txt', "added", 1, 0),
    ]
    assert diff.files[1].similarity == 92 and diff.files[0].binary
    x = diff.files[3]
    assert (x.old_mode, x.new_mode) == ("100644", "100755")
    first, second = x.hunks
    assert first.section == "def f():" and (first.old_start, first.new_count) == (1, 4)
    assert [(ln.kind, ln.text, ln.old, ln.new) for ln in first.lines] == [
        (" ", "a", 1, 1),
        ("-", "-- not a header, a removed line", 2, None),
        ("-", "b", 3, None),
        ("+", "B", None, 2),
        ("+", "++ not a header, an added line", None, 3),
        (" ", "c", 4, 4),
    ]
    assert first.lines[-1].no_newline and not first.lines[0].no_newline
    assert [(ln.kind, ln.old, ln.new) for ln in second.lines] == [
        (" ", 10, 10),
        (" ", 11, 11),  # a context line whose leading space was stripped
        ("+", None, 12),
    ]
    assert (diff.added, diff.removed, diff.lines) == (5, 4, 13)


def texts(rows: list[Row]) -> list[tuple[str | None, str | None]]:
    return [(a.text if a else None, b.text if b else None) for a, b in rows]


def test_side_by_side_pairs_runs_and_pads() -> None:
    rows = texts(pair_rows(parse_diff(GIT_DIFF).files[3].hunks[0].lines))
    assert rows == [
        ("a", "a"),
        ("-- not a header, a removed line", "B"),
        ("b", "++ not a header, an added line"),
        ("c", "c"),
    ]
    text = "@@ -1,5 +1,3 @@\n-r1\n-r2\n-r3\n+a1\n x\n+a2\n-r4\n"
    assert texts(pair_rows(parse_diff(text).files[0].hunks[0].lines)) == [
        ("r1", "a1"),
        ("r2", None),
        ("r3", None),
        ("x", "x"),
        (None, "a2"),
        ("r4", None),
    ]


def test_caps_stop_the_parse_and_say_so() -> None:
    many = "".join(f"diff --git a/f{i} b/f{i}\n@@ -0,0 +1 @@\n+{i}\n" for i in range(30))
    diff = parse_diff(many, max_files=10)
    assert len(diff.files) == 10 and "more than 10 files" in diff.truncated
    diff = parse_diff(many, max_lines=25)
    assert diff.lines == 25 and len(diff.files) == 26 and "more than 25 lines" in diff.truncated
    assert diff.files[-1].truncated and not diff.files[0].truncated
    assert parse_diff("").files == [] and not parse_diff("").truncated
    colored = "\x1b[1mdiff --git a/a b/a\x1b[m\n\x1b[36m@@ -1 +1 @@\x1b[m\n\x1b[31m-x\x1b[m\n"
    assert [ln.text for ln in parse_diff(colored + "+y\n").files[0].hunks[0].lines] == ["x", "y"]


PIECES = st.sampled_from(
    [
        "diff --git a/x b/x",
        'diff --git "a/\\303" b/y',
        "diff --git a",
        "--- a/x",
        "+++ b/x",
        "--- /dev/null",
        "+++ /dev/null",
        "@@ -1,3 +1,2 @@",
        "@@ -0,0 +1 @@ f",
        "@@ -99999999999999999999 +1 @@",
        "@@@ -1 -1 +1 @@@",
        "new file mode 100644",
        "rename from a b",
        "rename to",
        "similarity index 1000000%",
        "Binary files a/x and b/x differ",
        "\\ No newline at end of file",
        "+add",
        "-del",
        " ctx",
        "",
    ]
)


def _check(diff: Diff) -> None:
    for f in diff.files:
        assert f.status in ("added", "deleted", "renamed", "copied", "modified", "binary")
        assert f.added == sum(ln.kind == "+" for h in f.hunks for ln in h.lines)
        assert f.removed == sum(ln.kind == "-" for h in f.hunks for ln in h.lines)
        for h in f.hunks:
            rows = pair_rows(h.lines)
            assert [a for a, _ in rows if a] == [ln for ln in h.lines if ln.kind != "+"]
            assert [b for _, b in rows if b] == [ln for ln in h.lines if ln.kind != "-"]


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES | st.text(max_size=12), max_size=40), st.integers(1, 50))
def test_any_text_parses_without_raising(pieces: list[str], cap: int) -> None:
    text = "\n".join(pieces)
    _check(parse_diff(text))
    diff = parse_diff(text, max_files=cap, max_lines=cap)
    assert len(diff.files) <= cap and diff.lines <= cap
    _check(diff)
