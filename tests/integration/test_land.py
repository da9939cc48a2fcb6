"""`hatchctl land`: a preview, then the integration branch's work in the user's main branch
(fast-forward, or a merge), refused on a dirty checkout; `--branch` pushes it to a remote."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import git, hatchctl
from tests.integration.conftest import Projects, drain


def test_land_previews_fast_forwards_refuses_dirty_merges_and_pushes(
    projects: Projects, tmp_path: Path
) -> None:
    p = projects.make({"A": {"sim": {"files": {"a.txt": "from A\n"}}}})
    _, tasks, deps = drain(p)
    deps.store.close()
    assert tasks["A"].state == "completed"
    root = p.root
    main_before = git(root, "rev-parse", "main")

    out = hatchctl("-C", str(root), "land", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "tasks: A" in out.stdout and "a.txt" in out.stdout and "nothing changed" in out.stdout
    assert git(root, "rev-parse", "main") == main_before

    (root / "README.md").write_text("a local edit\n")  # a dirty checkout: refused, unchanged
    out = hatchctl("-C", str(root), "land")
    assert out.returncode != 0 and "uncommitted changes" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert git(root, "rev-parse", "main") == main_before
    git(root, "checkout", "--", "README.md")

    out = hatchctl("-C", str(root), "land")
    assert out.returncode == 0, out.stderr
    assert "fast-forward" in out.stdout
    assert git(root, "rev-parse", "main") == git(root, "rev-parse", "hatch/integration")
    assert (root / "a.txt").read_text() == "from A\n"  # the checkout itself was updated
    out = hatchctl("-C", str(root), "land")
    assert out.returncode == 0 and "nothing to land" in out.stdout

    # main moved on meanwhile: landing the next task is a merge commit
    (root / "local.txt").write_text("mine\n")
    git(root, "add", "local.txt")
    git(root, "-c", "user.name=u", "-c", "user.email=u@x", "commit", "-q", "-m", "local work")
    (root / "specs" / "B.md").write_text(
        "---\nid: B\ntitle: Task B\nsim:\n  files:\n    b.txt: |\n      from B\n---\nDo B.\n"
    )
    git(root, "add", "specs/B.md")
    git(root, "-c", "user.name=u", "-c", "user.email=u@x", "commit", "-q", "-m", "spec B")
    _, tasks, deps = drain(p)
    deps.store.close()
    assert tasks["B"].state == "completed"
    out = hatchctl("-C", str(root), "land")
    assert out.returncode == 0, out.stderr
    assert "merge " in out.stdout and "tasks: B" in out.stdout
    assert (root / "b.txt").exists() and (root / "local.txt").exists()
    assert git(root, "status", "--porcelain", "--untracked-files=no") == ""

    # --branch: pushed to a remote branch (a local bare repository)
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(root, "remote", "add", "origin", str(remote))
    out = hatchctl("-C", str(root), "land", "--branch", "hatch-night-1")
    assert out.returncode == 0, out.stderr
    assert git(remote, "rev-parse", "hatch-night-1") == git(root, "rev-parse", "hatch/integration")
