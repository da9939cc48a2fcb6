#!/usr/bin/env bash
# On an SSH host: the task's worktree and repository there, at the commit the controller pushed.
# Usage: host_worktree.sh [--dry-run] REPO WORKTREE TASK_ID
#   REPO is the host's bare clone; the controller pushed the task's branch to
#   refs/hatch/push/TASK_ID (push_to_host.sh). The task has a repository of its own next to it,
#   tasks/TASK_ID.git (beside REPO), whose objects/info/alternates names REPO's objects: its
#   agent commits there (under the sandbox it can write that repository and nothing else of the
#   host's git), and the controller fetches the branch hatch/TASK_ID from it. WORKTREE's .git
#   file names it. The branch is created at the pushed commit, or kept as it is when it is that
#   commit or a descendant of it (the work of an earlier attempt on this host, committed or
#   not), else reset to it (the controller's branch moved: a retry, or work done elsewhere).
#   The files an agent could have changed to point git elsewhere (WORKTREE/.git, the config,
#   the alternates, a commondir) are written anew, never followed. A worktree of the older
#   layout (a linked worktree of REPO) is removed and made again.
# Prints the commit the branch is at. Exit codes: 0 ok, 2 usage, 3 git failed, 7 unsafe path.
set -euo pipefail
here=${0%/*}  # the script's directory (no dirname process)
[[ $0 == */* ]] || here=.
# shellcheck source=../lib.sh
source "$here/../lib.sh"
parse_common "$@"
set -- "${HATCH_ARGS[@]}"
[[ $# -eq 3 ]] || die 2 "usage: host_worktree.sh [--dry-run] REPO WORKTREE TASK_ID"
repo=${1%/} worktree=${2%/} task=$3
require_dir "$repo"
check_id "$task"
check_parent "$worktree"
refuse_link "$worktree"
[[ $repo == /* ]] || die 2 "REPO must be an absolute path: $repo"
umask 077
tasks=${repo%/*}/tasks
gitdir=$tasks/$task.git
refuse_link "$tasks"
refuse_link "$gitdir"
branch="hatch/$task"
want=$(query git -C "$repo" rev-parse --verify --quiet "refs/hatch/push/$task^{commit}") ||
  die 3 "nothing pushed for $task"
[[ $HATCH_DRY_RUN == 1 ]] && { echo "$want"; exit 0; }
if [[ -e $worktree && ! -d $gitdir ]]; then  # the older layout: a linked worktree of REPO
  run git -C "$repo" worktree remove --force "$worktree" 2>/dev/null || run rm -rf -- "$worktree"
  run git -C "$repo" worktree prune || die 3 "git worktree prune failed"
fi
if [[ ! -d $gitdir ]]; then
  run mkdir -p -- "$tasks"
  run git init --quiet --bare --template= --initial-branch="$branch" "$gitdir" >&2 ||
    die 3 "git init $gitdir failed"
fi
for sub in objects objects/info refs; do
  refuse_link "$gitdir/$sub"
done
run mkdir -p -- "$gitdir/objects/info" "$worktree"
rm -rf -- "$gitdir/commondir" "$gitdir/config" "$gitdir/objects/info/alternates" "$worktree/.git"
printf '[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n' >"$gitdir/config"
printf '%s\n' "$repo/objects" >"$gitdir/objects/info/alternates"
printf 'gitdir: %s\n' "$gitdir" >"$worktree/.git"
g() { git --git-dir="$gitdir" --work-tree="$worktree" "$@"; }
run g symbolic-ref HEAD "refs/heads/$branch" || die 3 "git symbolic-ref failed"
head=$(g rev-parse --verify --quiet "refs/heads/$branch^{commit}" || true)
if [[ -z $head ]] || { [[ $head != "$want" ]] && ! g merge-base --is-ancestor "$want" "$head"; }; then
  run g update-ref "refs/heads/$branch" "$want" || die 3 "git update-ref failed"
  run g reset --quiet --hard "$want" >&2 || die 3 "reset to $want failed"
elif [[ ! -e $gitdir/index ]]; then  # the worktree was removed: made again at the branch
  run g reset --quiet --hard "$head" >&2 || die 3 "reset to $head failed"
fi
g rev-parse "refs/heads/$branch"
