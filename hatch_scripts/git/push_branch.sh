#!/usr/bin/env bash
# Push a commit to a branch of a remote (landing for review elsewhere).
# Usage: push_branch.sh [--dry-run] REPO REMOTE COMMIT BRANCH
# Never forces: a remote branch that has moved elsewhere is refused by git.
# Exit codes: 0 pushed, 2 usage, 3 git failed.
set -euo pipefail
here=${0%/*}  # the script's directory (no dirname process)
[[ $0 == */* ]] || here=.
# shellcheck source=../lib.sh
source "$here/../lib.sh"
parse_common "$@"
set -- "${HATCH_ARGS[@]}"
[[ $# -eq 4 ]] || die 2 "usage: push_branch.sh [--dry-run] REPO REMOTE COMMIT BRANCH"
repo=$1 remote=$2 commit=$3 branch=$4
require_dir "$repo"
export GIT_TERMINAL_PROMPT=0  # never wait for a password: fail, and say so
export GIT_SSH_COMMAND=${GIT_SSH_COMMAND:-ssh -o BatchMode=yes}
git check-ref-format --branch "$branch" >/dev/null 2>&1 || die 2 "invalid branch name: $branch"
[[ $remote =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die 2 "invalid remote name: $remote"
[[ $commit =~ ^[0-9a-f]{40}([0-9a-f]{24})?$ ]] || die 2 "not a commit id: $commit"
query git -C "$repo" remote get-url "$remote" >/dev/null || die 3 "no remote $remote"
run git -C "$repo" push --quiet "$remote" "$commit:refs/heads/$branch" >&2 || die 3 "git push to $remote failed"
echo "pushed $commit to $remote $branch"
