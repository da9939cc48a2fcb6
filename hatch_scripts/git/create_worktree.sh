#!/usr/bin/env bash
# Create the git worktree for a task, on branch hatch/<TASK_ID>, from BASE_REF.
# Usage: create_worktree.sh [--dry-run] [--reset] REPO WORKTREE TASK_ID BASE_REF
#   --reset  recreate the branch at BASE_REF even if it exists (a retried task starts fresh)
# Idempotent: an existing worktree of this task on its branch is kept as it is.
# Prints the commit the branch starts from (or is at) on stdout.
# Exit codes: 0 ok, 2 usage, 3 git failed, 4 WORKTREE exists but is not this task's worktree,
# 7 unsafe path (WORKTREE is a symbolic link).
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
parse_common "$@"
set -- "${HATCH_ARGS[@]}"
reset=0
if [[ ${1:-} == --reset ]]; then
  reset=1
  shift
fi
[[ $# -eq 4 ]] || die 2 "usage: create_worktree.sh [--dry-run] [--reset] REPO WORKTREE TASK_ID BASE_REF"
repo=$1 worktree=${2%/} task=$3 base=$4
require_dir "$repo"
check_id "$task"
refuse_link "$worktree"
branch="hatch/$task"

query git -C "$repo" rev-parse --verify --quiet "$base^{commit}" >/dev/null || die 3 "unknown base ref: $base"

if [[ -e $worktree ]]; then
  current=$(git -C "$worktree" rev-parse --abbrev-ref HEAD 2>/dev/null || true)
  [[ $current == "$branch" ]] || die 4 "$worktree exists and is not the worktree of $branch"
  if [[ $reset == 0 ]]; then
    git -C "$worktree" rev-parse HEAD
    exit 0
  fi
  # through remove_worktree.sh: it unmounts the read-only planning view first
  run bash "$(dirname "$0")/remove_worktree.sh" "$repo" "$worktree" >&2 || die 3 "cannot remove stale worktree $worktree"
fi
lock_worktrees "$repo"  # (after remove_worktree.sh above: it takes the lock itself)
run git -C "$repo" worktree prune || die 3 "git worktree prune failed"
mkdir -p "$(dirname "$worktree")"
if [[ $reset == 1 ]] || ! git -C "$repo" show-ref --verify --quiet "refs/heads/$branch"; then
  run git -C "$repo" worktree add --force -B "$branch" "$worktree" "$base" >&2 || die 3 "git worktree add failed"
else
  run git -C "$repo" worktree add --force "$worktree" "$branch" >&2 || die 3 "git worktree add failed"
fi
if [[ $HATCH_DRY_RUN == 1 ]]; then
  git -C "$repo" rev-parse "$base"
else
  git -C "$worktree" rev-parse HEAD
fi
