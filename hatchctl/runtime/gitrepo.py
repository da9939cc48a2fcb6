"""Git queries hatchctl makes itself (everything that changes a repository is a script)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from hatchctl.config import ProjectSection
from hatchctl.errors import CommandError, ConfigError, HatchError
from hatchctl.runtime import proc

_SHA_RE = re.compile(r"^[0-9a-fA-F]{4,64}$")
EXCLUDES = (".hatch/", "project-state-readonly/", ".claude/settings.local.json")
SYMLINK_MODE = "120000"


@dataclass(frozen=True)
class DiffEntry:
    """One path of ``git diff --raw``: its status letter (A, M, D, T...) and new mode and blob."""

    status: str
    path: str
    new_mode: str
    new_blob: str


# hatchctl's own git calls never run repository hooks or an fsmonitor command: an agent that
# planted either would otherwise run code outside its sandbox through hatchctl
SAFE_GIT_CONFIG = {
    "GIT_CONFIG_COUNT": "3",
    "GIT_CONFIG_KEY_0": "core.hooksPath",
    "GIT_CONFIG_VALUE_0": "/dev/null",
    "GIT_CONFIG_KEY_1": "core.fsmonitor",
    "GIT_CONFIG_VALUE_1": "false",
    # hatchctl's own commits and merges start no `git maintenance run --auto` (a process per
    # commit; a repack of the user's repository in the middle of a night of agents): the
    # user's own git commands keep their maintenance
    "GIT_CONFIG_KEY_2": "maintenance.auto",
    "GIT_CONFIG_VALUE_2": "false",
}


def git_env() -> dict[str, str]:
    return {**os.environ, **SAFE_GIT_CONFIG}


@dataclass(frozen=True)
class Git:
    """Read-only git operations on one repository or worktree, each with a timeout."""

    repo: Path
    timeout: float = 60.0

    def _run(self, *args: str, check: bool = True) -> proc.Result:
        return proc.run(
            ["git", "-C", str(self.repo), *args], timeout=self.timeout, env=git_env(), check=check
        )

    def rev_parse(self, ref: str) -> str:
        return self._run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").stdout.strip()

    def commit_exists(self, sha: str) -> bool:
        if not _SHA_RE.fullmatch(sha):
            return False
        return self._run("cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode == 0

    def is_ancestor(self, sha: str, ref: str) -> bool:
        if not _SHA_RE.fullmatch(sha):
            return False
        return self._run("merge-base", "--is-ancestor", sha, ref, check=False).returncode == 0

    def diff_names(self, base: str, ref: str) -> list[str]:
        out = self._run("diff", "--name-only", "--no-renames", f"{base}..{ref}").stdout
        return [line for line in out.splitlines() if line]

    def diff_raw(self, base: str, ref: str) -> list[DiffEntry]:
        """Every path changed between base and ref, with modes (120000 is a symbolic link)."""
        out = self._run(
            "diff", "--raw", "-z", "--no-renames", "--no-abbrev", f"{base}..{ref}"
        ).stdout
        fields = out.split("\0")
        entries = []
        for meta, path in zip(fields[0::2], fields[1::2], strict=False):
            parts = meta.lstrip(":").split()
            if len(parts) == 5 and path:
                entries.append(DiffEntry(parts[4][:1], path, parts[1], parts[3]))
        return entries

    def tree_links(self, ref: str) -> dict[str, str]:
        """Every symbolic link in ref's tree: path -> blob (the target is read with blob_text)."""
        out = self._run("ls-tree", "-r", "-z", "--full-tree", ref).stdout
        links = {}
        for record in out.split("\0"):
            meta, _, path = record.partition("\t")
            parts = meta.split()
            if len(parts) == 3 and parts[0] == SYMLINK_MODE:
                links[path] = parts[2]
        return links

    def blob_text(self, blob: str) -> str:
        """A blob's content from the object store (a link's target; never read from the disk)."""
        return self._run("cat-file", "blob", blob).stdout

    def merge_base(self, a: str, b: str) -> str:
        return self._run("merge-base", a, b).stdout.strip()

    def diff_loc(self, base: str, ref: str) -> int:
        """Changed lines (insertions + deletions) between base and ref."""
        out = self._run("diff", "--numstat", "--no-renames", f"{base}..{ref}").stdout
        total = 0
        for line in out.splitlines():
            added, deleted, _ = [*line.split("\t", 2), "", ""][:3]
            total += int(added) if added.isdigit() else 0
            total += int(deleted) if deleted.isdigit() else 0
        return total

    def dirty_files(self) -> list[str]:
        """Tracked files with uncommitted changes (untracked build artefacts are not counted)."""
        out = self._run("status", "--porcelain", "--untracked-files=no").stdout
        return [
            line[3:] for line in out.splitlines() if line[3:] and not line[3:].startswith(EXCLUDES)
        ]

    def log_oneline(self, rng: str, limit: int = 50) -> list[str]:
        return self._run("log", "--oneline", f"-{limit}", rng).stdout.splitlines()

    def symbolic_head(self) -> str | None:
        """The branch HEAD points at (``refs/heads/...``), None when detached."""
        out = self._run("symbolic-ref", "-q", "HEAD", check=False)
        return out.stdout.strip() if out.returncode == 0 else None

    def diffstat(self, base: str, ref: str) -> str:
        """``git diff --stat`` of what ``ref`` adds to ``base`` (since their merge base)."""
        return self._run("diff", "--stat=100", "--no-renames", f"{base}...{ref}").stdout

    def diff_text(self, base: str, ref: str, max_bytes: int = 2_000_000) -> str:
        plain = [
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--src-prefix=a/",
            "--dst-prefix=b/",
        ]
        return self._run("diff", *plain, "--stat", "--patch", f"{base}..{ref}").stdout[:max_bytes]

    def common_dir(self) -> Path:
        out = self._run("rev-parse", "--git-common-dir").stdout.strip()
        path = Path(out)
        return path if path.is_absolute() else (self.repo / path).resolve()


