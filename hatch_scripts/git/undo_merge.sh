#!/usr/bin/env bash
# Move the integration branch back to COMMIT (after a merge whose regression run failed).
# Usage: undo_merge.sh [--dry-run] INTEGRATION_WORKTREE COMMIT
# Exit codes: 0 done, 2 usage, 3 git failed.
set -euo pipefail
here=${0%/*}  # the script's directory (no dirname process)
[[ $0 == */* ]] || here=.
# shellcheck source=../lib.sh
source "$here/../lib.sh"
parse_common "$@"
set -- "${HATCH_ARGS[@]}"
[[ $# -eq 2 ]] || die 2 "usage: undo_merge.sh [--dry-run] INTEGRATION_WORKTREE COMMIT"
wt=$1 commit=$2
require_dir "$wt"
[[ $commit =~ ^[0-9a-f]{7,64}$ ]] || die 2 "not a commit id: $commit"
query git -C "$wt" merge-base --is-ancestor "$commit" HEAD || die 3 "$commit is not an ancestor of HEAD"
run git -C "$wt" reset --hard --quiet "$commit" || die 3 "git reset failed"
