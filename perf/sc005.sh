#!/usr/bin/env bash
# perf/sc005.sh: seed success criterion SC-005 (issue 14, docs/performance.md "Fair execution"):
# "95% of requests complete within 2x local execution time".
#
# One corepiped of our own on loopback (the default lcore map, or CPUS="0" etc. to confine it
# with taskset), the shipped config's speech16k pipeline (convert, channels, resample to 16 kHz,
# VAD). For C in 1 4: C clients each keep one unary Execute of 1 s of 48 kHz stereo S16 audio
# (192,000 bytes) outstanding for SECS seconds. "Local execution time" is the worker's own time
# per request, read from the server (corepipe_request_duration_seconds: the data-plane time of
# the pipeline's nodes on one request, sum / count over the same run); the client-side p95 is
# set against twice that. Prints one line per C and the load average at the start.
#
# usage: perf/sc005.sh [BUILD_DIR] [SECS]      Stops only the processes it started (by PID).
set -euo pipefail
B=${1:-build/release}
SECS=${2:-8}
DIR=$(mktemp -d /tmp/corepipe-sc005.XXXXXX)
SRV=""
cleanup() {
	if [ -n "$SRV" ]; then
		kill "$SRV" 2>/dev/null || true
		wait "$SRV" 2>/dev/null || true
	fi
	rm -rf "$DIR"
}
trap cleanup EXIT

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
PIN=()
[ -n "${CPUS:-}" ] && PIN=(taskset -c "$CPUS")
COREPIPE_SERVER_METRICS_LISTEN=127.0.0.1:0 "${PIN[@]}" "$B/corepiped" \
	--config config/corepipe.yaml --grpc-listen 127.0.0.1:0 --log-level info \
	2> "$DIR/server.log" &
SRV=$!
PORT="" MPORT=""
for _ in $(seq 300); do
	PORT=$(grep -o '"grpc_port":[0-9]*' "$DIR/server.log" | cut -d: -f2 || true)
	MPORT=$(grep -o '"metrics_port":[0-9]*' "$DIR/server.log" | cut -d: -f2 || true)
	[ -n "$PORT" ] && [ -n "$MPORT" ] && break
	kill -0 "$SRV" 2>/dev/null || break
	sleep 0.1
done
[ -n "$PORT" ] || { echo "sc005: corepiped did not start" >&2; cat "$DIR/server.log" >&2; exit 1; }
BENCH=$B/perf/corepipe-bench
ROLES=$(grep -o '"roles":"[^"]*"' "$DIR/server.log" | head -1)
echo "sc005: $(date -u +%FT%TZ), $(nproc) CPUs, load at start $LOAD0, $ROLES, ${SECS} s per point"

# The worker's time on speech16k so far: "sum count" from /metrics.
worker_time() {
	curl -sf "http://127.0.0.1:$MPORT/metrics" | awk '
		/^corepipe_request_duration_seconds_sum\{pipeline="speech16k"\}/ {s = $NF}
		/^corepipe_request_duration_seconds_count\{pipeline="speech16k"\}/ {n = $NF}
		END {printf "%s %s\n", s + 0, n + 0}'
}
ARGS=(--target "127.0.0.1:$PORT" --pipeline speech16k --audio-format s16le --audio-rate 48000
	--audio-channels 2 --frame-ms 1000 -t 10000)
# Warm up: buffers, the cost model, the resampler's first set-up.
"$BENCH" "${ARGS[@]}" -n 50 --warmup 0 >/dev/null
for c in 1 4; do
	read -r s0 n0 < <(worker_time)
	"$BENCH" "${ARGS[@]}" -c "$c" -z "$SECS" --warmup 1 --format json -o "$DIR/c$c.json" \
		>/dev/null
	read -r s1 n1 < <(worker_time)
	python3 - "$DIR/c$c.json" "$c" "$s0" "$n0" "$s1" "$n1" <<'PY'
import json, sys
path, c = sys.argv[1], int(sys.argv[2])
s0, n0, s1, n1 = map(float, sys.argv[3:7])
r = json.load(open(path))
lat = r.get("latency_us") or {}
local = (s1 - s0) / (n1 - n0) * 1e6 if n1 > n0 else float("nan")
p95 = lat.get("p95")
print(f"clients={c}: worker {local:.0f} us/request ({int(n1 - n0)} requests, warm-up "
      f"included); client p50 {lat.get('p50')} p95 {p95} p99 {lat.get('p99')} us; "
      f"p95 / worker = {p95 / local:.2f} (SC-005: <= 2)")
PY
done
