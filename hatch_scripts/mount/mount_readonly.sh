#!/usr/bin/env bash
# Give a worktree a read-only view of the planning directory.
# Usage: mount_readonly.sh [--dry-run] SOURCE TARGET
# Tries a read-only bind mount (needs CAP_SYS_ADMIN); if that is not permitted, falls back to a
# read-only copy (files chmod a-w; a snapshot, not live). Prints the method used on stdout as
# the last line: "bind" or "copy". Idempotent: an existing bind mount of SOURCE is kept.
# HATCH_MOUNT_METHOD=copy skips the bind mount (auto, the default, tries bind first).
# TARGET is inside an agent's worktree: a symbolic link at TARGET or as its parent, or anywhere
# inside an existing TARGET, is refused (exit 7) before anything is created, mounted or copied.
# Exit codes: 0 ok, 2 usage, 6 neither method worked, 7 unsafe path (a symbolic link).
set -euo pipefail
here=${0%/*}  # the script's directory (no dirname process)
[[ $0 == */* ]] || here=.
# shellcheck source=../lib.sh
source "$here/../lib.sh"
parse_common "$@"
set -- "${HATCH_ARGS[@]}"
[[ $# -eq 2 ]] || die 2 "usage: mount_readonly.sh [--dry-run] SOURCE TARGET"
src=$1 dst=${2%/}
require_dir "$src"
resolve src "$src"
check_parent "$dst"
refuse_link "$dst"
resolve real "$dst"
if mount_options opts "$real"; then
  echo bind
  exit 0
fi
if [[ -e $dst ]]; then
  [[ -d $dst ]] || die 7 "unsafe path: $dst exists and is not a directory"
  link=$(find -P "$dst" -type l -print -quit) || die 7 "unsafe path: cannot inspect $dst"
  [[ -z $link ]] || die 7 "unsafe path: $link is a symbolic link (refusing to copy into it)"
fi
run mkdir -p -- "$dst"
method=${HATCH_MOUNT_METHOD:-auto}
[[ $method == auto || $method == copy ]] || die 2 "HATCH_MOUNT_METHOD must be auto or copy"
# one mount(8) binds and makes the view read-only (util-linux >= 2.27), as mountinfo must say;
# else the remount that older ones need
readonly_view() { mount_options opts "$real" && [[ ,$opts, == *,ro,* ]]; }
if [[ $method == auto && $EUID -eq 0 ]] && run mount --bind -o ro -- "$src" "$dst" 2>/dev/null; then
  if [[ $HATCH_DRY_RUN == 1 ]] || readonly_view ||
    { run mount -o remount,bind,ro -- "$dst" 2>/dev/null && readonly_view; }; then
    echo bind
    exit 0
  fi
  run umount -- "$dst" || die 6 "bind mounted $dst but could not make it read-only or unmount it"
fi
run cp -a -- "$src/." "$dst/" || die 6 "cannot copy $src to $dst"
run chmod -R a-w -- "$dst" || die 6 "cannot make $dst read-only"
echo copy
