#!/usr/bin/env bash
# Merge a task branch into the integration branch, inside the integration worktree.
# Usage: merge_branch.sh [--dry-run] INTEGRATION_WORKTREE TASK_BRANCH
# On a conflict the merge is aborted, leaving the integration worktree clean.
# Prints the new integration commit on stdout.
# Exit codes: 0 merged, 2 usage, 3 git failed, 10 merge conflict (nothing changed).
set -euo pipefail
here=${0%/*}  # the script's directory (no dirname process)
[[ $0 == */* ]] || here=.
# shellcheck source=../lib.sh
source "$here/../lib.sh"
parse_common "$@"
set -- "${HATCH_ARGS[@]}"
[[ $# -eq 2 ]] || die 2 "usage: merge_branch.sh [--dry-run] INTEGRATION_WORKTREE TASK_BRANCH"
wt=$1 branch=$2
require_dir "$wt"
[[ $branch =~ ^hatch/ ]] || die 2 "not a task branch: $branch"
check_id "${branch#hatch/}"
query git -C "$wt" rev-parse --verify --quiet "refs/heads/$branch" >/dev/null || die 3 "no branch $branch"

if [[ -z $(git -C "$wt" config user.email || true) ]]; then
  export GIT_AUTHOR_NAME=hatchctl GIT_AUTHOR_EMAIL=hatchctl@localhost
  export GIT_COMMITTER_NAME=hatchctl GIT_COMMITTER_EMAIL=hatchctl@localhost
fi
# hatchctl merges one at a time: a lock or a merge in progress found now was left by a merge
# that was killed (a supervisor killed mid-merge); clear it instead of calling it a conflict
gitdir=$(git -C "$wt" rev-parse --absolute-git-dir) || die 3 "not a git worktree: $wt"
if [[ -e $gitdir/index.lock ]]; then
  run rm -f -- "$gitdir/index.lock"
fi
if git -C "$wt" rev-parse --verify --quiet MERGE_HEAD >/dev/null; then
  run git -C "$wt" merge --abort || run git -C "$wt" reset --hard --quiet || die 3 "cannot clear a stale merge"
fi
if [[ -n $(git -C "$wt" status --porcelain --untracked-files=no) ]]; then
  run git -C "$wt" reset --hard --quiet || die 3 "cannot clean the integration worktree"
fi
if ! run git -C "$wt" merge --no-ff --no-edit -m "hatch: merge $branch" "$branch" >&2; then
  if git -C "$wt" rev-parse --verify --quiet MERGE_HEAD >/dev/null; then
    git -C "$wt" diff --name-only --diff-filter=U >&2 || true
    run git -C "$wt" merge --abort || run git -C "$wt" reset --hard --quiet
    die 10 "merge conflict merging $branch; integration left unchanged"
  fi
  die 3 "git merge failed"
fi
git -C "$wt" rev-parse HEAD
