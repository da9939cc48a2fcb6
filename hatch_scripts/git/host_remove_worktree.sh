#!/usr/bin/env bash
# On an SSH host: remove a task's worktree from the host once the task is done with (its own
# repository tasks/TASK_ID.git beside REPO, and so the branch hatch/TASK_ID, is kept; see
# host_worktree.sh). Nothing is mounted in a worktree on a host.
# Usage: host_remove_worktree.sh [--dry-run] REPO WORKTREE TASK_ID
# Symbolic links are removed, never followed: a link at WORKTREE (an agent's doing) is deleted
# itself and nothing it points to is touched; links inside it are removed as links.
# Exit codes: 0 removed (or already gone), 2 usage, 3 git failed, 7 unsafe path.
set -euo pipefail
here=${0%/*}  # the script's directory (no dirname process)
[[ $0 == */* ]] || here=.
# shellcheck source=../lib.sh
source "$here/../lib.sh"
parse_common "$@"
set -- "${HATCH_ARGS[@]}"
[[ $# -eq 3 ]] || die 2 "usage: host_remove_worktree.sh [--dry-run] REPO WORKTREE TASK_ID"
repo=${1%/} worktree=${2%/} task=$3
require_dir "$repo"
check_id "$task"
check_parent "$worktree"
[[ $(basename -- "$worktree") == "$task" ]] || die 7 "unsafe path: $worktree is not $task's worktree"
gitdir=${repo%/*}/tasks/$task.git
if [[ -L $worktree ]]; then
  printf '%s: %s is a symbolic link: removing the link only\n' "$HATCH_SCRIPT_NAME" "$worktree" >&2
  run rm -f -- "$worktree"
elif [[ -e $worktree ]]; then
  run rm -rf -- "$worktree"
fi
if [[ -d $gitdir && ! -L $gitdir ]]; then  # its index describes the worktree just removed
  run rm -f -- "$gitdir/index"
fi
run git -C "$repo" worktree prune || die 3 "git worktree prune failed"  # the older layout's
