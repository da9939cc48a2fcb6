#!/usr/bin/env bash
# Remove a task's worktree (the branch is kept). Unmounts everything mounted inside it first and
# refuses to remove it while anything is still mounted: `git worktree remove --force` over a
# read-write bind mount would delete the mount's source files.
# Usage: remove_worktree.sh [--dry-run] REPO WORKTREE
# Symbolic links are removed, never followed: a link at WORKTREE or at its project-state-readonly
# (an agent's doing) is deleted itself and nothing it points to is touched.
# Exit codes: 0 removed (or already gone), 2 usage, 3 git failed, 5 still mounted (refused).
set -euo pipefail
here=${0%/*}  # the script's directory (no dirname process)
[[ $0 == */* ]] || here=.
# shellcheck source=../lib.sh
source "$here/../lib.sh"
parse_common "$@"
set -- "${HATCH_ARGS[@]}"
[[ $# -eq 2 ]] || die 2 "usage: remove_worktree.sh [--dry-run] REPO WORKTREE"
repo=$1 worktree=${2%/}
require_dir "$repo"
if [[ -L $worktree ]]; then
  printf '%s: %s is a symbolic link: removing the link only\n' "$HATCH_SCRIPT_NAME" "$worktree" >&2
  run rm -f -- "$worktree"
  lock_worktrees "$repo"
  run git -C "$repo" worktree prune
  exit 0
fi
if [[ ! -e $worktree ]]; then
  lock_worktrees "$repo"
  run git -C "$repo" worktree prune
  exit 0
fi
# Deepest mounts first.
while IFS= read -r mp; do
  [[ -n $mp ]] || continue
  run bash "$here/../mount/unmount.sh" "$mp" >&2 || true
done < <(mounts_under "$worktree" | sort -r)
if [[ $HATCH_DRY_RUN == 0 && -n $(mounts_under "$worktree") ]]; then
  die 5 "refusing to remove $worktree: still mounted: $(mounts_under "$worktree" | tr '\n' ' ')"
fi
ro="$worktree/project-state-readonly"
if [[ -e $ro || -L $ro ]]; then  # unmount.sh removes a link there itself, never its target
  run bash "$here/../mount/unmount.sh" "$ro" >&2 || die 5 "cannot remove the read-only copy in $ro"
fi
lock_worktrees "$repo"
run git -C "$repo" worktree remove --force "$worktree" || {
  run rm -rf -- "$worktree"
  run git -C "$repo" worktree prune || die 3 "git worktree prune failed"
}
