#!/usr/bin/env bash
# Undo mount_readonly.sh: unmount a bind mount (never deleting through it), or delete a copy.
# Usage: unmount.sh [--dry-run] TARGET
# A symbolic link at TARGET (an agent replaced its view with one) is removed itself: what it
# points to is never unmounted, chmod'ed or deleted. A symbolic link as TARGET's parent, or a
# ".." in TARGET, is refused (exit 7).
# Exit codes: 0 done (or nothing there), 2 usage, 5 still mounted after umount (refused),
# 7 unsafe path.
set -euo pipefail
here=${0%/*}  # the script's directory (no dirname process)
[[ $0 == */* ]] || here=.
# shellcheck source=../lib.sh
source "$here/../lib.sh"
parse_common "$@"
set -- "${HATCH_ARGS[@]}"
[[ $# -eq 1 ]] || die 2 "usage: unmount.sh [--dry-run] TARGET"
dst=${1%/}
check_parent "$dst"
if [[ -L $dst ]]; then
  printf '%s: %s is a symbolic link: removing the link only\n' "$HATCH_SCRIPT_NAME" "$dst" >&2
  run rm -f -- "$dst"
  exit 0
fi
[[ -e $dst ]] || exit 0
while IFS= read -r mp; do
  [[ -n $mp ]] || continue
  run umount -- "$mp" || run umount -l -- "$mp" || true
done < <(mounts_under "$dst" | sort -r)
if [[ $HATCH_DRY_RUN == 0 && -n $(mounts_under "$dst") ]]; then
  die 5 "still mounted: $dst"
fi
# Nothing is mounted at or below $dst now and $dst is no link: chmod -R and rm -rf stay inside
# it (neither follows a symbolic link found below it).
run chmod -R u+w -- "$dst"
run rm -rf -- "$dst"
