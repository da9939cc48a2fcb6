"""The dashboard's preview reads a plain log's last line from its end alone (no terminal
emulator): generated logs of text, colours, carriage returns, tabs and wide or combining
characters give the line the emulated screen shows, or are left to the emulator; anything that
moves the cursor goes to the emulator."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hatchctl.runtime import logpreview
from hatchctl.runtime.logfollow import LogFollower
from hatchctl.runtime.logpreview import plain_last_line


def screen_last_line(path: Path) -> str:
    """What the emulated screen shows as the last non-blank line (the reference)."""
    follower = LogFollower(path, max_bytes=64 << 10, history=50)
    follower.poll()
    base, shown = follower.snapshot()
    shown = shown[0 if base else len(follower._head) :]
    return next((ln.strip() for ln in reversed(shown) if ln.strip()), "")


words = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=30)
wide = st.sampled_from(["漢字", "e\u0301", "\u200b", "🙂", "\ufe0f"])
pieces = st.one_of(
    words,
    st.sampled_from(["\n", "\r\n", "\r", "\t", "\x1b[31m", "\x1b[0m", "\x1b[1;32m", "  "]),
    st.sampled_from(["\x1b]0;title\x07", "é", "✓ done"]),
    wide,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(pieces, max_size=60), st.integers(min_value=0, max_value=300))
def test_a_plain_log_gives_the_screens_last_line(parts: list[str], repeat: int) -> None:
    text = "".join(parts)
    body = ("filler line\r\n" * repeat) + text  # past QUICK_TAIL too: the first line is cut
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.log"
        path.write_bytes(body.encode())
        quick = plain_last_line(path, path.stat().st_size)
        if quick is not None:
            assert quick == screen_last_line(path), repr(text)


def test_cursor_moves_go_to_the_emulator(tmp_path: Path) -> None:
    path = tmp_path / "tui.log"
    path.write_bytes(b"line one\nline two\n\x1b[1;1Hdrawn at the top\x1b[5;1H")
    assert plain_last_line(path, path.stat().st_size) is None
    assert logpreview.last_line(path) == screen_last_line(path) == "line two"
    path.write_bytes(b"progress 10%\r\x1b[2Kdone\n")  # an erase: not plain either
    assert plain_last_line(path, path.stat().st_size) is None


def test_a_streaming_log_is_read_from_its_end(tmp_path: Path) -> None:
    path = tmp_path / "stream.log"
    path.write_bytes(b"".join(b"\x1b[32mline %d\x1b[0m\r\n" % i for i in range(100_000)))
    assert plain_last_line(path, path.stat().st_size) == "line 99999"
    assert logpreview.last_line(path) == "line 99999"
    with path.open("ab") as fh:
        fh.write(b"step 1\rstep 22\r\n\r\n  \r\n")
    assert logpreview.last_line(path) == "step 22"
    path.write_bytes(b"a\nb\n" * 2000)  # bare LFs (not a pane's log): the column is unknown
    assert plain_last_line(path, path.stat().st_size) is None
    assert logpreview.last_line(path) == "b"
