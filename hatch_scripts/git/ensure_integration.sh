#!/usr/bin/env bash
# Make sure the integration branch exists (created from BASE_REF) and is checked out in WORKTREE.
# Usage: ensure_integration.sh [--dry-run] REPO WORKTREE BRANCH BASE_REF
# Idempotent. Prints the integration branch's tip commit.
# Exit codes: 0 ok, 2 usage, 3 git failed.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
parse_common "$@"
set -- "${HATCH_ARGS[@]}"
[[ $# -eq 4 ]] || die 2 "usage: ensure_integration.sh [--dry-run] REPO WORKTREE BRANCH BASE_REF"
repo=$1 worktree=$2 branch=$3 base=$4
require_dir "$repo"
git check-ref-format --branch "$branch" >/dev/null 2>&1 || die 2 "invalid branch name: $branch"

if ! git -C "$repo" show-ref --verify --quiet "refs/heads/$branch"; then
  query git -C "$repo" rev-parse --verify --quiet "$base^{commit}" >/dev/null || die 3 "unknown base ref: $base"
  run git -C "$repo" branch "$branch" "$base" || die 3 "cannot create branch $branch"
fi
if [[ ! -e $worktree/.git ]]; then
  lock_worktrees "$repo"
  run git -C "$repo" worktree prune || die 3 "git worktree prune failed"
  mkdir -p "$(dirname "$worktree")"
  run git -C "$repo" worktree add --force "$worktree" "$branch" >&2 || die 3 "git worktree add failed"
fi
git -C "$repo" rev-parse "refs/heads/$branch"
