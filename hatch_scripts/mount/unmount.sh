#!/usr/bin/env bash
# Undo mount_readonly.sh: unmount a bind mount (never deleting through it), or delete a copy.
# Usage: unmount.sh [--dry-run] TARGET
# Exit codes: 0 done (or nothing there), 2 usage, 5 still mounted after umount (refused).
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
parse_common "$@"
set -- "${HATCH_ARGS[@]}"
[[ $# -eq 1 ]] || die 2 "usage: unmount.sh [--dry-run] TARGET"
dst=$(realpath -m -- "$1")
[[ -e $dst ]] || exit 0
while IFS= read -r mp; do
  [[ -n $mp ]] || continue
  run umount -- "$mp" || run umount -l -- "$mp" || true
done < <(mounts_under "$dst" | sort -r)
if [[ $HATCH_DRY_RUN == 0 && -n $(mounts_under "$dst") ]]; then
  die 5 "still mounted: $dst"
fi
# Nothing is mounted at or below $dst now: deleting it cannot reach the source.
run chmod -R u+w -- "$dst"
run rm -rf -- "$dst"
