"""What bench_launch.py's targets share: the benchmark's repository (hatch.toml, N specs),
bounded polling, tmux and store queries, the supervisor's stop, formatting."""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

CONFIG = """\
[project]
name = "{name}"
base_ref = "main"

[limits]
max_active = {active}
{tick}run_timeout = "30m"
idle_timeout = "20m"

[agents.factory]
command = ["bash", "-c", "exec sleep 600", "agent"]  # the prompt argument: ignored
{sandbox}
[agents.qa]
command = ["bash", "-c", "exec sleep 600", "agent"]  # the prompt argument: ignored
{sandbox}
"""

TIMEOUT = 300.0  # every wait is bounded
LAST_CPU = [0.0]  # the CPU of the last ``timed`` command, its waited children's included (s)


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, timeout=60)


def make_repo(
    root: Path, name: str, agents: int, sandbox: str | None, tick: str | None = None
) -> None:
    """The same repository for every target: a README, hatch.toml and N specs, one commit."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "bench@example.invalid")
    git(root, "config", "user.name", "bench")
    (root / "README.md").write_text("bench project\n")
    line = f'sandbox = "{sandbox}"\n' if sandbox else ""
    ticks = f'tick = "{tick}"\n' if tick else ""
    (root / "hatch.toml").write_text(
        CONFIG.format(name=name, active=agents, sandbox=line, tick=ticks)
    )
    specs = root / "specs"
    specs.mkdir()
    for i in range(agents):
        tid = f"L{i:03d}"
        (specs / f"{tid}.md").write_text(
            f"---\nid: {tid}\ntitle: Launch task {i}\npriority: {agents - i}\n"
            f"files: [src/{tid}.py]\n---\nWait.\n"
        )
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "bench project")
    with (root / ".git" / "info" / "exclude").open("a") as f:
        f.write(".hatch/\n.bench/\n")


def poll(check: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> float:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise TimeoutError(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.05)
    return time.time()


def tmux_panes(socket: str) -> int:
    out = subprocess.run(
        ["tmux", "-L", socket, "list-panes", "-a", "-F", "#{pane_id} #{pane_current_command}"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return len(out.stdout.splitlines())  # every pane of the server (hatchctl's: its agents')


def kill_tmux(socket: str) -> None:
    """The benchmark's tmux server ended and its socket file removed (kill-server leaves it in
    the socket directory: one file per target and repetition otherwise)."""
    from hatchctl.runtime.tmux import Tmux

    Tmux(socket).kill_server()
    base = Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
    (base / socket).unlink(missing_ok=True)


def broken_worktrees(repo: Path, under: Path) -> list[str]:
    """Worktrees whose admin directory (.git/worktrees/NAME) is gone: git cannot use them."""
    if not under.is_dir():
        return []
    admin = repo / ".git" / "worktrees"
    return sorted(
        d.name for d in under.iterdir() if (d / ".git").is_file() and not (admin / d.name).is_dir()
    )


FAILED = "FROM events WHERE kind IN ('job_failed', 'infra_failure')"
QUERIES = {  # what the store says once the Nth run is running (or a launch failed)
    "running": "SELECT running_at FROM runs WHERE running_at IS NOT NULL ORDER BY running_at",
    "states": "SELECT state, reason, COUNT(*) FROM runs GROUP BY state, reason",
    "events": "SELECT kind, COUNT(*) FROM events WHERE kind NOT IN ('run_state', 'task_state', "
    "'task_started', 'worktree_ready', 'supervisor_started', 'spec_added') GROUP BY kind",
    "steps": "SELECT kind, MIN(at), MAX(at) FROM events WHERE kind IN ('supervisor_started', "
    "'task_started', 'worktree_ready', 'run_created') GROUP BY kind",
    "failures": f"SELECT data {FAILED} LIMIT 4",
    "sandbox": "SELECT DISTINCT json_extract(data, '$.sandbox') FROM events "
    "WHERE kind = 'run_state' AND to_state = 'running'",
}


def done(db: Path, agents: int) -> bool:
    """N runs reached `running`, or a job or launch failed (a failed rep: not timed)."""
    if not db.exists():
        return False
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        up = conn.execute("SELECT COUNT(*) FROM runs WHERE running_at IS NOT NULL").fetchone()
        bad = conn.execute(f"SELECT COUNT(*) {FAILED}").fetchone()
        return int(up[0]) >= agents or int(bad[0]) > 0
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def stop_supervisor(proc: subprocess.Popen[str], root: Path, env: dict[str, str]) -> None:
    """`hatchctl down` as a user stops it; SIGTERM, then SIGKILL, if it does not exit."""
    down = [sys.executable, "-m", "hatchctl", "-C", str(root), "down"]
    subprocess.run(down, cwd=root, env=env, capture_output=True, timeout=120, check=False)
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            proc.send_signal(sig)
        try:
            proc.wait(timeout=60)
            return
        except subprocess.TimeoutExpired:
            continue


def children_cpu() -> float:
    """CPU seconds of this process's children it has waited for (their own waited children
    included): what ``timed`` reports of a command."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(argv: list[str], cwd: Path, what: str) -> tuple[float, float]:
    """Run ``argv`` (no TMUX in its environment); its start and end (wall clock). Its CPU (and
    its waited children's: git, tmux clients; not a tmux server's) is in ``LAST_CPU[0]``."""
    env = {k: v for k, v in os.environ.items() if k != "TMUX"}
    c0 = children_cpu()
    t0 = time.time()
    out = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    t1 = time.time()
    LAST_CPU[0] = children_cpu() - c0
    if out.returncode != 0:
        raise RuntimeError(
            f"{what} exited {out.returncode}: {out.stderr[-2000:]}{out.stdout[-500:]}"
        )
    return t0, t1


