"""Pane logs rendered as the pane showed them: real bytes from a real tmux pane compared with
tmux's own view of it, plain line output unchanged, following a growing log, bounded tails."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import uuid
import zlib
from pathlib import Path

import pytest

from hatchctl.runtime.logfile import render_tail, strip_ansi, tail_lines
from hatchctl.runtime.logfollow import LogFollower, StablePrinter
from hatchctl.runtime.logpreview import last_line
from hatchctl.runtime.screenlog import ScreenRenderer

# Like Claude Code's inline renderer (Ink): lines printed once, then a frame redrawn in place
# by erasing its lines upwards; plus sequences pyte alone would print as text.
INLINE = r"""
import sys, time
w = sys.stdout.write
w("booting agent\n")
for i in range(40):
    w(f"static line {i}: \x1b[32mdone\x1b[0m\n")
w("\x1b]0;title\x07\x1b[<u\x1b[>1u\x1b[>4;2m\x1b_Gi=31,a=q;AAAA\x1b\\\x1bP+q544e\x1b\\")
w("\x1b[1;6r\x1b[6;1H" + "".join(f"in region {i}\n" for i in range(9)) + "\x1b[rtop\n")
w("\x1b[3;6r\x1b[6;1H" + "".join(f"mid region {i}\n" for i in range(5)) + "\x1b[r\x1b[20;1H")
w("\x1b[2J\x1b[Hcleared (ED 2), then\n\x1b[5;1Hrow 5\n\x1b[H\x1b[Jcleared (home, ED 0)\n")
prev = 0
for n in range(61):
    w("\x1b[2K\x1b[1A" * prev + "\x1b[2K\x1b[G")
    frame = ["\u256d" + "\u2500" * 20 + "\u256e", f"\u2502 thinking {n:3d}s      \u2502",
             "\u2570" + "\u2500" * 20 + "\u256f", "\x1b[2m? for shortcuts\x1b[22m"]
    w("\n".join(frame))
    prev = len(frame) - 1
    if n % 20 == 19:
        w("\x1b[2K\x1b[1A" * prev + "\x1b[2K\x1b[G")
        prev = 0
        w(f"tool call {n}: ok\n")
    sys.stdout.flush()
    time.sleep(0.005)
w("\nEND-OF-DEMO")
"""

# Like Claude Code's full-screen renderer: the alternate screen, absolute cursor moves,
# rows padded with background color, a counter and a status line redrawn in place.
FULLSCREEN = r"""
import sys, time
w = sys.stdout.write
w("$ claude\n")
w("\x1b7\x1b[r\x1b8\x1b[?25h\x1b[?2004h\x1b[<u\x1b[>5u\x1b[>4;2m\x1b]0;\u2733 Claude Code\x07")
w("\x1b[?1049h\x1b[2J\x1b[H\x1b[?1000h\x1b[?1006h\x1b[?25l\x1b[?2026$p\x1b_Gi=31,a=q;AAAA\x1b\\")
for n in range(120):
    w("\x1b[?2026h\x1b[H\r\x1b[1B\x1b[38;5;174m \u2590\u259b\u2588\u2588\u2588\u259c\u258c\x1b[12G\x1b[1mClaude Code\x1b[22m")
    w("\r\x1b[2B")
    for i in range(12):
        w(f"\x1b[48;5;237m  \x1b[38;5;231mtranscript row {i} of frame {n // 40}\x1b[39m".ljust(86) + "\x1b[49m\r\x1b[1B")
    w(f"\x1b[H\r\x1b[18B\x1b[K\x1b[38;5;174m\u2722\x1b[3GThinking\u2026 ({n}s)\x1b[44G\x1b[38;5;246m{n % 7}\x1b[39m")
    w("\x1b[24;1H\x1b[K\x1b[2m ? for shortcuts \u00b7 \u2190 for agents\x1b[22m\x1b[60C\x1b[22;3H")
    w("\x1b[?2026l")
    sys.stdout.flush()
    time.sleep(0.003)
