#!/usr/bin/env bash
# A benchmark agent (bench/bench_stop_latency.py): streams a line every 0.5 s for a few seconds
# like a working agent, writes a valid handover summary next to its stop file, exits 0. The real
# wrapper (run_agent.sh) then writes the .stop file. Seconds: HATCH_BENCH_MIN..HATCH_BENCH_MAX.
set -euo pipefail
min=${HATCH_BENCH_MIN:-3}
max=${HATCH_BENCH_MAX:-8}
steps=$(( (min + RANDOM % (max - min + 1)) * 2 ))
for ((i = 0; i < steps; i++)); do
  printf 'step %d of %d: reading, thinking, editing\n' "$i" "$steps"
  sleep 0.5
done
status=approved commits='' files=''
if [[ $HATCH_ROLE == factory ]]; then  # the change the spec declares, committed on the task branch
  status=completed
  file="src/$HATCH_TASK_ID.py"
  mkdir -p src
  printf 'def part():\n    return "%s"\n' "$HATCH_TASK_ID" >"$file"
  git add -- "$file"
  git commit -q -m "$HATCH_TASK_ID: part" -- "$file"
  commits="\"$(git rev-parse HEAD)\"" files="\"$file\""
fi
summary=${HATCH_SUMMARY_FILE:-$(dirname -- "$HATCH_STOP_FILE")/summary.json}
printf '{"schema_version": 1, "task_id": "%s", "role": "%s", "iteration": %d, "status": "%s", "commits": [%s], "implementation_files": [%s]}\n' \
  "$HATCH_TASK_ID" "$HATCH_ROLE" "$HATCH_ITERATION" "$status" "$commits" "$files" >"$summary.$$"
mv -f -- "$summary.$$" "$summary"