def num(r: dict[str, object], key: str, default: float | None = None) -> float:
    value = r.get(key, default)
    assert isinstance(value, (int, float))
    return float(value)


def fmt(values: list[float], agents: int | None = None) -> str:
    ms = [v * 1000 for v in values]
    text = f"{statistics.median(ms):,.0f} ms ({min(ms):,.0f}-{max(ms):,.0f})".replace(",", " ")
    if agents:
        text += f", {statistics.median(ms) / agents:.0f} ms/agent"
    return text


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(the process's own CPU time, that of its children it has waited for: the scripts, git and
    tmux calls of a supervisor) in seconds, from /proc/PID/stat: the figure a loaded machine
    disturbs least (0, 0 when the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0, 0.0
    fields = text.rsplit(")", 1)[1].split()  # after "(comm)": state is field 3
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    tick = os.sysconf("SC_CLK_TCK")
    return (utime + stime) / tick, (cutime + cstime) / tick


# bash-same: hatchctl's own per-launch work (sandbox none) by a bash loop, no supervisor: the
# integration tip read once (hatchctl reads it once per burst), then per agent its scripts
# (create_worktree.sh, mount_readonly.sh), the launch ticket, and one tmux call opening the
# window (run_agent.sh, the reaper, the agent) with its log pipe, as the supervisor makes them.
# Args: SOCKET ROOT N SCRIPTS REAPER_ARGV... (engine/confinement.py reaper_prefix)
BASH_SAME = r"""
set -eu
T=(tmux -L "$1" -f /dev/null)
R=$2 N=$3 S=$4
REAPER=("${@:5}")
cd "$R"
"${T[@]}" new-session -d -s bench -x 200 -y 50
st=$R/.bench/state
mkdir -p "$st/runs" "$st/io" "$R/.bench/logs" "$R/.bench/plan"
tip=$(bash "$S/git/ensure_integration.sh" "$R" "$R/.bench/wt/_integration" hatch/integration main)
tip=${tip##*$'\n'}
for i in $(seq 1 "$N"); do
  d="$R/.bench/wt/T-$i"
  bash "$S/git/create_worktree.sh" --reset "$R" "$d" "T-$i" "$tip" >/dev/null
  bash "$S/mount/mount_readonly.sh" "$R/.bench/plan" "$d/project-state-readonly" >/dev/null
  printf 'run_id=%s task=T-%s role=factory\n' "$i" "$i" > "$st/runs/$i.ticket"
  "${T[@]}" new-window -d -t "bench:$((i + 1))" -c "$d" \
    -e HATCH_RUN_ID="$i" -e HATCH_TASK_ID="T-$i" -e HATCH_ROLE=factory \
    -e HATCH_ITERATION=1 -e HATCH_ATTEMPT=1 -e HATCH_WORKTREE="$d" \
    -e HATCH_STOP_FILE="$st/io/T-$i.stop" -e HATCH_STATE_DIR="$st" \
    bash "$S/agent/run_agent.sh" "${REAPER[@]}" sleep 600 \; \
    pipe-pane -o -t "bench:$((i + 1))" "exec cat >> '$R/.bench/logs/T-$i.log'"
  echo "$EPOCHREALTIME" >> "$R/.bench/times"
done
"""


def unmount_views(root: Path) -> None:
    """The read-only views bash-same mounted under ``root``, unmounted (lazily: a pane may still
    be in one)."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(f"{root}/"):
            subprocess.run(["umount", "-l", point], capture_output=True, timeout=30, check=False)
