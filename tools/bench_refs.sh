#!/usr/bin/env bash
# The references `make bench` measures hatchctl against, each pinned in a venv of its own under
# tools/ (their dependencies must not meet hatchctl's: toolong pins an older textual): tmuxp
# (launch), toolong's `tl` (the 1 GiB log) and py-spy (profiles). Once per version (a stamp);
# a failure only leaves that reference out (its benchmark says so and skips it).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
install() {  # install VENV SPEC...
  local venv=$1 stamp
  shift
  stamp="$venv/.installed-$(printf '%s_' "$@")"
  [[ -f $stamp ]] && return 0
  echo "bench_refs: installing $* into $venv" >&2
  if "$PY" -m venv "$venv" >&2 &&
    timeout 600 "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" >&2; then
    touch "$stamp"
  else
    echo "bench_refs: installing $* failed: its benchmark skips it" >&2
  fi
}
install tools/bench-venv tmuxp==1.76.0 py-spy==0.4.3
install tools/toolong-venv toolong==1.5.0
