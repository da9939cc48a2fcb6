#!/usr/bin/env bash
# Push a task's branch to the clone on an SSH host, as the commit its agent starts from there.
# Usage: push_to_host.sh [--dry-run] REPO URL TASK_ID
#   URL: the host's clone (ssh://DEST/PATH); GIT_SSH_COMMAND (set by hatchctl) rides on the
#   host's master connection. The branch hatch/TASK_ID is pushed to refs/hatch/push/TASK_ID
#   there (forced: the controller's branch is the truth, the host's copy a mirror); the host's
#   own branch is moved by host_worktree.sh.
# Prints the commit pushed. Exit codes: 0 ok, 2 usage, 3 git failed.
set -euo pipefail
here=${0%/*}  # the script's directory (no dirname process)
[[ $0 == */* ]] || here=.
# shellcheck source=../lib.sh
source "$here/../lib.sh"
parse_common "$@"
set -- "${HATCH_ARGS[@]}"
[[ $# -eq 3 ]] || die 2 "usage: push_to_host.sh [--dry-run] REPO URL TASK_ID"
repo=$1 url=$2 task=$3
require_dir "$repo"
check_id "$task"
[[ $url == ssh://* ]] || die 2 "not an ssh:// url: $url"
export GIT_TERMINAL_PROMPT=0
commit=$(query git -C "$repo" rev-parse --verify --quiet "refs/heads/hatch/$task^{commit}") ||
  die 3 "no branch hatch/$task"
run git -C "$repo" push --quiet --force --no-verify "$url" "$commit:refs/hatch/push/$task" >&2 ||
  die 3 "git push to $url failed"
echo "$commit"
