"""Agents are untrusted and project paths are data: nothing hatchctl hands to tmux may become a
tmux format (``#{...}``, ``#(command)``) or a command separator (an argument ending with ``;``).
Real tmux on private sockets."""

from __future__ import annotations

import json
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hatchctl.project import Project
from hatchctl.runtime.gitrepo import exclude_hatch_paths
from hatchctl.runtime.tmux import (
    AGENT_SESSION,
    SUPERVISOR_SESSION,
    Tmux,
    escape_format,
    escape_separator,
)
from tests.conftest import git, make_repo
from tests.integration.conftest import (
    FAST_LIMITS,
    Projects,
    deep_merge,
    drain,
    spec_text,
    to_toml,
    wait_for,
)


def canary_name() -> str:
    return f"CANARY{uuid.uuid4().hex[:8]}"


def canaries(name: str, tmp: Path) -> list[Path]:
    """Every file called ``name`` where a tmux ``#(touch NAME)`` job could have run: anywhere
    under ``tmp``, or in the current, home or root directory."""
    found = list(tmp.rglob(name))
    found += [
        d / name for d in (Path.cwd(), Path.home(), Path("/"), Path("/tmp")) if (d / name).exists()
    ]
    return found


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    t = Tmux(f"hatch-sec-{uuid.uuid4().hex[:10]}", timeout=10)
    t.ensure_server(tmp_path)
    yield t
    t.kill_server()


def cwd_of(tmux: Tmux, pane_id: str) -> str:
    """The pane's directory (empty until its process owns the terminal)."""
    argv = ("display-message", "-p", "-t", pane_id, "#{pane_current_path}")
    return str(wait_for(lambda: tmux.run(*argv).stdout.strip(), what="the pane's directory"))


def window_of(tmux: Tmux, pane_id: str) -> str:
    return next(p.window_name for p in tmux.list_panes() if p.pane_id == pane_id)


def pane_ids(out: str) -> str:
    return out.strip().splitlines()[-1]


# -- the escaping functions -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("arg", "escaped"),
    [
        ("plain", "plain"),
        ("a;b", "a;b"),  # only a trailing ; separates commands
        (";", "\\;"),
        ("dir;", "dir\\;"),
        ("dir\\;", "dir\\\\;"),  # tmux turns the last \; into ; and keeps the first \
        ("", ""),
    ],
)
def test_escape_separator(arg: str, escaped: str) -> None:
    assert escape_separator(arg) == escaped


def test_escape_format_doubles_every_hash() -> None:
    assert escape_format("#(touch x)#{pane_id}##;#") == "##(touch x)##{pane_id}####;##"
    assert escape_format("no formats") == "no formats"


def test_every_argument_is_escaped_but_the_attach_separator() -> None:
    t = Tmux("hatch-x-0123456789")
    assert t._argv(("new-window", "-n", "w;", "--", "sh", ";")) == [
        "tmux", "-u", "-L", "hatch-x-0123456789", "-f", "/dev/null",
        "new-window", "-n", "w\\;", "--", "sh", "\\;",
    ]  # fmt: skip
    # a sequence: only the separators hatchctl puts between its own commands are bare
    assert t._argv(("a", "x;"), ("b", ";"))[6:] == ["a", "x\\;", ";", "b", "\\;"]
    argv = t.attach_argv("%3", "@2")
    assert argv[6:] == ["attach-session", "-t", "@2", ";", "select-pane", "-t", "%3"]
    assert t.attach_argv("%3")[6:] == ["attach-session", "-t", "%3"]


# -- what tmux 3.3 does with raw arguments: why the escaping is where it is ---------------------
def test_tmux_expands_formats_in_cwd_names_and_pipe_commands(tmux: Tmux, tmp_path: Path) -> None:
    (tmp_path / AGENT_SESSION).mkdir()
    (tmp_path / "#{session_name}").mkdir()
    out = tmp_path / "out"
    raw = tmux.run(
        "new-window", "-d", "-P", "-F", "#{pane_id}", "-t", f"={AGENT_SESSION}:",
        "-n", "n#{session_name}", "-c", str(tmp_path / "#{session_name}"),
        "-e", "V=e#{session_name}", "--",
        "sh", "-c", 'printf "%s|%s" "$V" "$1" > "$2"; exec cat', "sh", "a#{session_name}", str(out),
    ).stdout  # fmt: skip
    pane = pane_ids(raw)
    assert cwd_of(tmux, pane) == str(tmp_path / AGENT_SESSION)  # -c is expanded
    assert window_of(tmux, pane) == f"n{AGENT_SESSION}"  # -n is expanded
    # -e values and the command's arguments are not (tmux 3.3): escaping them would corrupt them
    assert wait_for(lambda: out.exists() and out.read_text()) == "e#{session_name}|a#{session_name}"
    tmux.run("pipe-pane", "-o", "-t", pane, f"cat >> {tmp_path}/p#{{session_name}}")
    tmux.send_text(pane, "hello")
    wait_for(lambda: (tmp_path / f"p{AGENT_SESSION}").exists(), what="the expanded pipe path")
    # (so #(command) in those places runs a command: tmux starts such jobs on its own timer,
    # seconds later, so the control stops at the expansion #{...} shown above)


def test_a_trailing_semicolon_starts_another_tmux_command(tmux: Tmux) -> None:
    argv = tmux._argv()[:6]  # no escaping at all
    raw = [*argv, "display-message", "-p", "x;", "set-option", "-g", "@injected", "yes"]
    subprocess.run(raw, check=True, capture_output=True, timeout=10)
    assert tmux.run("show-options", "-gv", "@injected").stdout.strip() == "yes"


