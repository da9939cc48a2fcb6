"""A pane in a private tmux server (no config, xterm-256color, 160x45), driven and read through a
tmux control-mode client (`tmux -C`): ``Pane``; a key pressed and the time until the screen shows
what was wanted (``press``, ``settle``); and what a screen shows: a Textual table's cursor row
(``Cursor``, from each row's background at its ID) or the letters typed (``typed``). Used by
bench_keys.py, bench_ui_scale.py and bench_biglog.py."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import threading
import time
from pathlib import Path

WIDTH, HEIGHT = 160, 45
ESCAPE = re.compile(
    r"\x1b\[([0-9;:]*)m|\x1b\[[0-9;?]*[A-Za-ln-z]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
)
ROW = re.compile(r"\W{0,4}([A-Z]+-?\d+)\s{2}")  # a table row: the ID, then column padding


def sgr(params: str, bg: str) -> str:
    """The background after one SGR sequence's parameters."""
    values = [int(p) if p.isdigit() else 0 for p in re.split("[;:]", params)]
    i = 0
    while i < len(values):
        p = values[i]
        if p in (0, 49):
            bg = ""
        elif 40 <= p <= 47 or 100 <= p <= 107:
            bg = str(p)
        elif p in (38, 48):  # then 5;n or 2;r;g;b
            size = 3 if i + 1 < len(values) and values[i + 1] == 5 else 5
            if p == 48:
                bg = ";".join(map(str, values[i : i + size]))
            i += size - 1
        i += 1
    return bg


def row_styles(lines: list[str]) -> list[str]:
    """The background of each table row on screen, at its ID. A line of `capture-pane -e`
    starts in the style the line before it ended in."""
    styles, bg = [], ""
    for line in lines:
        row = ROW.match(ESCAPE.sub("", line))
        col, seen, pos, at = (row.start(1) if row else -1), 0, 0, None
        for m in ESCAPE.finditer(line):
            seen += m.start() - pos
            pos = m.end()
            if at is None and seen > col >= 0:
                at = bg
            if m.group(1) is not None:
                bg = sgr(m.group(1), bg)
        if row:
            styles.append(bg if at is None else at)
    return styles


class Cursor:
    """Which table row the cursor is on: the one row drawn in the cursor's background, learnt
    from the first row while the cursor is there (where both tables start)."""

    def __init__(self) -> None:
        self.style: str | None = None

    def __call__(self, lines: list[str]) -> int | None:
        styles = row_styles(lines)
        if self.style is None:
            if len(styles) < 3 or styles.count(styles[0]) != 1:
                return None
            self.style = styles[0]
        hits = [i for i, s in enumerate(styles) if s == self.style]
        return hits[0] if len(hits) == 1 else None


def typed(lines: list[str]) -> int:
    return sum(ESCAPE.sub("", line).count("x") for line in lines)


class Pane:
    """One pane in a private tmux server, read and driven through a control-mode client."""

    def __init__(self, name: str, argv: list[str], cwd: Path) -> None:
        self.name = name
        self.socket = f"hkeys-{os.getpid()}-{name}"
        drop = ("TMUX", "NO_COLOR", "COLUMNS", "LINES")  # Textual would take these as its size
        self.env = {k: v for k, v in os.environ.items() if k not in drop}
        size = ["-x", str(WIDTH), "-y", str(HEIGHT)]
        subprocess.run(
            [
                *["tmux", "-L", self.socket, "-f", "/dev/null", "start-server", ";"],
                *["set-option", "-g", "default-terminal", "xterm-256color", ";"],
                *["new-session", "-d", "-s", "main", *size, "-c", str(cwd), "--", *argv, ";"],
                *["set-option", "-g", "window-size", "manual", ";"],
                *["set-option", "-g", "remain-on-exit", "on"],  # a crash stays readable
            ],
            env=self.env,
            check=True,
            timeout=10,
        )
        self.client = subprocess.Popen(
            ["tmux", "-L", self.socket, "-C", "attach-session", "-t", "main"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=self.env,
        )
        self.replies: queue.Queue[list[str]] = queue.Queue()
        self.output = threading.Event()
        self.last_output = 0.0
        threading.Thread(target=self._read, daemon=True).start()
        self.pid = int(self.command("display-message -p '#{pane_pid}'")[0])

    def _read(self) -> None:
        assert self.client.stdout is not None
        block: list[str] | None = None
        for raw in self.client.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if block is not None:
                if line.startswith(("%end ", "%error ")) and line.split()[-1] == "1":
                    self.replies.put(block)
                    block = None
                elif line.startswith(("%end ", "%error ")):
                    block = None
                else:
                    block.append(line)
            elif line.startswith("%output "):
                self.last_output = time.perf_counter()
                self.output.set()
            elif line.startswith("%begin "):
                block = []
        self.replies.put([])

    def command(self, text: str) -> list[str]:
        assert self.client.stdin is not None
        self.client.stdin.write(text.encode() + b"\n")
        self.client.stdin.flush()
        return self.replies.get(timeout=30)

    def screen(self) -> list[str]:
        return self.command("capture-pane -p -e -t main")

    def cpu(self) -> float:
        """CPU seconds of the pane's process so far (utime + stime)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        subprocess.run(
            ["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10, check=False
        )
        self.client.kill()
        self.client.wait(timeout=10)
        (tmux_dir() / self.socket).unlink(missing_ok=True)  # a killed server leaves it


def tmux_dir() -> Path:
    return Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"


def press(pane: Pane, key: str, done: object, read: object, timeout: float) -> float | None:
    """Send ``key``; the seconds until the screen shows ``done`` (as ``read`` reads it)."""
    assert callable(read)
    pane.output.clear()
    t0 = time.perf_counter()
    pane.command(f"send-keys -t main {key}")
    while time.perf_counter() - t0 < timeout:
        pane.output.wait(0.05)
        pane.output.clear()
        seen = pane.last_output  # the screen can only have changed by output after the key
        if seen > t0 and read(pane.screen()) == done:
            return seen - t0
    shows = read(pane.screen())
    print(f"  ({pane.name}: {key} not on screen after {timeout:g}s: wanted {done}, shows {shows})")
    return None


def settle(pane: Pane, read: object, timeout: float = 120.0) -> object:
    """Wait until the target draws what ``read`` reads; that value."""
    assert callable(read)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = read(pane.screen())
        if value is not None:
            return value
        if pane.command("display-message -p -t main '#{pane_dead}'") == ["1"]:
            break
        time.sleep(0.1)
    screen = pane.command("capture-pane -p -S - -t main")
    raise SystemExit(f"{pane.name}: nothing readable after {timeout:g}s:\n" + "\n".join(screen))
