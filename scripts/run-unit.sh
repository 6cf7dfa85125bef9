#!/usr/bin/env bash
# Run each cmocka unit-test binary; show a line per binary (the whole output when it fails) and
# a closing 'N passed, N failed' line over all of them.
set -uo pipefail
pass=0; fail=0; failed=()
for t in "$@"; do
	out=$("$t" 2>&1); rc=$?
	p=$(echo "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
	f=$(echo "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
	pass=$((pass + ${p:-0}))
	if [ "$rc" -ne 0 ] || [ -n "$f" ]; then
		echo "$out"
		echo "FAIL $t (exit $rc)"
		fail=$((fail + ${f:-1})); failed+=("$t")
	else
		echo "ok   $t: ${p:-0} tests"
	fi
done
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ] || { echo "failed binaries: ${failed[*]}"; exit 1; }
