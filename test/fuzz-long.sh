#!/bin/sh
# The longer fuzz run of docs/reliability.md: every fuzz target (found by
# name, as .ci/run finds them) for FUZZTIME each (default 2m), one worker,
# at low priority so a shared machine stays usable. Prints one line per
# target; a target that finds a failing input stops the run with its output
# (the input is saved under the package's testdata/fuzz).
set -eu
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-2m}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for f in $(git grep -l -E '^func Fuzz' -- '*_test.go'); do
  pkg="./$(dirname "$f")"
  for name in $(grep -o -E '^func Fuzz[A-Za-z0-9_]+' "$f" | cut -d' ' -f2); do
    start=$(date +%s)
    if ! nice -n 19 go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -parallel 1 "$pkg" >"$log" 2>&1; then
      echo "$pkg $name FAILED:"; cat "$log"; exit 1
    fi
    echo "$pkg $name ok in $(( $(date +%s) - start ))s: $(grep -E '^fuzz: elapsed' "$log" | tail -1)"
  done
done
