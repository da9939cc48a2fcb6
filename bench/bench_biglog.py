"""Drill-down on a 1 GiB agent log: from starting it until the log's last line is on screen.

A real 1 GiB log (real bytes, not sparse: ~16M numbered agent-like lines of ~68 bytes with ANSI
colour, CR LF as a pane log has them; ``--shape tui``: a full-screen TUI redrawing in place) is written once under /tmp and shared by every repetition; it is the
log of the one run of the one task of a small real project (store written through hatchctl's own
transactions). Targets, each in a 160x45 pane of its own private tmux server (the harness of
bench/tmuxpane.py: no config, xterm-256color, read through a tmux control-mode client):

- `hatchctl`: the control room (``hatchctl --read-only``) on that project, on its dashboard;
  the clock starts at Enter on the task (the drill-down, Log tab);
- `baseline` (with ``--baseline DIR``): the same, run from another source tree (e.g. HEAD,
  exported with ``git archive HEAD | tar -x -C DIR``), for before/after in one run;
- `tl` (toolong, if installed: ``.venv/bin/tl``, ``--tl PATH`` or on PATH; else skipped; it pins
  Textual < 0.59, so give it a venv of its own): the clock starts at Enter in a pane that then
  execs ``tl LOG``;
- `tail`: the same with ``tail -n 40 LOG`` (the floor).

Per target and repetition: from writing `send-keys Enter` to the `%output` after which
`capture-pane` shows the log's last line (for hatchctl: on the drill-down, not the dashboard's
preview), and the process's peak RSS (VmHWM) once it is quiet. The targets take turns in each
repetition. Then, for hatchctl, Tab (into the log) and Home: the time until the page before
its first render (``logfile.PAGE_BYTES``, read and rendered on demand) is on screen.
``--profile OUT`` runs py-spy on the control room during the first drill-down.
Usage: bench_biglog.py [--reps 3] [--size-mib 1024] [--shape lines|tui] [--log PATH]
[--baseline DIR] [--tl PATH] [--profile OUT] [--no-page]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_logtail import frame
from bigstore import make_project
from common import ROOT, compile_tree, load_average, machine
from tmuxpane import ESCAPE, Pane, press, settle

from hatchctl import logsetup
from hatchctl.project import Project
from hatchctl.runtime.logfile import PAGE_BYTES

TASK = "BIG-001"
LOG = f".hatch/logs/factory/{TASK}.log"
# What an agent's pane log holds: numbered, coloured tool lines, each ended by CR LF (~63 bytes)
FORMS = [
    b"\x1b[2m%09d\x1b[0m \x1b[36mRead\x1b[0m src/mod_%02d.py \x1b[2m... 120 lines\x1b[0m\r\n",
    b"\x1b[2m%09d\x1b[0m \x1b[35mEdit\x1b[0m src/svc_%02d.py \x1b[32m+12\x1b[0m \x1b[31m-3\x1b[0m\r\n",
    b"\x1b[2m%09d\x1b[0m \x1b[33mBash\x1b[0m pytest test_%02d \x1b[1;32m14 passed\x1b[0m\r\n",
    b"\x1b[2m%09d\x1b[0m   thinking about case %02d, next: the parser\r\n",
]
LAUNCH = "import os, sys; print('press enter', flush=True); sys.stdin.readline(); os.execvp(sys.argv[1], sys.argv[1:])"


def write_log(path: Path, size: int) -> tuple[int, str]:
    """``size`` bytes of real log (cut at a line end); the number of lines and the last one's
    number as the screen shows it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = total = 0
    with path.open("wb") as fh:
        while total < size:
            chunk = b"".join([FORMS[i & 3] % (i, i % 97) for i in range(n, n + 65536)])
            last = total + len(chunk) >= size
            if last:
                chunk = chunk[: chunk.rfind(b"\n", 0, size - total) + 1]
            fh.write(chunk)
            total += len(chunk)
            n += chunk.count(b"\n")
            if last:
                break
    return n, f"{n - 1:09d}"


