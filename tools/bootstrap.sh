#!/usr/bin/env bash
# Bootstrap a development environment: system tools (tmux, git, bubblewrap) and the .venv.
# bubblewrap (bwrap) is the agents' sandbox: installed where possible; without it agents run
# unconfined (hatchctl doctor says so) and the sandbox tests are skipped with their reason.
# Usage: tools/bootstrap.sh            (idempotent; fast when everything is present)
# Exit codes: 0 ready, 1 a system tool is missing and cannot be installed here,
#             2 no suitable python3 (3.11+).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in tmux git; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ! command -v npm >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  missing+=(nodejs npm)  # the real agent CLIs for the presets' tests (Node 18+)
fi
if ! command -v chromium >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  missing+=(chromium)  # headless, for the `hatchctl serve` browser test (skipped without it)
fi
if [[ ! -x /usr/sbin/sshd ]] && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  missing+=(openssh-server)  # a throwaway sshd on 127.0.0.1 for the hosts tests (skipped without it)
fi
if ! command -v inotifywait >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  missing+=(inotify-tools)  # a host's .stop files as they happen (without it the watcher polls)
fi
if ! command -v bwrap >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    missing+=(bubblewrap)
  else
    echo "bootstrap: bwrap not found: agents will run without a sandbox (sudo apt-get install -y bubblewrap)" >&2
  fi
fi
if ((${#missing[@]})); then
  install_cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
  if command -v apt-get >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]]; then
      echo "bootstrap: installing ${missing[*]}" >&2
      apt-get update -qq >&2 || true
      DEBIAN_FRONTEND=noninteractive "${install_cmd[@]}" >&2
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      echo "bootstrap: installing ${missing[*]} with sudo" >&2
      sudo apt-get update -qq >&2 || true
      sudo DEBIAN_FRONTEND=noninteractive "${install_cmd[@]}" >&2
    else
      echo "bootstrap: missing ${missing[*]}; install with: sudo ${install_cmd[*]}" >&2
      exit 1
    fi
  else
    echo "bootstrap: missing ${missing[*]}; install them with your package manager" >&2
    exit 1
  fi
fi

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "bootstrap: need python3 >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
  exit 2
fi

# The real agent CLIs (pinned in tools/agent-clis/package.json) for the presets' tests; the tests
# that need one skip with the reason when it is missing.
clis=tools/agent-clis
if [[ ! -f $clis/node_modules/.installed || $clis/package.json -nt $clis/node_modules/.installed ]]; then
  if command -v npm >/dev/null 2>&1; then
    echo "bootstrap: installing the agent CLIs (npm ci in $clis)" >&2
    if (cd "$clis" && timeout 600 npm ci --no-audit --no-fund --loglevel=error >&2); then
      touch "$clis/node_modules/.installed"
    else
      echo "bootstrap: npm ci failed; the real-agent tests will be skipped" >&2
    fi
  else
    echo "bootstrap: npm not found; the real-agent tests will be skipped (sudo apt-get install -y nodejs npm)" >&2
  fi
fi

# aider (pinned, for the aider preset's tests) in a venv of its own: its many pinned dependencies
# must not meet hatchctl's. Once (a stamp per version); about 700 MB. HATCH_NO_AIDER=1 skips it;
# a failure only skips those tests.
aider_pin=aider-chat==0.86.2
aider_venv=tools/aider-venv
if [[ -z ${HATCH_NO_AIDER:-} && ! -f $aider_venv/.installed-$aider_pin && ! -f $aider_venv.failed ]]; then
  echo "bootstrap: installing $aider_pin into $aider_venv (HATCH_NO_AIDER=1 skips it)" >&2
  if "$PY" -m venv "$aider_venv" >&2 &&
    timeout 900 "$aider_venv/bin/python" -m pip install --quiet --disable-pip-version-check "$aider_pin" >&2; then
    touch "$aider_venv/.installed-$aider_pin"
  else
    touch "$aider_venv.failed"  # not retried on every run: delete it to try again
    echo "bootstrap: installing aider failed ($aider_venv.failed); the aider preset's tests will be skipped" >&2
  fi
fi

stamp=.venv/.hatchctl-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp || constraints.txt -nt $stamp ]]; then
  if [[ ! -x .venv/bin/python ]]; then
    echo "bootstrap: creating .venv" >&2
    "$PY" -m venv .venv
  fi
  echo "bootstrap: installing hatchctl[test] into .venv" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]' >&2
  touch "$stamp"
fi

# hatchctl is installed editable, so pip compiled none of its modules; where
# PYTHONDONTWRITEBYTECODE is set (as on CI) no import writes them either, and every hatchctl
# process (a supervisor, `hatchctl status`, each simulated agent) compiled every module it
# imports from source, about 80 ms of CPU each. Compiled here once; a stale file is only
# skipped by the import (Python checks the source's mtime).
.venv/bin/python -m compileall -q hatchctl >&2
