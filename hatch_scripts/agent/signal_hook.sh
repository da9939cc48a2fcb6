#!/usr/bin/env bash
# Claude Code hooks other than Stop, each a signal file next to the run's stop file:
#   signal_hook.sh wait       (Notification or PermissionRequest: the agent needs the user: a
#                              permission prompt, or it idles at its input box)
#                              -> <stop file>.wait: the run shows waiting; prints nothing (a
#                              PermissionRequest hook's output would be a decision)
#   signal_hook.sh submitted  (UserPromptSubmit: a prompt was submitted) -> <stop file>.submitted:
#                              hatchctl's paste was taken (delivery confirmed)
# Usage: signal_hook.sh wait|submitted   (hook JSON on stdin; HATCH_* from the agent's environment)
# Always exits 0 so a hatchctl problem never blocks the agent; problems go to stderr.
set -uo pipefail
kind=${1:-}
[[ $kind == wait || $kind == submitted ]] || { echo "signal_hook.sh: usage: signal_hook.sh wait|submitted" >&2; exit 0; }
input=$(head -c 65536 || true)
for var in HATCH_RUN_ID HATCH_STOP_FILE; do
  [[ -n ${!var:-} ]] || { echo "signal_hook.sh: $var is not set; ignoring" >&2; exit 0; }
done
[[ $HATCH_RUN_ID =~ ^[0-9]+$ ]] || { echo "signal_hook.sh: invalid HATCH_RUN_ID; ignoring" >&2; exit 0; }
# the message, reduced to safe characters (it is shown in the control room)
message=$(printf '%s' "$input" | sed -n 's/.*"message"[[:space:]]*:[[:space:]]*"\([^"\\]\{1,300\}\)".*/\1/p' | head -n1 | tr -cd 'A-Za-z0-9 .,:;()/_-')
if [[ -z $message ]]; then  # PermissionRequest carries the tool, not a message
  tool=$(printf '%s' "$input" | sed -n 's/.*"tool_name"[[:space:]]*:[[:space:]]*"\([A-Za-z0-9_.:-]\{1,64\}\)".*/\1/p' | head -n1)
  [[ -z $tool ]] || message="permission to use $tool"
fi
token=${HATCH_RUN_TOKEN:-}
[[ $token =~ ^[0-9a-f]{0,64}$ ]] || token=
tmp="$HATCH_STOP_FILE.$kind.$$.tmp"
printf '{"run_id": %d, "reason": "%s", "message": "%s", "at": "%s", "token": "%s"}\n' \
  "$HATCH_RUN_ID" "$kind" "${message:-the agent is waiting for input}" "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$token" >"$tmp" &&
  mv -f -- "$tmp" "$HATCH_STOP_FILE.$kind"
exit 0