def exclude_hatch_paths(repo: Path, timeout: float = 10.0) -> None:
    """Add hatchctl's runtime paths to .git/info/exclude (shared by every worktree)."""
    try:
        common = Git(repo, timeout).common_dir()
    except CommandError as exc:
        raise HatchError(f"{repo} is not a git repository: {exc}") from None
    exclude = common / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    current = exclude.read_text(encoding="utf-8").splitlines() if exclude.exists() else []
    missing = [p for p in EXCLUDES if p not in current]
    if missing:
        with exclude.open("a", encoding="utf-8") as fh:
            if current and current[-1] != "":
                fh.write("\n")
            fh.write("# hatchctl runtime files\n" + "\n".join(missing) + "\n")


def check_repository(root: Path, project: ProjectSection, timeout: float) -> None:
    """What would otherwise fail on every launch, refused at once in one line: a repository
    without the base commit (e.g. no commits yet), or an integration branch that is the branch
    checked out in the user's checkout (merging there would change the user's files)."""
    base = project.base_ref
    found = proc.run(
        ["git", "-C", str(root), "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}"],
        timeout=timeout,
        env=git_env(),
        check=False,
    )
    if found.returncode != 0:
        raise ConfigError(
            f"base_ref {base!r} is not a commit in {root} (a repository needs at least one "
            "commit; hatch.toml [project] base_ref)"
        )
    head = proc.run(
        ["git", "-C", str(root), "symbolic-ref", "--quiet", "HEAD"],
        timeout=timeout,
        env=git_env(),
        check=False,
    ).stdout.strip()
    if head == f"refs/heads/{project.integration_branch}":
        raise ConfigError(
            f"integration_branch {project.integration_branch!r} is the branch checked out in "
            f"{root}: hatchctl would merge into your working copy (pick another branch)"
        )
