#!/usr/bin/env bash
# Run tests/sanitizer/lsan_leak (built by make asan) under the environment make asan gives every
# test, and fail unless LeakSanitizer reports its leak: a non-zero exit, the leak report, the
# 4242-byte block and the allocating frame lsan_leak_canary, and no suppressions-file error.
#
#   tests/sanitizer/lsan_expect_leak.sh build/asan/tests/sanitizer/lsan_leak
set -uo pipefail
bin=${1:?usage: lsan_expect_leak.sh BINARY}
out=$("$bin" 2>&1)
rc=$?
fail() {
	echo "$out"
	echo "FAIL lsan: $1 (exit $rc; LSAN_OPTIONS=${LSAN_OPTIONS:-})"
	exit 1
}
[ "$rc" -ne 0 ] || fail "the leaking program exited 0"
grep -q 'failed to read suppressions file' <<<"$out" && fail "the suppressions file was not read"
grep -q 'ERROR: LeakSanitizer: detected memory leaks' <<<"$out" || fail "no leak report"
grep -q 'Direct leak of 4242 byte' <<<"$out" || fail "the 4242-byte block is not reported"
grep -q 'lsan_leak_canary' <<<"$out" || fail "the report does not name lsan_leak_canary"
echo "ok   lsan: a deliberate leak is reported under make asan's options"
