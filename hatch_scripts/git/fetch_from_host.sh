#!/usr/bin/env bash
# Bring a task's branch back from the clone on an SSH host into the task's local worktree.
# Usage: fetch_from_host.sh [--dry-run] WORKTREE URL TASK_ID
#   Fetches refs/heads/hatch/TASK_ID, and nothing else, of URL (ssh://DEST/PATH, over
#   GIT_SSH_COMMAND: the task's own repository there, tasks/TASK_ID.git, made by
#   host_worktree.sh) into a scratch repository (below; no ref of the repository is created;
#   what was fetched is verified on this machine before any merge), then moves the worktree's
#   branch there: nothing to do when equal, a fast-forward when it is ahead, else a hard reset
#   (the agent rewrote its own branch on the host, as it may locally). Untracked files are kept.
# Not into the worktree itself: git's connectivity check after a fetch reads every ref of the
# repository, other worktrees' HEADs included, and a `git worktree add` under way
# (create_worktree.sh) leaves its new HEAD invalid for a moment ("fatal: bad object
# worktrees/X/HEAD"). So the branch is fetched into a scratch repository,
# .git/hatch-fetch/TASK_ID.git, that borrows the repository's objects (objects/info/alternates)
# and has no worktree: only the new objects come over, as one pack (fetch.unpackLimit=1), and the
# check there reads its own ref and the repository's refs/ only; the pack is then moved into the
# repository (its index last: git finds a pack by its index), as git's own fetch renames a pack
# it received into place. No lock is held at any time: a host that hangs holds nothing (the
# worktree lock held around a fetch would stall every other task's setup for as long).
# Cost: about 40 ms more than a fetch into the worktree at load 11 (mkdir, two for-each-ref of
# the alternate, mv, rm), in the fetch's own thread (engine/remotecollect.py).
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
# one call: the repository's git directory, the worktree's commit and its branch
info=$(git -C "$worktree" rev-parse --path-format=absolute --git-common-dir HEAD --abbrev-ref HEAD \
  2>/dev/null) || die 4 "$worktree is not on hatch/$task"
common=${info%%$'\n'*} info=${info#*$'\n'}
head=${info%%$'\n'*} current=${info#*$'\n'}
[[ $current == "hatch/$task" ]] || die 4 "$worktree is not on hatch/$task"
[[ $common == /* && -d $common/objects/pack ]] || die 3 "$worktree: no repository at $common"
# the packs fetched are moved into objects/pack: never through a link (an agent writes objects)
refuse_link "$common/objects"
refuse_link "$common/objects/pack"
# The scratch repositories' directory is this user's own and private (made 0700): a link or a
# directory another user can write in would let them put a link at the scratch just before it
# is made, and the fetch would make, write and then remove it wherever that link led.
fetch_dir=$common/hatch-fetch
refuse_link "$fetch_dir"
if [[ -e $fetch_dir ]]; then
  [[ -d $fetch_dir ]] || die 3 "$fetch_dir is not a directory"
  [[ -O $fetch_dir ]] || die 7 "unsafe path: $fetch_dir is not this user's (another could put a link in it)"
fi
scratch="$fetch_dir/$task.git"
# one a fetch killed by its timeout left, or a link: removed (a link itself, never followed)
[[ ! -e $scratch && ! -L $scratch ]] || run rm -rf -- "$scratch"
if [[ $HATCH_DRY_RUN == 1 ]]; then
  run git -C "$scratch" fetch --quiet --no-tags "$url" "+refs/heads/hatch/$task:refs/fetched"
  printf '%s\n' "$head"
  exit 0
fi
trap 'rm -rf -- "$scratch"' EXIT
# a bare repository by hand (HEAD, objects, refs: what git looks for; no `git init` process)
mkdir -p -m 700 -- "$fetch_dir" "$scratch" "$scratch/objects" "$scratch/objects/info" \
  "$scratch/objects/pack" "$scratch/refs" || die 3 "cannot make $scratch"
printf 'ref: refs/heads/none\n' >"$scratch/HEAD"
printf '%s\n' "$common/objects" >"$scratch/objects/info/alternates"
run git -C "$scratch" -c fetch.unpackLimit=1 -c maintenance.auto=false fetch --quiet --no-tags \
  --no-recurse-submodules "$url" "+refs/heads/hatch/$task:refs/fetched" >&2 ||
  die 3 "git fetch from $url failed"
new=$(git -C "$scratch" rev-parse --verify --quiet "refs/fetched^{commit}") ||
  die 3 "nothing fetched"
for idx in "$scratch"/objects/pack/pack-*.idx; do  # none: every object was here already
  [[ -e $idx ]] || continue
  pack=("${idx%.idx}.pack")
  [[ -e ${idx%.idx}.rev ]] && pack+=("${idx%.idx}.rev")
  mv -f -- "${pack[@]}" "$idx" "$common/objects/pack/" ||
    die 3 "cannot move ${idx##*/} into $common"
done
if [[ $new != "$head" ]]; then
  if git -C "$worktree" merge-base --is-ancestor "$head" "$new"; then
    run git -C "$worktree" merge --quiet --ff-only "$new" >&2 ||
      die 3 "fast-forward to $new failed"
  else
    run git -C "$worktree" reset --quiet --hard "$new" >&2 || die 3 "reset to $new failed"
  fi
fi
printf '%s\n' "$new"
