#!/usr/bin/env bash
# Run each cmocka unit-test binary; print a closing 'N passed, N failed' line over all of them.
set -uo pipefail
pass=0; fail=0; failed=()
for t in "$@"; do
	echo "== $t"
	out=$("$t" 2>&1); rc=$?
	echo "$out" | grep -v '^\s*$' | grep -Ev '"level":"(debug|info)"' || true
	p=$(echo "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
	f=$(echo "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
	pass=$((pass + ${p:-0}))
	if [ "$rc" -ne 0 ] || [ -n "$f" ]; then
		fail=$((fail + ${f:-1})); failed+=("$t")
	fi
done
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ] || { echo "failed binaries: ${failed[*]}"; exit 1; }
