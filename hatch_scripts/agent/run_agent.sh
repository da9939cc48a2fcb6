#!/usr/bin/env bash
# Run one agent launch in a tmux pane and record how it ended.
# Usage: run_agent.sh AGENT_COMMAND [ARGS...]
#   hatchctl passes the agent's command wrapped: the reaper (every process the agent starts dies
#   with it), then, with the sandbox on, bwrap with the run's view of the machine.
# Environment (set by hatchctl): HATCH_RUN_ID HATCH_TASK_ID HATCH_ROLE HATCH_ITERATION
#   HATCH_ATTEMPT HATCH_WORKTREE HATCH_PROMPT_FILE HATCH_STOP_FILE HATCH_STATE_DIR
#   HATCH_RUN_TOKEN (the run's secret; its .stop files carry it)
#   HATCH_PROMPT_ARG (1: pass the prompt text as the last argument) HATCH_LAUNCH_TIMEOUT (s)
#   HATCH_PROMPT_DELIVERED (when set: the text to pass instead, a pointer to the prompt file
#   when the prompt is too long for one argument: Linux caps one at 128 KiB)
#   HATCH_BIN_DIR (put first on PATH: where hatchctl itself is installed)
# 1. Refuses to run anywhere but in its worktree (exit 76): a pane that tmux started elsewhere
#    must not run an agent there.
# 2. Waits for the launch ticket runs/<RUN_ID>.ticket and claims it with an atomic rename;
#    a cancelled or missing ticket means this launch must not run (exit 75, agent never started).
# 3. Runs the agent (its arguments are passed as a list, never through a shell).
# 4. Writes the .stop file atomically (temp file + mv) with the agent's exit status, even when
#    the agent exits within milliseconds: tmux's pane-died hook is not relied on.
# Exit codes: the agent's own, 2 usage, 75 no ticket (launch cancelled or timed out),
#   76 not started in its worktree.
set -euo pipefail
[[ $# -ge 1 ]] || { echo "run_agent.sh: usage: run_agent.sh AGENT_COMMAND [ARGS...]" >&2; exit 2; }
for var in HATCH_RUN_ID HATCH_TASK_ID HATCH_ROLE HATCH_ITERATION HATCH_ATTEMPT HATCH_STOP_FILE HATCH_STATE_DIR; do
  [[ -n ${!var:-} ]] || { echo "run_agent.sh: $var is not set" >&2; exit 2; }
done
[[ $HATCH_RUN_ID =~ ^[0-9]+$ && $HATCH_ITERATION =~ ^[0-9]+$ && $HATCH_ATTEMPT =~ ^[0-9]+$ ]] ||
  { echo "run_agent.sh: run id, iteration and attempt must be numbers" >&2; exit 2; }
[[ $HATCH_TASK_ID =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]] || { echo "run_agent.sh: invalid task id" >&2; exit 2; }
[[ $HATCH_ROLE == factory || $HATCH_ROLE == qa || $HATCH_ROLE == planner ]] || { echo "run_agent.sh: invalid role" >&2; exit 2; }

[[ -n ${HATCH_WORKTREE:-} && -d $HATCH_WORKTREE && $(pwd -P) == "$(cd -- "$HATCH_WORKTREE" && pwd -P)" ]] || {
  echo "run_agent.sh: the pane started in $(pwd -P), not in the worktree; not starting" >&2
  exit 76
}

runs="$HATCH_STATE_DIR/runs"
ticket="$runs/$HATCH_RUN_ID.ticket"
claimed="$runs/$HATCH_RUN_ID.claimed"
timeout_ms=$(( ${HATCH_LAUNCH_TIMEOUT:-30} * 1000 ))
waited=0
# the 10 ms naps: `read -t` on a pipe nobody writes to (one fork for all of them, where a
# `sleep` per nap is a program started every 10 ms by every pane waiting at once)
[[ -e $ticket ]] || exec {nap}<> <(:)
while [[ ! -e $ticket ]]; do
  if [[ -e $runs/$HATCH_RUN_ID.cancelled || $waited -ge $timeout_ms ]]; then
    echo "run_agent.sh: launch $HATCH_RUN_ID was cancelled or never confirmed; not starting" >&2
    exit 75
  fi
  read -r -t 0.01 -u "$nap" _ || true
  waited=$((waited + 10))
done
[[ -z ${nap:-} ]] || exec {nap}<&-
mv -- "$ticket" "$claimed" 2>/dev/null || {
  echo "run_agent.sh: launch $HATCH_RUN_ID was cancelled; not starting" >&2
  exit 75
}
# UTC with milliseconds and the epoch in ns, from bash's clock ($EPOCHREALTIME, bash >= 5: no
# `date` process), else from date(1)
now() {
  local t=${EPOCHREALTIME:-} s
  if [[ -z $t ]]; then
    printf -v "$1" '%s' "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)"
    printf -v "$2" '%s' "$(date +%s%N)"
    return
  fi
  TZ=UTC0 printf -v s '%(%Y-%m-%dT%H:%M:%S)T' "${t%[.,]*}"
  printf -v "$1" '%s.%sZ' "$s" "${t:${#t}-6:3}"
  printf -v "$2" '%s%s000' "${t%[.,]*}" "${t:${#t}-6}"
}
now at ns
printf 'pid=%s started_at=%s started_ns=%s\n' "$$" "$at" "$ns" >>"$claimed"

if [[ -n ${HATCH_BIN_DIR:-} ]]; then
  export PATH="$HATCH_BIN_DIR:$PATH"
fi
args=("$@")
if [[ ${HATCH_PROMPT_ARG:-0} == 1 && -n ${HATCH_PROMPT_FILE:-} ]]; then
  prompt=
  { IFS= read -r -d '' prompt || true; } <"${HATCH_PROMPT_DELIVERED:-$HATCH_PROMPT_FILE}"  # all of it
  args+=("$prompt")
fi
set +e
"${args[@]}"
code=$?
set -e
now at ns
printf 'ended_at=%s ended_ns=%s exit_code=%s\n' "$at" "$ns" "$code" >>"$claimed"
tmp="$HATCH_STOP_FILE.$$.tmp"
token=${HATCH_RUN_TOKEN:-}
[[ $token =~ ^[0-9a-f]{0,64}$ ]] || token=
printf '{"task_id": "%s", "role": "%s", "iteration": %d, "attempt": %d, "reason": "exit", "exit_code": %d, "at": "%s", "run_id": %d, "token": "%s"}\n' \
  "$HATCH_TASK_ID" "$HATCH_ROLE" "$HATCH_ITERATION" "$HATCH_ATTEMPT" "$code" "$at" "$HATCH_RUN_ID" "$token" >"$tmp"
mv -f -- "$tmp" "$HATCH_STOP_FILE"
exit "$code"
