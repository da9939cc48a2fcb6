#!/usr/bin/env bash
# On an SSH host: the task's worktree in the host's clone, at the commit the controller pushed.
# Usage: host_worktree.sh [--dry-run] REPO WORKTREE TASK_ID
#   REPO is the host's bare clone; the controller pushed the task's branch to
#   refs/hatch/push/TASK_ID (push_to_host.sh). The worktree (branch hatch/TASK_ID) is created at
#   that commit, or kept as it is when its branch is that commit or a descendant of it (the
#   work of an earlier attempt on this host, committed or not), else reset to it (the
#   controller's branch moved: a retry, or work done on another host).
# Prints the commit the worktree is at. Exit codes: 0 ok, 2 usage, 3 git failed,
# 4 WORKTREE exists but is not this task's worktree, 7 unsafe path.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
parse_common "$@"
set -- "${HATCH_ARGS[@]}"
[[ $# -eq 3 ]] || die 2 "usage: host_worktree.sh [--dry-run] REPO WORKTREE TASK_ID"
repo=$1 worktree=${2%/} task=$3
require_dir "$repo"
check_id "$task"
check_parent "$worktree"
refuse_link "$worktree"
branch="hatch/$task"
want=$(query git -C "$repo" rev-parse --verify --quiet "refs/hatch/push/$task^{commit}") ||
  die 3 "nothing pushed for $task"
if [[ -e $worktree ]]; then
  current=$(git -C "$worktree" rev-parse --abbrev-ref HEAD 2>/dev/null || true)
  [[ $current == "$branch" ]] || die 4 "$worktree exists and is not the worktree of $branch"
  head=$(git -C "$worktree" rev-parse HEAD)
  if [[ $head != "$want" ]] && ! git -C "$worktree" merge-base --is-ancestor "$want" "$head"; then
    run git -C "$worktree" reset --quiet --hard "$want" >&2 || die 3 "reset to $want failed"
  fi
  git -C "$worktree" rev-parse HEAD
  exit 0
fi
run git -C "$repo" worktree prune || die 3 "git worktree prune failed"
mkdir -p -- "$(dirname -- "$worktree")"
run git -C "$repo" worktree add --quiet --force -B "$branch" "$worktree" "$want" >&2 ||
  die 3 "git worktree add failed"
git -C "$worktree" rev-parse HEAD
