#!/usr/bin/env bash
# make soak: memory must not grow with traffic. Starts corepiped, sends 10,000 requests, reads
# its RSS, sends 1,000,000 more (perf/corepipe-bench -c 16), reads RSS again, and fails if it
# grew by more than 5% (or 8 MiB, whichever is larger). Bounded: one run, ~2 minutes here.
set -euo pipefail
B=${1:-build/release}
N=${SOAK_REQUESTS:-1000000}
OUT=$(mktemp -d /tmp/corepipe-soak.XXXXXX)
PID=""
cleanup() { [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$OUT"; }
trap cleanup EXIT
COREPIPE_SERVER_METRICS_LISTEN=127.0.0.1:0 "$B/corepiped" --config config/corepipe.yaml \
	--grpc-listen 127.0.0.1:0 2> "$OUT/log" &
PID=$!
for _ in $(seq 300); do
	PORT=$(grep -o '"grpc_port":[0-9]*' "$OUT/log" | cut -d: -f2 || true)
	[ -n "$PORT" ] && break
	sleep 0.1
done
[ -n "$PORT" ] || { cat "$OUT/log"; exit 1; }
rss() { awk '/^VmRSS:/ {print $2}' /proc/$PID/status; }
"$B/perf/corepipe-bench" --target 127.0.0.1:$PORT -c 16 -n 10000 --warmup 0 -z 3600 --check-output >/dev/null
R1=$(rss)
echo "\$ $B/perf/corepipe-bench --target 127.0.0.1:$PORT -c 16 -n $N --warmup 0 -z 3600 --check-output"
"$B/perf/corepipe-bench" --target 127.0.0.1:$PORT -c 16 -n "$N" --warmup 0 -z 3600 --check-output
R2=$(rss)
ALLOW=$(( R1 / 20 > 8192 ? R1 / 20 : 8192 ))
echo "soak: RSS after 10000 requests ${R1} KiB, after $N more ${R2} KiB (allowed growth ${ALLOW} KiB)"
if [ $(( R2 - R1 )) -gt "$ALLOW" ]; then
	echo "soak: 0 passed, 1 failed"
	exit 1
fi
echo "soak: 1 passed, 0 failed"
