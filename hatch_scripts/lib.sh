# shellcheck shell=bash
# Shared helpers for hatch scripts. Sourced, never executed.
#   run CMD ARGS...    print the command to stderr, then run it (skipped under --dry-run)
#   query CMD ARGS...  print and run a read-only command (also under --dry-run)
#   die CODE MSG       print "script: MSG" to stderr and exit CODE
#   check_id ID        refuse anything but a valid task id (exit 2)
#   refuse_link PATH   refuse a symbolic link at PATH, dangling or not (exit 7)
#   check_parent PATH  refuse a ".." in PATH or a symbolic link as its parent directory (exit 7)
#   lock_worktrees REPO  hold REPO's worktree lock until the script exits (exit 3 on timeout)
#   unlock_worktrees     release it earlier
#   parent_of VAR PATH   VAR=PATH's parent directory, as dirname(1) prints it (no process)
#   resolve VAR PATH     VAR=PATH made absolute without symbolic links, as realpath -m prints it
#   mount_options VAR PATH  VAR=the options of the mount at PATH (absolute, resolved); false if none
# Exit code 2 always means a usage error (bad or missing arguments); 7 always means "unsafe
# path": a symbolic link (or a "..") where hatchctl expects a plain directory or file. Paths an
# agent can change are checked with -L and never resolved with realpath before a chmod or rm.

HATCH_DRY_RUN=${HATCH_DRY_RUN:-0}
HATCH_SCRIPT_NAME=${0##*/}  # basename, without a process (these helpers avoid subshells:
# a script runs for every launch and merge, and a fork per argument or mount adds up)

die() {
  local code=$1
  shift
  printf '%s: %s\n' "$HATCH_SCRIPT_NAME" "$*" >&2
  exit "$code"
}

_show() {
  local out='+'
  local arg quoted
  for arg in "$@"; do
    printf -v quoted '%q' "$arg"
    out+=" $quoted"
  done
  printf '%s\n' "$out" >&2
}

run() {
  if [[ $HATCH_DRY_RUN == 1 ]]; then
    _show "$@"
    return 0
  fi
  _show "$@"
  "$@"
}

# git's `worktree add` and `worktree prune` are not safe run at once: of 20 concurrent adds some
# fail, and a prune can remove the administrative directory of a worktree another add is making
# (its checkout then has no .git/worktrees/NAME). hatchctl makes worktrees in concurrent jobs,
# so every script that adds, prunes or removes worktrees holds this lock: flock(2) on REPO's
# .hatch directory itself (a directory opened read-only: no lock file to replace with a link;
# not .git, which a sandboxed agent sees and could hold locked forever: .hatch is an empty tmpfs
# in its sandbox), held on fd 9 until the script exits. HATCH_LOCK_TIMEOUT: seconds.
lock_worktrees() {
  [[ $HATCH_DRY_RUN == 1 ]] && return 0
  local dir="$1/.hatch"
  [[ ! -L $dir ]] || die 7 "unsafe path: $dir is a symbolic link"
  [[ -d $dir ]] || mkdir -p -m 700 -- "$dir" || die 3 "cannot make $dir"
  exec 9<"$dir"
  flock -w "${HATCH_LOCK_TIMEOUT:-60}" 9 ||
    die 3 "another hatchctl git operation held $dir for ${HATCH_LOCK_TIMEOUT:-60}s"
}

# Release the lock before the script's end (fd 9 closed: its children that had it have exited).
unlock_worktrees() {
  exec 9<&-
}

query() {
  _show "$@"
  "$@"
}

# Parse a leading --dry-run; the caller does: parse_common "$@"; set -- "${HATCH_ARGS[@]}"
parse_common() {
  HATCH_ARGS=()
  local arg
  for arg in "$@"; do
    case $arg in
      --dry-run) HATCH_DRY_RUN=1 ;;
      --help | -h)
        sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0" >&2
        exit 0
        ;;
      *) HATCH_ARGS+=("$arg") ;;
    esac
  done
}

check_id() {
  [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ && $1 != *..* && $1 != *. && $1 != *.lock ]] ||
    die 2 "invalid task id: $1"
}

refuse_link() {
  [[ ! -L ${1%/} ]] || die 7 "unsafe path: ${1%/} is a symbolic link (refusing to follow it)"
}

check_parent() {
  local path=${1%/} parent
  [[ /$path/ != */../* ]] || die 7 "unsafe path: $path has a .. component"
  parent_of parent "$path"
  refuse_link "$parent"
}

# dirname(1) without its process: the part before the last "/" (trailing and repeated slashes
# dropped), "." without one, "/" for the root. (Locals start with "_": VAR is set in the
# caller's scope with printf -v, which a local of the same name would shadow.)
parent_of() {
  local _p=$2
  while [[ $_p == *?/ ]]; do _p=${_p%/}; done
  if [[ $_p != */* ]]; then
    printf -v "$1" '%s' .
    return 0
  fi
  _p=${_p%/*}
  while [[ $_p == *?/ ]]; do _p=${_p%/}; done
  printf -v "$1" '%s' "${_p:-/}"
}

# realpath -m without its process where it can: an existing directory resolved by `cd -P` (in
# a subshell: a fork, no program); a plain name that does not exist yet, its parent resolved so
# and the name appended; anything else by realpath -m itself
resolve() {
  local _path=$2 _parent _name _real
  [[ $_path == /* ]] || _path=$PWD/$_path
  while [[ $_path == *?/ ]]; do _path=${_path%/}; done
  _name=${_path##*/}
  parent_of _parent "$_path"
  if [[ -d $_path ]] && _real=$(cd -P -- "$_path" && pwd -P); then
    printf -v "$1" '%s' "$_real"
  elif [[ ! -e $_path && ! -L $_path && -d $_parent && -n $_name && $_name != . && $_name != .. ]] &&
    _real=$(cd -P -- "$_parent" && pwd -P); then
    printf -v "$1" '%s' "${_real%/}/$_name"
  else
    printf -v "$1" '%s' "$(realpath -m -- "$_path")"
  fi
}

require_dir() {
  [[ -d $1 ]] || die 2 "not a directory: $1"
}

# Mount points at or below DIR (one per line), decoded from /proc/self/mountinfo.
mounts_under() {
  local dir mp
  resolve dir "$1"
  while read -r _ _ _ _ mp _; do
    printf -v mp '%b' "${mp//\\/\\0}"
    if [[ $mp == "$dir" || $mp == "$dir"/* ]]; then
      printf '%s\n' "$mp"
    fi
  done </proc/self/mountinfo
}

# The per-mount options ("ro,relatime", ...) of the topmost mount at PATH (absolute, resolved)
# into VAR; false when nothing is mounted there.
mount_options() {
  local _mp _opts _found=1
  while read -r _ _ _ _ _mp _opts _; do
    printf -v _mp '%b' "${_mp//\\/\\0}"
    [[ $_mp != "$2" ]] || { printf -v "$1" '%s' "$_opts" && _found=0; }
  done </proc/self/mountinfo
  return "$_found"
}
