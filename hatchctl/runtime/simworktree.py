"""The sim-agent's work in its worktree (runtime/simagent.py): git under the sim-agent's identity
(unless the environment gives one), the spec's acceptance command and its pass/fail counts,
files written or appended, a commit of everything, and what its branch holds since the base
(commits, files, lines changed)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

GIT_ID = {
    "GIT_AUTHOR_NAME": "hatchctl sim-agent",
    "GIT_AUTHOR_EMAIL": "sim-agent@hatchctl.invalid",
    "GIT_COMMITTER_NAME": "hatchctl sim-agent",
    "GIT_COMMITTER_EMAIL": "sim-agent@hatchctl.invalid",
}


class SimWorktree:
    def __init__(self, worktree: Path, base: str) -> None:
        self.worktree = worktree
        self.base = base  # HATCH_BASE_SHA: "" when not given

    def git(self, *args: str, check: bool = True) -> str:
        env = {**os.environ}
        if not os.environ.get("GIT_AUTHOR_EMAIL"):
            env.update(GIT_ID)
        out = subprocess.run(
            ["git", *args],
            cwd=self.worktree,
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        if check and out.returncode != 0:
            raise SystemExit(f"sim-agent: git {args[0]} failed: {out.stderr.strip()}")
        return out.stdout.strip()

    def acceptance(self, argv: list[str] | None) -> tuple[bool, int, int, str]:
        if not argv:
            return True, 0, 0, "no acceptance command"
        try:
            out = subprocess.run(
                argv, cwd=self.worktree, capture_output=True, text=True, timeout=120, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, 0, 1, str(exc)
        text = out.stdout + out.stderr
        ran = re.search(r"Ran (\d+) tests?", text)
        total = int(ran.group(1)) if ran else 1
        bad = re.search(r"FAILED \((?:failures=(\d+))?(?:, )?(?:errors=(\d+))?", text)
        failed = (
            sum(int(g) for g in bad.groups() if g) if bad else (0 if out.returncode == 0 else 1)
        )
        return out.returncode == 0, max(total - failed, 0), failed, text[-2000:]

    def write_files(self, files: dict[str, str], append: dict[str, str]) -> list[str]:
        changed = []
        for rel, content in files.items():
            path = self.worktree / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists() or path.read_text(encoding="utf-8") != content:
                path.write_text(content, encoding="utf-8")
                changed.append(rel)
        for rel, text in append.items():
            path = self.worktree / rel
            current = path.read_text(encoding="utf-8") if path.exists() else ""
            if text not in current:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(current + text, encoding="utf-8")
                changed.append(rel)
        return changed

    def commit(self, message: str) -> None:
        self.git("add", "-A")  # project-state-readonly/ and .claude/ are in info/exclude
        if self.git("diff", "--cached", "--name-only"):
            self.git("commit", "-q", "-m", message)

    def branch_commits(self) -> list[str]:
        if not self.base:
            return [self.git("rev-parse", "HEAD")]
        out = self.git("rev-list", f"{self.base}..HEAD", check=False)
        return out.split()

    def diff_files(self) -> list[str]:
        if not self.base:
            return []
        return self.git("diff", "--name-only", f"{self.base}..HEAD", check=False).split()

    def loc(self) -> int:
        if not self.base:
            return 0
        total = 0
        for line in self.git("diff", "--numstat", f"{self.base}..HEAD", check=False).splitlines():
            parts = line.split("\t")
            total += sum(int(p) for p in parts[:2] if p.isdigit())
        return total
