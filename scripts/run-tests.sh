#!/usr/bin/env bash
# `make test`'s pytest run, in two lanes at once. The sync engine's tests, which spend most of
# their time waiting on the vendors' rate limits (paced in real time, ~15 % CPU), run in a process
# of their own, while everything else keeps both cores busy (pytest-xdist, one file per worker at
# a time). Running them alongside took about half a minute off the whole run.
set -u
PYTEST="${PYTEST:-.venv/bin/pytest}"
WAITING=(tests/sync/test_engine.py tests/sync/test_activities.py)

log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$PYTEST" -q --durations=5 "${WAITING[@]}" >"$log" 2>&1 &
waiting_pid=$!

ignores=()
for path in "${WAITING[@]}"; do ignores+=("--ignore=$path"); done
"$PYTEST" -n 2 --dist loadfile --durations=15 "${ignores[@]}"
main=$?

wait "$waiting_pid"
waiting=$?
echo
echo "=== Run alongside, the tests that wait on the vendors' rate limits: ${WAITING[*]}"
if [ "$waiting" -eq 0 ]; then tail -n 12 "$log"; else cat "$log"; fi
[ "$main" -eq 0 ] && [ "$waiting" -eq 0 ]
