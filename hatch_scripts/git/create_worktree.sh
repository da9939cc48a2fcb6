#!/usr/bin/env bash
# Create the git worktree for a task, on branch hatch/<TASK_ID>, from BASE_REF.
# Usage: create_worktree.sh [--dry-run] [--reset] REPO WORKTREE TASK_ID BASE_REF
#   --reset  recreate the branch at BASE_REF even if it exists (a retried task starts fresh)
# Idempotent: an existing worktree of this task on its branch is kept as it is (its checkout
# finished if it had not); what an add killed before it finished left is made again.
# Prints the commit the branch starts from (or is at) on stdout.
# Exit codes: 0 ok, 2 usage, 3 git failed, 4 WORKTREE exists but is not this task's worktree,
# 7 unsafe path (WORKTREE is a symbolic link).
set -euo pipefail
here=${0%/*}  # the script's directory (no dirname process)
[[ $0 == */* ]] || here=.
# shellcheck source=../lib.sh
source "$here/../lib.sh"
parse_common "$@"
set -- "${HATCH_ARGS[@]}"
reset=0
if [[ ${1:-} == --reset ]]; then
  reset=1
  shift
fi
[[ $# -eq 4 ]] || die 2 "usage: create_worktree.sh [--dry-run] [--reset] REPO WORKTREE TASK_ID BASE_REF"
repo=$1 worktree=${2%/} task=$3 base=$4
[[ $worktree == /* ]] || worktree=$PWD/$worktree  # git -C REPO would read it from REPO
require_dir "$repo"
check_id "$task"
refuse_link "$worktree"
branch="hatch/$task"

# A full sha (what hatchctl passes: the tip it read) is taken as it is, `worktree add` refusing
# one that is not a commit; a name is resolved once
if [[ $base =~ ^[0-9a-f]{40}([0-9a-f]{24})?$ ]]; then
  commit=$base
else
  commit=$(query git -C "$repo" rev-parse --verify --quiet "$base^{commit}") || die 3 "unknown base ref: $base"
fi

# Whether WORKTREE is what a `git worktree add` left that never finished (its supervisor killed
# mid-add): git's own "initializing" lock on the registration, HEAD not yet a commit, nothing in
# the directory but its .git file, which names a registration of REPO. Sets $admin.
unfinished_add() {
  local gitfile=$worktree/.git line common name
  [[ -f $gitfile && ! -L $gitfile ]] || return 1
  [[ -z $(find "$worktree" -mindepth 1 -maxdepth 1 ! -name .git -print -quit) ]] || return 1
  read -r line <"$gitfile" || return 1
  admin=${line#gitdir: } name=${line##*/}
  common=$(git -C "$repo" rev-parse --path-format=absolute --git-common-dir) || return 1
  # its own registration only (named as git names it: the directory's name), never another's
  [[ $name == "${worktree##*/}" && $admin == "$common/worktrees/$name" ]] || return 1
  [[ -d $admin && ! -L $admin ]] || return 1
  [[ -f $admin/locked && ! -L $admin/locked && $(<"$admin/locked") == initializing* ]]
}

if [[ -e $worktree ]]; then
  current=$(git -C "$worktree" rev-parse --abbrev-ref HEAD 2>/dev/null || true)
  if [[ $current != "$branch" ]] && unfinished_add; then
    # nothing of it was used (no checkout, no agent): its registration and directory go, and
    # it is made again below
    run rm -rf -- "$admin"
    run rm -f -- "$worktree/.git"
    run rmdir -- "$worktree"
  else
    [[ $current == "$branch" ]] || die 4 "$worktree exists and is not the worktree of $branch"
    if [[ $reset == 0 ]]; then
      index=$(git -C "$worktree" rev-parse --path-format=absolute --git-path index)
      if [[ ! -e $index ]]; then
        # its checkout never finished (killed: `add --no-checkout` writes no index, the checkout
        # writes it last, through index.lock): no agent has run in it; checked out now
        run rm -f -- "$index.lock"
        run git -C "$worktree" reset -q --hard --no-recurse-submodules >&2 || die 3 "cannot check out $worktree"
      fi
      git -C "$worktree" rev-parse HEAD
      exit 0
    fi
    # through remove_worktree.sh: it unmounts the read-only planning view first
    run bash "$here/remove_worktree.sh" "$repo" "$worktree" >&2 || die 3 "cannot remove stale worktree $worktree"
  fi
fi
parent_of parent "$worktree"
[[ -d $parent ]] || run mkdir -p -- "$parent"
lock_worktrees "$repo"  # (after remove_worktree.sh above: it takes the lock itself)
# The branch starts at $commit, the base resolved once (and printed: no rev-parse after).
if [[ $reset == 0 ]] && tip=$(git -C "$repo" show-ref --verify -s "refs/heads/$branch" 2>/dev/null); then
  args=("$worktree" "$branch") commit=$tip
else
  args=(-B "$branch" "$worktree" "$commit")
fi
# `worktree prune` only when `add` fails (then `add` once more): a stale registration holding the
# branch (a worktree deleted under its task) makes it fail; one of WORKTREE itself --force clears
run git -C "$repo" worktree add --no-checkout --force "${args[@]}" >&2 ||
  { run git -C "$repo" worktree prune &&
    run git -C "$repo" worktree add --no-checkout --force "${args[@]}" >&2; } ||
  die 3 "git worktree add failed"
# The checkout (what `add` itself would run) outside the lock: the worktree is registered and
# complete, other adds and prunes leave it alone, and other tasks' checkouts run meanwhile
unlock_worktrees
run git -C "$worktree" reset -q --hard --no-recurse-submodules >&2 || die 3 "cannot check out $worktree"
printf '%s\n' "$commit"