def write_tui(path: Path, size: int) -> tuple[int, str]:
    """``size`` bytes of a Claude Code-like full-screen TUI redrawing in place (bench_logtail's
    frames: no line ends at all); the frames and what the last one shows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("wb") as fh:
        fh.write(b"$ claude\r\n\x1b[?1049h\x1b[2J")
        while fh.tell() < size:
            fh.write(b"".join(frame(i) for i in range(n, n + 512)))
            n += 512
    return n, f"Thinking\u2026 ({n - 1}s)"


def last_number(path: Path) -> tuple[int, str]:
    """For a log given with --log: its line count is not counted (the last line's number is)."""
    with path.open("rb") as fh:
        fh.seek(max(0, fh.seek(0, os.SEEK_END) - 4096))
        tail = ESCAPE.sub("", fh.read().decode("utf-8", "replace")).strip().splitlines()
    number = tail[-1].split()[0]
    return int(number) + 1, number


def project(root: Path, log: Path | None, size: int, shape: str) -> tuple[int, str]:
    """The project, its task and run; the log written (or linked from ``log``) at the run's path."""
    make_project(root, "biglog")
    (root / "specs" / f"{TASK}.md").write_text(
        f"---\nid: {TASK}\ntitle: A task whose agent wrote 1 GiB\n---\nDo it.\n"
    )
    proj = Project.find(root)
    proj.paths.ensure()
    store = proj.open_store()
    try:
        with store.tx() as tx:
            tx.insert_task(
                TASK, title="A task whose agent wrote 1 GiB", spec_path=f"specs/{TASK}.md"
            )
            tx.transition_task(TASK, "pending", "active", phase="factory", iteration=1, attempt=1)
            run = tx.insert_run(
                task_id=TASK,
                role="factory",
                iteration=1,
                attempt=1,
                window_name=f"{TASK}-factory",
                log_path=LOG,
                stop_path=f".hatch/io/{TASK}/factory.i1/{TASK}.stop",
                summary_path=f".hatch/io/{TASK}/factory.i1/summary.json",
                prompt_path=f".hatch/prompts/{TASK}.md",
            ).id
            tx.transition_run(run, "starting", "running", pane_id="%0", pane_pid=1)
            tx.transition_run(run, "running", "stopped", exit_code=0)
            tx.transition_run(run, "stopped", "succeeded", reason="completed")
            tx.transition_task(TASK, "active", "completed", phase=None)
    finally:
        store.close()
    target = root / LOG
    if log is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(log, target)  # the same inode: removing the project leaves the file
        return last_number(log)
    t0 = time.monotonic()
    lines, last = (write_tui if shape == "tui" else write_log)(target, size)
    print(
        f"log: {size / (1 << 20):.0f} MiB, {lines:,} {'frames' if shape == 'tui' else 'lines'}, "
        f"written in {time.monotonic() - t0:.0f}s"
    )
    return lines, last


def text(lines: list[str]) -> list[str]:
    return [ESCAPE.sub("", line) for line in lines]


def status(pid: int, key: str) -> int:
    """A /proc/PID/status figure in KiB (VmHWM: peak RSS), 0 when gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def quiet(pane: Pane, timeout: float = 60.0) -> None:
    """Wait (bounded) until the pane's process uses under 5 % of a core over half a second."""
    deadline = time.monotonic() + timeout
    before = pane.cpu()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = pane.cpu()
        if now - before < 0.025:
            return
        before = now


def drill(
    name: str,
    argv: list[str],
    cwd: Path,
    shows: object,
    ready: object,
    timeout: float,
    profile: Path | None = None,
    paged: object = None,
) -> tuple[float | None, int, int, float | None]:
    """One target: a pane, wait for ``ready``, Enter, the seconds until ``shows``; peak RSS in
    KiB before Enter and after (once quiet); with ``paged``: then Tab (into the log) and Home,
    the seconds until the page before the first render is on screen."""
    pane = Pane(name, argv, cwd)
    spy = None
    try:
        settle(pane, ready, timeout=60)
        time.sleep(0.5)  # the dashboard's first refresh (its previews) is done
        quiet(pane, 20)
        before = status(pane.pid, "VmRSS")
        if profile is not None:
            spy = subprocess.Popen(
                [
                    str(ROOT / ".venv/bin/py-spy"),
                    "record",
                    "-p",
                    str(pane.pid),
                    "-d",
                    "10",
                    "-r",
                    "100",
                    "-f",
                    "raw",
                    "--nonblocking",
                    "-o",
                    str(profile),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)  # py-spy attached
        took = press(pane, "Enter", True, shows, timeout)
        quiet(pane)
        back = None
        if paged is not None and took is not None:
            pane.command("send-keys -t main Tab")
            time.sleep(0.3)  # the focus moved (nothing on screen says it)
            back = press(pane, "Home", True, paged, timeout)
            quiet(pane)
        peak = status(pane.pid, "VmHWM")
        if took is None:
            print("\n".join(text(pane.screen())[-12:]))
        return took, before, peak, back
    finally:
        if spy is not None:
            spy.wait(timeout=30)
        pane.close()


def find_tl(given: str | None) -> str | None:
    for candidate in (given, shutil.which("tl"), str(ROOT / "tools/toolong-venv/bin/tl")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument(
        "--shape", choices=["lines", "tui"], default="lines", help="tui: a TUI redrawing in place"
    )
    parser.add_argument("--log", type=Path, help="use this log (kept) instead of writing one")
    parser.add_argument("--baseline", type=Path, help="another hatchctl source tree to compare")
    parser.add_argument("--tl", help="toolong's tl (default: .venv/bin/tl, then PATH)")
    parser.add_argument("--profile", type=Path, help="py-spy raw output of the first drill-down")
    parser.add_argument(
        "--no-page", dest="page", action="store_false", help="skip the page-back (Tab, Home)"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="per drill-down, seconds")
    args = parser.parse_args()
    logsetup.configure(None)
    print(f"# bench_biglog · {machine()}")
    tl = find_tl(args.tl)
    if tl is None:
        print("tl (toolong) not found: its column is skipped (`pip install toolong` in a venv)")
    with tempfile.TemporaryDirectory(prefix="hatch-bench-biglog-", dir="/tmp") as tmp:
        root = Path(tmp) / "proj"
        given = args.log.resolve() if args.log else None
        lines, last = project(root, given, args.size_mib << 20, args.shape)
        log = root / LOG
        size = log.stat().st_size

        def on_drill(screen: list[str]) -> bool | None:  # the drill-down shows the last line
            plain = text(screen)
            drilled = any("attempt 1" in ln for ln in plain)
            return True if drilled and any(last in ln for ln in plain) else None

        def back(screen: list[str]) -> bool | None:  # Home: the page before the first render
            plain = text(screen)
            numbered = [ln for ln in plain if re.match(r"\s*\d{9} ", ln)]
            gone = not any(last in ln for ln in plain) and not any("[... " in ln for ln in plain)
            return True if gone and len(numbered) > 10 else None

        def anywhere(screen: list[str]) -> bool | None:
            return True if any(last in ln for ln in text(screen)) else None

        def dashboard(screen: list[str]) -> bool | None:
            return True if any(TASK in ln for ln in text(screen)) else None

        def prompt(screen: list[str]) -> bool | None:
            return True if any("press enter" in ln for ln in text(screen)) else None

        hatch = [sys.executable, "-m", "hatchctl", "-C", str(root), "--read-only"]
        targets: list[tuple[str, list[str], object, object]] = []
        if args.shape == "lines":  # a TUI's log has no line ends: tail and tl would show it all
            tail = [sys.executable, "-c", LAUNCH, "tail", "-n", "40", str(log)]
            targets.append(("tail", tail, anywhere, prompt))
        if args.baseline is not None:
            env = ["env", f"PYTHONPATH={compile_tree(args.baseline.resolve())}"]
            targets.append(("baseline", [*env, *hatch], on_drill, dashboard))
        targets.append(("hatchctl", hatch, on_drill, dashboard))
        if tl is not None and args.shape == "lines":
            targets.append(("tl", [sys.executable, "-c", LAUNCH, tl, str(log)], anywhere, prompt))
        print(
            f"{size / (1 << 30):.2f} GiB, {lines:,} {'frames' if args.shape == 'tui' else 'lines'}; "
            f"last line {last}; {args.reps} reps; "
            f"load average {load_average()}"
        )
        pages: list[float] = []
        results: dict[str, list[tuple[float | None, int, int]]] = {t[0]: [] for t in targets}
        for rep in range(args.reps):
            for name, argv, shows, ready in targets:
                prof = args.profile if rep == 0 and name == "hatchctl" else None
                page = back if name == "hatchctl" and args.page and args.shape == "lines" else None
                took, before, peak, paged = drill(
                    name, argv, root, shows, ready, args.timeout, prof, page
                )
                results[name].append((took, before, peak))
                if paged is not None:
                    pages.append(paged)
                ms = f"{took * 1000:.0f} ms" if took is not None else "not shown"
                rss = f"RSS {before >> 10} MiB before, peak {peak >> 10} MiB" if peak else "exited"
                print(
                    f"  rep {rep + 1} {name:<9} {ms:>10}  {rss}  (load {load_average()})",
                    flush=True,
                )
        print(
            f"drill-down to the last line of a {size / (1 << 30):.2f} GiB log, medians of "
            f"{args.reps} (load average now {load_average()}):"
        )
        floor = [t for t, _, _ in results.get("tail", []) if t is not None]
        medians = {
            name: statistics.median(ok)
            if (ok := [t for t, _, _ in runs if t is not None])
            else None
            for name, runs in results.items()
        }
        for name, runs in results.items():
            med = medians[name]
            if med is None:
                print(f"  {name:<9} never showed the last line within {args.timeout:g}s")
                continue
            peak = max(p for _, _, p in runs) >> 10
            line = f"  {name:<9} median {med * 1000:8.0f} ms  peak RSS " + (
                f"{peak} MiB" if peak else "-"
            )
            if floor and name != "tail":
                line += f"  {med / statistics.median(floor):6.1f}x tail"
            if (tl_med := medians.get("tl")) is not None and name in ("hatchctl", "baseline"):
                line += f"  tl/{name} {tl_med / med:.1f}x"
            print(line)
        if pages:
            print(
                f"  hatchctl page back (Tab, Home: the {PAGE_BYTES >> 10} KiB before the first "
                f"render on screen): median {statistics.median(pages) * 1000:.0f} ms, "
                f"max {max(pages) * 1000:.0f} ms, n={len(pages)}"
            )
        log.unlink()  # the 1 GiB (a --log is only unlinked from the project, not deleted)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
