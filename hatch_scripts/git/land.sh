#!/usr/bin/env bash
# Bring the integration branch's work into the base branch, in the user's own checkout.
# Usage: land.sh [--dry-run] REPO BASE_BRANCH COMMIT
#   COMMIT is the integration tip that was previewed (landing exactly what was shown).
# A fast-forward when BASE_BRANCH is an ancestor of COMMIT, else a merge commit. Where
# BASE_BRANCH is checked out in REPO, the checkout must be clean (tracked files) and is updated
# with it; where it is not checked out, only a fast-forward is possible (the ref moves).
# A merge that conflicts is aborted: nothing changes.
# Prints "fast-forward NEW" or "merge NEW" on stdout.
# Exit codes: 0 landed, 2 usage, 3 git failed, 8 the checkout is dirty, 9 not a fast-forward
# and BASE_BRANCH is not checked out, 10 merge conflict (nothing changed).
set -euo pipefail
here=${0%/*}  # the script's directory (no dirname process)
[[ $0 == */* ]] || here=.
# shellcheck source=../lib.sh
source "$here/../lib.sh"
parse_common "$@"
set -- "${HATCH_ARGS[@]}"
[[ $# -eq 3 ]] || die 2 "usage: land.sh [--dry-run] REPO BASE_BRANCH COMMIT"
repo=$1 base=$2 commit=$3
require_dir "$repo"
git check-ref-format --branch "$base" >/dev/null 2>&1 || die 2 "invalid branch name: $base"
[[ $commit =~ ^[0-9a-f]{40}([0-9a-f]{24})?$ ]] || die 2 "not a commit id: $commit"
query git -C "$repo" rev-parse --verify --quiet "refs/heads/$base" >/dev/null || die 3 "no branch $base"
old=$(git -C "$repo" rev-parse "refs/heads/$base")
checked_out=0
[[ $(git -C "$repo" symbolic-ref -q HEAD || true) == "refs/heads/$base" ]] && checked_out=1

if [[ $checked_out == 1 && -n $(git -C "$repo" status --porcelain --untracked-files=no) ]]; then
  die 8 "$repo has uncommitted changes on $base: commit or stash them first"
fi
if git -C "$repo" merge-base --is-ancestor "$old" "$commit"; then
  if [[ $checked_out == 1 ]]; then
    run git -C "$repo" merge --ff-only --quiet "$commit" >&2 || die 3 "git merge --ff-only failed"
  else
    run git -C "$repo" update-ref -m "hatch: land" "refs/heads/$base" "$commit" "$old" || die 3 "cannot move $base"
  fi
  echo "fast-forward $commit"
  exit 0
fi
[[ $checked_out == 1 ]] || die 9 "$base has commits the integration branch lacks and is not checked out: check it out in $repo and land again"
if [[ -z $(git -C "$repo" config user.email || true) ]]; then
  export GIT_AUTHOR_NAME=hatchctl GIT_AUTHOR_EMAIL=hatchctl@localhost
  export GIT_COMMITTER_NAME=hatchctl GIT_COMMITTER_EMAIL=hatchctl@localhost
fi
if ! run git -C "$repo" merge --no-ff --no-edit -m "hatch: land ${commit:0:12} into $base" "$commit" >&2; then
  if git -C "$repo" rev-parse --verify --quiet MERGE_HEAD >/dev/null; then
    run git -C "$repo" merge --abort || true
    die 10 "landing conflicts with $base; nothing changed (merge $base into the integration branch's tasks, or resolve by hand)"
  fi
  die 3 "git merge failed"
fi
echo "merge $(git -C "$repo" rev-parse HEAD)"
