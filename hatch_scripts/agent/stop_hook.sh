#!/usr/bin/env bash
# Claude Code "Stop" hook: the agent finished a turn (paused). Writes a .stop with reason "hook".
# Usage: stop_hook.sh   (hook JSON on stdin: session_id, transcript_path, cwd, hook_event_name,
#                        stop_hook_active; HATCH_* from the agent's environment)
# Always exits 0 so a hatchctl problem never blocks the agent; problems go to stderr.
set -uo pipefail
input=$(head -c 65536 || true)
for var in HATCH_TASK_ID HATCH_ROLE HATCH_ITERATION HATCH_ATTEMPT HATCH_STOP_FILE; do
  [[ -n ${!var:-} ]] || { echo "stop_hook.sh: $var is not set; ignoring" >&2; exit 0; }
done
[[ $HATCH_ITERATION =~ ^[0-9]+$ && $HATCH_ATTEMPT =~ ^[0-9]+$ && $HATCH_TASK_ID =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]] ||
  { echo "stop_hook.sh: invalid HATCH_* values; ignoring" >&2; exit 0; }
session=$(printf '%s' "$input" | sed -n 's/.*"session_id"[[:space:]]*:[[:space:]]*"\([A-Za-z0-9._-]\{1,128\}\)".*/\1/p' | head -n1)
# where Claude Code keeps the session's transcript (hatchctl reads token usage from it)
transcript=$(printf '%s' "$input" | sed -n 's/.*"transcript_path"[[:space:]]*:[[:space:]]*"\([A-Za-z0-9._@+/-]\{1,1024\}\.jsonl\)".*/\1/p' | head -n1)
active=false
if printf '%s' "$input" | grep -q '"stop_hook_active"[[:space:]]*:[[:space:]]*true'; then active=true; fi
token=${HATCH_RUN_TOKEN:-}
[[ $token =~ ^[0-9a-f]{0,64}$ ]] || token=
tmp="$HATCH_STOP_FILE.$$.tmp"
printf '{"task_id": "%s", "role": "%s", "iteration": %d, "attempt": %d, "reason": "hook", "exit_code": null, "at": "%s", "session_id": "%s", "stop_hook_active": %s, "run_id": %d, "token": "%s", "transcript_path": "%s"}\n' \
  "$HATCH_TASK_ID" "$HATCH_ROLE" "$HATCH_ITERATION" "$HATCH_ATTEMPT" "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" \
  "$session" "$active" "${HATCH_RUN_ID:-0}" "$token" "$transcript" >"$tmp" && mv -f -- "$tmp" "$HATCH_STOP_FILE"
exit 0
