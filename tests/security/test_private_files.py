"""Everything hatchctl writes under .hatch/ is private to the user: directories 0700, files 0600
(the db, its WAL, prompts, summaries, stop files, logs, the secret), as `hatchctl run` makes it."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.integration.conftest import Projects, SupervisorProcess

ADD = {"calc.py": "def add(a, b):\n    return a + b\n"}


def test_hatch_dir_and_every_file_in_it_are_private(projects: Projects) -> None:
    p = projects.make({"A": {"files": list(ADD), "sim": {"files": ADD}}})
    p.paths.hatch.mkdir(mode=0o755)  # as an older hatchctl left it
    sup = SupervisorProcess(p, "--until-drained", "--max-time", "40s")
    try:
        assert sup.wait() == 0, sup.output()
    finally:
        sup.kill()
    hatch = p.paths.hatch
    assert stat.S_IMODE(hatch.stat().st_mode) == 0o700
    worktrees = p.paths.worktrees
    seen: list[Path] = []
    loose = []
    for path in hatch.rglob("*"):
        if worktrees in path.parents or path.is_symlink():
            continue  # git checkouts: the repository's own files
        mode = stat.S_IMODE(path.lstat().st_mode)
        want = 0o700 if path.is_dir() else 0o600
        if path.is_socket():
            continue
        seen.append(path)
        if mode & 0o077:
            loose.append(f"{path.relative_to(hatch)} {mode:o} (want {want:o})")
    names = {x.name for x in seen}
    assert {"hatch.db", "secret", "summary.json", "current_state.json"} <= names
    assert any(x.suffix == ".stop" for x in seen) and any(x.suffix == ".log" for x in seen)
    assert loose == []
