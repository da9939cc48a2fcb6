#!/usr/bin/env bash
# Bring a task's branch back from the clone on an SSH host into the task's local worktree.
# Usage: fetch_from_host.sh [--dry-run] WORKTREE URL TASK_ID
#   Fetches refs/heads/hatch/TASK_ID, and nothing else, of URL (ssh://DEST/PATH, over
#   GIT_SSH_COMMAND: the task's own repository there, tasks/TASK_ID.git, made by
#   host_worktree.sh) into the worktree's own FETCH_HEAD (no ref is created; what was fetched
#   is verified on this machine before any merge), then moves the worktree's branch there:
#   nothing to do when equal, a fast-forward when it is ahead, else a hard reset (the agent
#   rewrote its own branch on the host, as it may locally). Untracked files are kept.
# Prints the commit the worktree is at. Exit codes: 0 ok, 2 usage, 3 git failed,
# 4 WORKTREE is not on hatch/TASK_ID, 7 unsafe path.
set -euo pipefail
here=${0%/*}  # the script's directory (no dirname process)
[[ $0 == */* ]] || here=.
# shellcheck source=../lib.sh
source "$here/../lib.sh"
parse_common "$@"
set -- "${HATCH_ARGS[@]}"
[[ $# -eq 3 ]] || die 2 "usage: fetch_from_host.sh [--dry-run] WORKTREE URL TASK_ID"
worktree=${1%/} url=$2 task=$3
check_id "$task"
refuse_link "$worktree"
require_dir "$worktree"
[[ $url == ssh://* ]] || die 2 "not an ssh:// url: $url"
export GIT_TERMINAL_PROMPT=0
current=$(git -C "$worktree" rev-parse --abbrev-ref HEAD 2>/dev/null || true)
[[ $current == "hatch/$task" ]] || die 4 "$worktree is not on hatch/$task"
run git -C "$worktree" fetch --quiet --no-tags --no-recurse-submodules "$url" "refs/heads/hatch/$task" >&2 ||
  die 3 "git fetch from $url failed"
[[ $HATCH_DRY_RUN == 1 ]] && { git -C "$worktree" rev-parse HEAD; exit 0; }
new=$(git -C "$worktree" rev-parse --verify --quiet "FETCH_HEAD^{commit}") || die 3 "nothing fetched"
head=$(git -C "$worktree" rev-parse HEAD)
if [[ $new != "$head" ]]; then
  if git -C "$worktree" merge-base --is-ancestor "$head" "$new"; then
    run git -C "$worktree" merge --quiet --ff-only "$new" >&2 || die 3 "fast-forward to $new failed"
  else
    run git -C "$worktree" reset --quiet --hard "$new" >&2 || die 3 "reset to $new failed"
  fi
fi
git -C "$worktree" rev-parse HEAD