w("\x1b[24;1H\x1b[K END-OF-DEMO")
"""


def record_in_tmux(tmp_path: Path, program: str) -> tuple[bytes, list[str], list[str]]:
    """Run ``program`` in a real 80x24 tmux pane whose output is piped to a log, as hatchctl
    runs agents. Returns the log's bytes, and tmux's own view: the screen, history + screen."""
    sock = f"test-{uuid.uuid4().hex[:12]}"
    tmux = ["tmux", "-L", sock, "-f", "/dev/null"]
    log, go = tmp_path / "pane.log", tmp_path / "go"
    script = tmp_path / "program.py"
    script.write_text(
        f"import os, time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
        + program
        + "\nsys.stdout.flush()\ntime.sleep(120)\n"
    )

    def run(*args: str) -> str:
        return subprocess.run(
            [*tmux, *args], check=True, capture_output=True, text=True, timeout=10
        ).stdout

    try:
        run("new-session", "-d", "-s", "t", "-x", "80", "-y", "24", "sleep", "600")
        pane = run(
            "new-window", "-d", "-P", "-F", "#{pane_id}", "-t", "t:", sys.executable, str(script)
        ).strip()
        run("pipe-pane", "-o", "-t", pane, f"exec cat >> {log}")  # its pipe is open on return
        go.touch()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            screen = run("capture-pane", "-p", "-t", pane)
            if "END-OF-DEMO" in screen and log.exists() and b"END-OF-DEMO" in log.read_bytes():
                break
            time.sleep(0.1)
        else:
            pytest.fail("the program in the pane did not finish")
        # END-OF-DEMO is the program's last output: the log and tmux's screen have all of it
        everything = run("capture-pane", "-p", "-S", "-", "-t", pane)
        screen = run("capture-pane", "-p", "-t", pane)
        return log.read_bytes(), _trim(screen.split("\n")), _trim(everything.split("\n"))
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, timeout=10)


def _trim(lines: list[str]) -> list[str]:
    lines = [line.rstrip(" ") for line in lines]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def rendered(data: bytes, chunk: int | None = None, *, fast: bool = True) -> list[str]:
    renderer = ScreenRenderer()
    renderer.fast = fast
    for i in range(0, len(data), chunk or max(1, len(data))):
        renderer.feed(data[i : i + (chunk or len(data))])
    return renderer.lines()


def read_bytes() -> int:
    """Bytes this process has read so far (read syscalls: /proc/self/io's rchar)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def test_inline_tui_renders_what_tmux_shows(tmp_path: Path) -> None:
    data, _screen, everything = record_in_tmux(tmp_path, INLINE)
    lines = rendered(data)
    assert lines == everything  # tmux's scrollback and screen, line for line
    assert "static line 0: done" in lines and lines[-1] == "END-OF-DEMO"
    assert (
        lines.index("static line 39: done")
        < lines.index("row 5")
        < lines.index("cleared (home, ED 0)")
    )
    assert sum("thinking" in line for line in lines) == 1  # the final frame, not every frame
    assert "\u2502 thinking  60s      \u2502" in lines
    assert not any("Gi=31" in line or "544e" in line or line.endswith("u") for line in lines)
    old = strip_ansi(data.decode()).split("\n")
    assert sum("thinking" in line for line in old) == 61  # what stripping escapes showed


def test_fullscreen_tui_renders_its_final_screen(tmp_path: Path) -> None:
    data, screen, _everything = record_in_tmux(tmp_path, FULLSCREEN)
    lines = rendered(data)
    assert lines == ["$ claude", *screen]  # the shell line before the TUI, then its screen
    assert "Thinking\u2026 (119s)" in lines[-6]
    assert lines[-1].startswith(" END-OF-DEMO")
    assert [line for line in lines if "transcript row" in line] == [
        f"  transcript row {i} of frame 2" for i in range(12)
    ]
    old = strip_ansi(data.decode()).split("\n")  # every row drawn by cursor moves was lost
    assert not any("transcript row" in line for line in old)


def test_chunks_and_the_plain_line_shortcut_change_nothing(tmp_path: Path) -> None:
    data = (
        b"".join(b"line %d \x1b[1m%s\x1b[0m\r\n" % (i, b"x" * (i % 90)) for i in range(300))
        + b"progress 50%\rprogress 100%\r\n\ttab\r\n"
        + "wide \u6f22\u5b57 \u273b \u2500 e\u0301\r\n".encode()
        + b"\x1b[3A\x1b[2Kredrawn\r\n\r\n\r\n"
        + b"y" * 1500
        + b"\r\n\x1b[?1049h\x1b[Hframe\x1b[5;3Hxx\x1b[?1049lafter\r\npartial"
    )
    whole = rendered(data)
    assert whole == rendered(data, fast=False)  # as pyte alone renders it
    for chunk in (1, 7, 4096):
        assert rendered(data, chunk) == whole
    # the alternate screen's last frame stays in the log when the TUI leaves it
    assert whole[-7:] == ["frame", "", "", "", "  xx", "after", "partial"]
    # the cursor went up 3 lines: "redrawn" replaced the progress line, the others stay
    assert whole[-12:-9] == ["redrawn", "        tab", "wide \u6f22\u5b57 \u273b \u2500 \u00e9"]
    assert whole[-9] == "y" * 1000 and whole[-8] == "y" * 500  # wider than the screen: wraps


def test_plain_line_output_reads_as_before() -> None:
    data = b"\x1b[36msim-agent\x1b[0m factory API-1: ok\r\n" + b"".join(
        b"[%04d] compiling module_%d.py ... \x1b[1mok\x1b[0m\r\n" % (i, i) for i in range(500)
    )
    before = strip_ansi(data.decode()).split("\n")[:-1]
    assert rendered(data) == before
    long_line = b"x" * 900 + b" end\r\n"
    assert rendered(long_line) == [long_line.decode().strip()]  # never wrapped


def test_follower_feeds_only_new_bytes_and_matches_a_fresh_render(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    log.write_bytes(b"")
    follower = LogFollower(log)
    shown: list[str] = []

    def poll() -> None:
        update = follower.poll()
        if update is not None:
            shown[update.keep :] = update.lines

    poll()
    with log.open("ab") as fh:
        for i in range(30):
            fh.write(b"line %d\r\n" % i)
            fh.flush()
            poll()
        assert shown == [f"line {i}" for i in range(30)]
        fh.write(b"line 30\r\n")
        fh.flush()
        update = follower.poll()
        assert update is not None and update.keep == 30 and update.lines == ["line 30"]
        shown[update.keep :] = update.lines
        fh.write(b"\x1b[?1049h\x1b[H")
        for n in range(50):
            fh.write(b"\x1b[1;1H\x1b[2Kbox\x1b[2;1H\x1b[2Kcount %d\x1b[24;1Hstatus" % n)
            fh.flush()
            if n % 7 == 0:
                poll()
        poll()
        assert shown[-24:] == ["box", "count 49", *[""] * 21, "status"]
        update_pos = follower.pos
        fh.write(b"\x1b[2;1H\x1b[2Kcount 50")
        fh.flush()
        update = follower.poll()
        assert update is not None and update.lines[0] == "count 50"
        assert update.keep == len(shown) - 23  # only the row that changed, and below it
        assert follower.pos == update_pos + len(b"\x1b[2;1H\x1b[2Kcount 50")
        shown[update.keep :] = update.lines
    assert shown == render_tail(log)
    assert shown[:31] == [f"line {i}" for i in range(31)] and shown[-1] == "status"


def test_follower_starts_over_when_the_log_is_replaced_or_floods(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    log.write_bytes(b"one\r\ntwo\r\n")
    follower = LogFollower(log, max_bytes=4096)
    assert follower.poll() is not None and follower.poll() is None
    log.write_bytes(b"new\r\n")  # shorter: a new file
    update = follower.poll()
    assert update is not None and update.keep == 0 and update.lines == ["new"]
    with log.open("ab") as fh:
        fh.write(b"".join(b"flood %d\r\n" % i for i in range(2000)))
    update = follower.poll()
    assert update is not None and update.keep == 0
    assert update.lines[0].startswith("[... ") and update.lines[-1] == "flood 1999"


def test_a_huge_log_renders_its_tail_with_a_marker(tmp_path: Path) -> None:
    log = tmp_path / "huge.log"
    with log.open("wb") as fh:
        fh.truncate(200 << 20)  # 200 MB (sparse), then an escape sequence cut by the window
        fh.seek(0, os.SEEK_END)
        fh.write(b"\x1b[38;5;174m" + b"".join(b"tail line %d\r\n" % i for i in range(100)))
    read_before = read_bytes()
    lines = render_tail(log, max_bytes=1500)
    # only the tail is read, not the 200 MB before it (the cost: bench/bench_logtail.py)
    assert read_bytes() - read_before < 1 << 20
    assert lines[0] == "[... 200.0 MiB of earlier output not shown; `hatchctl logs --raw` has all]"
    assert lines[-1] == "tail line 99" and all(x.startswith("tail line ") for x in lines[1:])
    assert tail_lines(log, 3) == ["tail line 97", "tail line 98", "tail line 99"]


def test_tail_lines_and_last_line_of_a_tui(tmp_path: Path) -> None:
    log = tmp_path / "tui.log"
    frames = b"".join(
        b"\x1b[H\x1b[2Kheader\x1b[10;1H\x1b[2Kcounter %d\x1b[24;1H\x1b[2K? for shortcuts" % n
        for n in range(3000)
    )
    log.write_bytes(b"start\r\n\x1b[?1049h" + frames)
    lines = tail_lines(log, 40)  # a window that grows, up to the whole screen
    assert lines[0].startswith("[... ") and lines[1] == "header" and lines[10] == "counter 2999"
    assert lines[-1] == "? for shortcuts" and len(lines) == 25
    assert last_line(log) == "? for shortcuts"
    with log.open("ab") as fh:
        fh.write(b"\x1b[24;1H\x1b[2Kesc to interrupt")
    assert last_line(log) == "esc to interrupt"


def test_stable_printer_prints_settled_lines_once() -> None:
    printer = StablePrinter(0, ["a"])
    assert printer.step(0, ["a", "b"]) == []  # b may still change
    assert printer.step(0, ["a", "b", "c"]) == ["b"]
    assert printer.step(0, ["a", "b", "c"]) == ["c"]
    spinner = ["a", "b", "c", "thinking |"]
    assert printer.step(0, spinner) == []
    assert printer.step(0, [*spinner[:3], "thinking /"]) == []  # never settles: never printed
    assert printer.step(0, ["a", "B", "c", "done"]) == []
    assert printer.step(0, ["a", "B", "c", "done"]) == ["B", "done"]  # a redraw, settled
    assert printer.step(5, ["x"], restarted=True) == []
    assert printer.step(5, ["x"]) == ["x"]


@pytest.mark.skipif(not Path("/usr/bin/tmux").exists(), reason="needs tmux")
def test_logs_command_renders_and_follows(tmp_path: Path) -> None:
    from tests.tui.test_app import fixed_project

    project, _store = fixed_project(tmp_path)
    log = project.root / ".hatch/logs/factory/API-1.factory.i1.a1.log"
    log.write_bytes(
        b"before\r\n\x1b[?1049h\x1b[2J\x1b[H"
        + b"".join(b"\x1b[H\x1b[2Kframe %d\x1b[3;1H\x1b[2Kstatus ok" % n for n in range(200))
    )
    cmd = [sys.executable, "-m", "hatchctl", "-C", str(project.root), "logs", "API-1"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "before\nframe 199\n\nstatus ok\n"
    raw = subprocess.run([*cmd, "--raw"], capture_output=True, timeout=30)
    assert raw.stdout == log.read_bytes()
    follow = subprocess.Popen([*cmd, "--follow"], stdout=subprocess.PIPE, text=True)
    try:
        assert follow.stdout is not None
        assert [follow.stdout.readline() for _ in range(4)][-1] == "status ok\n"
        with log.open("ab") as fh:
            fh.write(b"\x1b[?1049l")
            fh.write(b"".join(b"after %d\r\n" % i for i in range(3)))
        assert [follow.stdout.readline() for _ in range(3)] == [f"after {i}\n" for i in range(3)]
    finally:
        follow.kill()
        follow.wait(10)


def test_a_recorded_claude_code_session_reads_as_its_transcript() -> None:
    data = zlib.decompress(base64.b85decode(CLAUDE_CODE_LOG))
    old = strip_ansi(data.decode()).split("\n")
    assert sum(not line.strip() for line in old) > 100 and len(old) < 120  # the reported bug
    lines = rendered(data)
    assert lines[1:3] == [
        " \u2590\u259b\u2588\u2588\u2588\u259b\u2588   Claude Code v2.1.332",
        "\u259d\u259c\u2588\u2588\u2588\u2588\u2588\u2588\u2580  Opus 5.5 \u00b7 API Usage Billing",
    ]
    assert "\u25cf Approved: hello.txt is there and the acceptance command passes." in lines
    assert "  - Do not change code." in lines and lines[-1].endswith("medium \u00b7 /effort")
    assert not any(lines[i : i + 3] == ["", "", ""] for i in range(len(lines)))


# A real Claude Code (classic renderer) pane log, recorded by hatchctl's pipe-pane while the CLI
# ran a QA turn against a scripted API: zlib, then base85.
CLAUDE_CODE_LOG = (
    "c-rk+NpBlR7Cr_D;9t;}0x^lCF-7*uMH<DB<e-v?V|!u;M!+$MVs}w&i@m6;T8btMd<t?(3?xtvV*^GGxz1sb<S>T-"
    "`YHS+^QwAbk)kA0RssW|OtZU7-"
    "S5@gzWQFZc84VODB6uYy24OD9S)hBP#U6yh8|65f;`^~S2*hXq0a`0aguO9+(SdcIO2XlQ4}IR@EHn-"
    "JMcqVMJ&n&Ky>I15S*n<Ji-SQx$qqG-"
    "BNrFz0c8+KO7>S9IN`t9`QpI(ocCVXA{+V>X!ocDUI1|kvHDdnp!8(T3Y9p=?vueP<-pUEw6OT5Jw}s{#&Yb-f_g2y=ey8"
    "V|{b<{J&^-"
    "?3g#Sj@8<9HjSnopwY=Qtz*l}Mld@0_vqy7;v>$rj$vZBza79`;>!p!NpRN2LYmewZMee(Rhd}RZUl#B&8S(HDWALn28=b"
    "1PF{>oo~t^)RzFgWJbhZ|E`;8TQwC#A?9?1kXyDUd;b7tI`|rcCi9cp!52j;Tcn1Oi5t^YLN%b$ZP7@brlS=BNr$5y>WxP"
    "weG2{gGx^WT(G4Cc65`wZW(d#hsM6cHdgu8?KQIza+h%u|b_wJoL_tuR<ZT876HLa%VpwWx}pyJXpf={9pk%Y?l|6?1Hg@"
    "%x#QGz&O`zV*YfgUPXXw~O5A>4<2HL8ekPGOeFSgT3>NIG&-Kf30hnJN^kKB9*{J(5QCiOZwp7-"
    "~|u3;B7C?fD!P{@Z|p2;zEtEWE!S_1BXq;>D$@UtpD@vi*v&L#w@nh$_$2&0}RIDSy6-"
    "dW2C=fQZ$19b)%vleR6(A<dp+wC!HI1>x6qN4Hz8mglyJUIc6b$3C3!=zxS?bO_MK(jXuJJK$KtFZQP5r}-"
    "Q^k2n3Oa6>(xUClS@`K)SBSQKukre3D<vkC(>0qKHm4AQ)^ArieJN}}s~a8=2*RbVuUhExpYip5Y_A26Qly-cN$4@&}1nU"
    "LjzwL=Pq3u$l>_?(SpT~m>CDvr}~dJU7b8a>i59m}>{YBU?RZqgp<yOesS*RqIRc`U3KVM{1WhjK2TRUpwJ;WFRMX(c$xA"
    "IfL+FNB|jl>s1*bXK<yzZ0T6l>r?NqZ<E|OU*@^b;F3$X+K=55|%+f23MlqaSjOk6ajKqzF5qimpJy11vs%BidqyYSuBC="
    ";CIyh$C|ebh0ZA|(*QAYEQn7wa3xz`lb~fQ({+dJwJ>iTeUyf>#E9$Cn8RuYoD#qb%69|pB{W9s2WUmc5cL7j1>pojw=$0"
    "Nv`gktNr@+QdVar;R>iU|&*ohNYqj^@-M+mhD9?P$ksBomb$Lh`1A^{GF-5E8{MQiJikSZ|7<5T|`qI&7t+I=I_I88-"
    "{E!P!xF?+I(b}t}&udZ+j|R}89OoR=i$Z!$mGK&w_b34xfC&2ggL`*Ng2bb_+0g{=nJ+glXGaI*LSnSIl~<xl2V|Nh8P)k"
    "|uS%3i43-"
    "{J@AHH{fvU_16Li=ftQHxS5Ts%QdNN@7N8k=YQIC=++^bX<VA{1>?Q!*5@p=v`&nH}Wg^>l5x+|EJXz#m_F|jmSP8Tgq?#"
    "~jf3P`#-"
    "Pf}D)_QIllw(uQF4rvI1g2q?rT+3b+I`;3M{;58N7obN!eW`VtqT<bFuyji9f^xgWFoMyyKf_1sG;r@&6b7s&7LI8W_)Op"
    "sT$>J#Lb$<DcUeY1JcA(%2h{UZSZJEM+{|g3xK8^(0{B>+xeMppaJ&u2of~k{fDvO`k%m^;!0+>$ob&{=yT|U3uA$Rk(de"
    "sZau-GJr?7k*>jNqFmF8oE_ILCHt#d2Y9ycA`*u3?I)^X)toZ0wGtaY)!Wf@hrWmFI0KiN8{@-460-"
    "!kpZZTQjt2_`hS+_W>q1MslesQcmB)JC1K+7?zD7U*rNR<9;$DC!n{%xH37u22us9`vYa5Jme8${Fc(Q@BBAYd3`RWJ1H4"
    "qk}AShcZ{V%MW1%NYa>3dQ61_#q4rI<y_>Z-t!+}iZ)hUtp2;`@yz|-"
    "=6RKEG42pHkQAh3l5*c~eO)X$a>G&3#V^H9n}Oec8xA%W%vK1%>kt>)#2LdC$cF{X1*>hGGhGO^iN|bFcy~ulCp7xzH+1^"
    ")5%GD3i^Uz8ZOZMX?HMn~%c2oXfoi$?I4gYj6Z$ZUh7d&=xN*Q{tNb&9&vb-xWR}j6@GPs@Y?jr%gy}27^ejx3RmCG&RT;"
    "L*suBR{7#L6lj*h&+Y2gx0Kv^pTQ5^%SNHCS{U9*8F(B&GixI`5P2HGmJKrbAM?6D={=`6#z?<NZt?rQ=P?$eO1&5vM)UL"
    "v4j3kb{g=Vhz5(|}!{%NHhwd~b0R?v#tz4qO8~0fm(4ne~-"
    "kRle0QWK8@Jz+JHO)tdz*oC833LHJR8VVbzKe~CMb;7$%XOE;Ojst-"
    "!UK^fd21!~ZFFf&QrW{{I<C_%p)jLb<+;smDGM=NK$Z@AgPvYT$<aThLOv+@?JR3&2OjkuhpY{uaXey=p-"
    "B~HA>;FpGh%br`}NZEIbM=cOizM}w5Htq;jqG5JSJk`cZa2~g^GJ&&J(NLRO9sIj?Cc&@Bknr{JBe@z$jx;}(gSq-"
    "{fu2i#pt@i-s4bneBvEHbl&RMAU%`4u)p&kATILnVl{uSSSt<;z-"
    "i=U{@;K#d<5qQn&eJj`z<oPM(+%Z~moNV&C!ykv0^HQVa0PO7Jbt+%1DL;Hf%7(&sLE<HJa&aHaUr*k38J~AEz2^$xXfiw"
    "G{JO=754#;;_)VuQEVcWiD<X*RPrsb-"
    ";)u7U!)Xu(bg{%H1n_6&f#m%|0g248}0c(mZ*pNk=Sg*xdr0&7HV%;4!ZxLQaERJ$5e^uZ6l5+_<#Nv9RU"
)
