from __future__ import annotations

from pathlib import Path

from tests.forkrun import Hatchctl


def test_init_creates_a_valid_project(repo: Path, hatchctl: Hatchctl) -> None:
    out = hatchctl("-C", str(repo), "init")
    assert out.returncode == 0, out.stderr
    for rel in ("hatch.toml", "specs/EXAMPLE-001.md", "prompts/factory.md", "prompts/qa.md"):
        assert (repo / rel).is_file(), rel
    assert ".hatch/" in (repo / ".git" / "info" / "exclude").read_text().splitlines()
    assert hatchctl("-C", str(repo), "validate").returncode == 0
    again = hatchctl("-C", str(repo), "init")
    assert again.returncode == 1 and "already exists" in again.stderr


def test_init_outside_git_refused(tmp_path: Path, hatchctl: Hatchctl) -> None:
    out = hatchctl("-C", str(tmp_path), "init")
    assert out.returncode == 1 and "not inside a git repository" in out.stderr
    assert not (tmp_path / "hatch.toml").exists()


def test_orchestrator_log_is_json_lines(repo: Path, hatchctl: Hatchctl) -> None:
    hatchctl("-C", str(repo), "init")
    hatchctl("-C", str(repo), "status")
    log = repo / ".hatch" / "logs" / "orchestrator"
    assert log.is_dir()


def test_scripts_list_and_eject(tmp_path: Path, hatchctl: Hatchctl) -> None:
    out = hatchctl("scripts")
    assert out.returncode == 0
    assert "git/merge_branch.sh" in out.stdout and "agent/run_agent.sh" in out.stdout
    dest = tmp_path / "ejected"
    out = hatchctl("-C", str(tmp_path), "scripts", "--eject", str(dest))
    assert out.returncode == 0, out.stderr
    assert (dest / "git" / "create_worktree.sh").is_file() and (dest / "lib.sh").is_file()
    again = hatchctl("-C", str(tmp_path), "scripts", "--eject", str(dest))
    assert again.returncode == 1 and "not empty" in again.stderr