# -- hatchctl's calls: every value literal ----------------------------------------------------
@pytest.mark.parametrize("index", [None, 4242], ids=["three-calls", "one-call"])
def test_new_window_passes_hostile_values_literally(
    tmux: Tmux, tmp_path: Path, index: int | None
) -> None:
    name = canary_name()
    hostile = f"#(touch {name})#{{session_name}};"
    cwd = tmp_path / f"c{hostile}x;y" / f"d{hostile}"  # ; mid-name and at the end of a name
    cwd.mkdir(parents=True)
    out = tmp_path / "out"
    script = 'printf "%s|%s|%s" "$V" "$1" "$2" > "$3"; exec sleep 60'
    pane = tmux.new_window(
        f"w{hostile}",
        ["sh", "-c", script, "sh", hostile, ";", str(out), "kill-server"],
        cwd=cwd,
        env={"V": hostile},
        index=index,
    )
    assert cwd_of(tmux, pane.pane_id) == str(cwd)
    listed = next(p for p in tmux.list_panes() if p.pane_id == pane.pane_id)
    assert listed.window_name == pane.window_name == f"w{hostile}"
    assert listed.tag == pane.tag == tmux.tag
    assert wait_for(lambda: out.exists() and out.read_text()) == f"{hostile}|{hostile}|;"
    assert tmux.server_pid() is not None  # "kill-server" stayed an argument
    assert canaries(name, tmp_path) == []


@pytest.mark.parametrize("one_call", [False, True], ids=["pipe-pane", "with-new-window"])
def test_pipe_pane_writes_to_the_literal_path(tmux: Tmux, tmp_path: Path, one_call: bool) -> None:
    name = canary_name()
    logs = tmp_path / f"l#(touch {name})#{{pane_id}};x;"
    logs.mkdir()
    log = logs / "run#{session_name}.log;"
    pipe = f"exec cat >> {shlex.quote(str(log))}"  # as launcher builds it
    if one_call:  # as launcher calls it: window, tag and pipe in one tmux call
        pane = tmux.new_window("w", ["cat"], cwd=tmp_path, env={}, index=77, pipe=pipe)
        taken = tmux.new_window("w2", ["cat"], cwd=tmp_path, env={}, index=77, pipe=pipe)
        assert taken.pane_id != pane.pane_id  # index in use: created the other way
        tmux.kill_pane(taken.pane_id)
    else:
        pane = tmux.new_window("w", ["cat"], cwd=tmp_path, env={})
        tmux.pipe_pane(pane.pane_id, pipe)
    tmux.send_text(pane.pane_id, "hello")
    wait_for(lambda: log.exists() and "hello" in log.read_text(), what="the log")
    assert [p.name for p in logs.iterdir()] == [log.name]
    assert canaries(name, tmp_path) == []


def test_server_and_supervisor_windows_start_in_the_literal_directory(tmp_path: Path) -> None:
    name = canary_name()
    root = tmp_path / f"r#(touch {name})#{{session_name}};"
    root.mkdir()
    tmux = Tmux(f"hatch-sec-{uuid.uuid4().hex[:10]}", timeout=10)
    try:
        tmux.ensure_server(root)
        (home,) = tmux.list_panes()
        assert (home.window_name, home.tag, cwd_of(tmux, home.pane_id)) == (
            "home",
            tmux.tag,
            str(root),
        )
        for _ in range(2):  # creates the session, then adds a window to it
            tmux.start_window(SUPERVISOR_SESSION, "supervisor", ["sleep", "60"], cwd=root)
        sup = [p for p in tmux.list_panes() if p.session == SUPERVISOR_SESSION]
        assert len(sup) == 2 and {cwd_of(tmux, p.pane_id) for p in sup} == {str(root)}
        assert canaries(name, tmp_path) == []
    finally:
        tmux.kill_server()


# -- end to end: a project in a hostile directory ---------------------------------------------
def make_project_at(projects: Projects, root: Path, specs: dict[str, dict[str, Any]]) -> Project:
    """Projects.make, at a root of our choosing."""
    make_repo(root)
    cfg = deep_merge(
        {"project": {"name": f"t{uuid.uuid4().hex[:10]}", "base_ref": "main"}},
        {"limits": FAST_LIMITS},
    )
    (root / "hatch.toml").write_text(to_toml(cfg))
    (root / "specs").mkdir()
    for task_id, front in specs.items():
        (root / "specs" / f"{task_id}.md").write_text(spec_text(task_id, **front))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "project")
    exclude_hatch_paths(root)
    project = Project.find(root)
    projects.made.append(project)  # its tmux server is killed after the test
    return project


def test_a_project_in_a_hostile_directory_runs_to_completion(
    projects: Projects, tmp_path: Path
) -> None:
    name = canary_name()
    root = tmp_path / f"a#(touch {name});b" / f"p#(touch {name})#{{pane_id}};"
    p = make_project_at(projects, root, {"A": {"sim": {"files": {"a.txt": "a\n"}}}})
    main_before = git(p.root, "rev-parse", "main")
    code, tasks, deps = drain(p)
    try:
        assert code == 0, [(e.kind, e.data) for e in deps.store.events()]
        assert tasks["A"].state == "completed"
        runs = deps.store.runs("A")
        assert [(r.role, r.state) for r in runs] == [("factory", "succeeded"), ("qa", "succeeded")]
        log = (p.root / runs[0].log_path).read_bytes()
        assert b"sim-agent" in log  # pipe-pane wrote to the literal log path
        stop = json.loads((p.root / runs[0].stop_path).read_text())
        assert stop["exit_code"] == 0
        assert git(p.root, "rev-parse", "main") == main_before  # no commit outside the worktree
        assert git(p.root, "show", "hatch/integration:a.txt") == "a"
        assert canaries(name, tmp_path) == []
    finally:
        deps.store.close()
