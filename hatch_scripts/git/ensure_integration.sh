#!/usr/bin/env bash
# Make sure the integration branch exists (created from BASE_REF) and is checked out in WORKTREE.
# Usage: ensure_integration.sh [--dry-run] REPO WORKTREE BRANCH BASE_REF
# Idempotent. Prints the integration branch's tip commit.
# Exit codes: 0 ok, 2 usage, 3 git failed.
set -euo pipefail
here=${0%/*}  # the script's directory (no dirname process)
[[ $0 == */* ]] || here=.
# shellcheck source=../lib.sh
source "$here/../lib.sh"
parse_common "$@"
set -- "${HATCH_ARGS[@]}"
[[ $# -eq 4 ]] || die 2 "usage: ensure_integration.sh [--dry-run] REPO WORKTREE BRANCH BASE_REF"
repo=$1 worktree=$2 branch=$3 base=$4
require_dir "$repo"
# The usual call (branch and worktree there) is one git call: show-ref, which finds no ref
# of a name git refuses except "HEAD" and "-..." (refused here); the full check of the name
# comes before anything is made
[[ $branch != -* && $branch != HEAD ]] || die 2 "invalid branch name: $branch"
check_branch() {
  git check-ref-format --branch "$branch" >/dev/null 2>&1 || die 2 "invalid branch name: $branch"
}
if ! tip=$(git -C "$repo" show-ref --verify -s "refs/heads/$branch" 2>/dev/null); then
  check_branch
  tip=$(query git -C "$repo" rev-parse --verify --quiet "$base^{commit}") || die 3 "unknown base ref: $base"
  run git -C "$repo" branch "$branch" "$tip" || die 3 "cannot create branch $branch"
fi
if [[ ! -e $worktree/.git ]]; then
  check_branch
  parent_of parent "$worktree"
  [[ -d $parent ]] || run mkdir -p -- "$parent"
  lock_worktrees "$repo"
  run git -C "$repo" worktree add --force "$worktree" "$branch" >&2 ||
    { run git -C "$repo" worktree prune && run git -C "$repo" worktree add --force "$worktree" "$branch" >&2; } ||
    die 3 "git worktree add failed"
fi
printf '%s\n' "$tip"
