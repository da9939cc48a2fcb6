#!/usr/bin/env bash
# Claude Code "Notification" hook: the agent needs the user (a permission prompt, or idle at its
# input box). Writes <stop file>.wait so hatchctl shows the run as waiting instead of stalled.
# Usage: wait_hook.sh   (hook JSON on stdin: session_id, transcript_path, message, ...;
#                        HATCH_* from the agent's environment)
# Always exits 0 so a hatchctl problem never blocks the agent; problems go to stderr.
set -uo pipefail
input=$(head -c 65536 || true)
for var in HATCH_RUN_ID HATCH_STOP_FILE; do
  [[ -n ${!var:-} ]] || { echo "wait_hook.sh: $var is not set; ignoring" >&2; exit 0; }
done
[[ $HATCH_RUN_ID =~ ^[0-9]+$ ]] || { echo "wait_hook.sh: invalid HATCH_RUN_ID; ignoring" >&2; exit 0; }
# the message, reduced to safe characters (it is shown in the control room)
message=$(printf '%s' "$input" | sed -n 's/.*"message"[[:space:]]*:[[:space:]]*"\([^"\\]\{1,300\}\)".*/\1/p' | head -n1 | tr -cd 'A-Za-z0-9 .,:;()/_-')
token=${HATCH_RUN_TOKEN:-}
[[ $token =~ ^[0-9a-f]{0,64}$ ]] || token=
tmp="$HATCH_STOP_FILE.wait.$$.tmp"
printf '{"run_id": %d, "reason": "notification", "message": "%s", "at": "%s", "token": "%s"}\n' \
  "$HATCH_RUN_ID" "${message:-the agent is waiting for input}" "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$token" >"$tmp" &&
  mv -f -- "$tmp" "$HATCH_STOP_FILE.wait"
exit 0
