#!/usr/bin/env bash
# make analyze, one file: clang-tidy with .clang-tidy, minus the checks .clang-tidy-suppress
# turns off for this file, every finding an error.
#
#   scripts/tidy-one.sh FILE -- COMPILER FLAGS...
set -uo pipefail
tidy=${CLANG_TIDY:-clang-tidy-14}
file=$1
shift
[ "${1:-}" = "--" ] && shift
off=$(awk -v f="$file" '$1 == f { printf ",-%s", $2 }' "$(dirname "$0")/../.clang-tidy-suppress")
out=$("$tidy" --quiet ${off:+--checks="$off"} "$file" -- "$@" 2>&1)
rc=$?
out=$(grep -v -E '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$' <<<"$out")
[ -n "$out" ] && echo "$out"
[ $rc -eq 0 ] || { echo "analyze: $file: clang-tidy findings (exit $rc)"; exit 1; }
echo "ok   $file"
