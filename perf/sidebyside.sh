#!/usr/bin/env bash
# Side by side: corepiped vs the C++ async reference server (perf/ref/ref_server.cc, same gRPC
# 1.51, same Execute(passthrough) messages), in one run, interleaved round by round so that the
# shared machine's drift hits both alike. Prints each command, then a table of medians and
# ratios (corepipe / reference), and writes perf/results/<UTC timestamp>-sidebyside.json.
#
# Scenarios: ping-pong latency at concurrency 1 (perf/bench_execute: p50, p99), throughput at
# concurrency 16 and 256 (h2load, counts cross-checked: every response must be a 2xx), and
# server CPU seconds per 1000 requests (from /proc/PID/stat around the h2load run).
#
# usage: perf/sidebyside.sh BUILD_DIR [ROUNDS] [SECONDS]
set -euo pipefail
B=${1:-build/release}
ROUNDS=${2:-3}
SECS=${3:-4}
OUT=$(mktemp -d /tmp/corepipe-sbs.XXXXXX)
PID=""
cleanup() { [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$OUT"; }
trap cleanup EXIT

/usr/bin/python3 - "$OUT/req.grpc" <<'PY'
import struct, sys
name = b"passthrough"
payload = b"\x0a" + bytes([64]) + b"x" * 64
msg = b"\x0a" + bytes([len(name)]) + name + b"\x1a" + bytes([len(payload)]) + payload
open(sys.argv[1], "wb").write(b"\0" + struct.pack(">I", len(msg)) + msg)
PY
printf 'logging: { level: warn }\npipelines:\n  passthrough:\n    - type: passthrough\n' > "$OUT/c.yaml"

start() { # $1 = corepipe | reference; sets PID and PORT
	: > "$OUT/log"
	if [ "$1" = corepipe ]; then
		COREPIPE_SERVER_METRICS_LISTEN=127.0.0.1:0 "$B/corepiped" --config "$OUT/c.yaml" \
			--grpc-listen 127.0.0.1:0 --log-level info 2> "$OUT/log" &
		PID=$!
		pat='"grpc_port":[0-9]*'
	else
		"$B/perf/ref_server" --port 0 --threads 1 > "$OUT/log" 2>&1 &
		PID=$!
		pat='port [0-9]*'
	fi
	for _ in $(seq 300); do
		PORT=$(grep -o "$pat" "$OUT/log" | grep -o '[0-9]*$' || true)
		[ -n "$PORT" ] && return 0
		sleep 0.1
	done
	echo "sidebyside: $1 did not start"; cat "$OUT/log"; exit 1
}
stop() { kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

h2() { # $1 = connections, $2 = streams per connection; prints "req/s ok ticks"
	local t0 t1 out
	t0=$(cpu_ticks "$PID")
	out=$(h2load -n 100000 -c "$1" -m "$2" -H 'content-type: application/grpc' \
		-H 'te: trailers' -d "$OUT/req.grpc" \
		"http://127.0.0.1:$PORT/corepipe.v1.Pipeline/Execute" 2>/dev/null)
	t1=$(cpu_ticks "$PID")
	echo "$(echo "$out" | grep -o 'finished in [0-9.]*s, [0-9.]*' | awk '{print $4}') \
$(echo "$out" | grep -o 'status codes: [0-9]* 2xx' | awk '{print $3}') $((t1 - t0))"
}

echo "side by side: $(date -u +%FT%TZ), $(nproc) CPUs; $ROUNDS interleaved rounds"
echo "\$ $B/perf/bench_execute --target 127.0.0.1:PORT -c 1 -z $SECS --format json"
echo "\$ h2load -n 100000 -c 1 -m 16 ... /corepipe.v1.Pipeline/Execute   (and -c 4 -m 64)"
: > "$OUT/rows"
for r in $(seq "$ROUNDS"); do
	for s in corepipe reference; do
		start "$s"
		j=$("$B/perf/bench_execute" --target "127.0.0.1:$PORT" -c 1 -z "$SECS" --warmup 1 \
			--format json)
		p50=$(echo "$j" | grep -o '"p50":[0-9.]*' | cut -d: -f2)
		p99=$(echo "$j" | grep -o '"p99":[0-9.]*' | cut -d: -f2)
		read -r r16 ok16 t16 <<< "$(h2 1 16)"
		read -r r256 ok256 t256 <<< "$(h2 4 64)"
		[ "$ok16" = 100000 ] && [ "$ok256" = 100000 ] || { echo "sidebyside: non-2xx answers"; exit 1; }
		cpu=$(awk -v t="$t16" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.3f", t / hz / 100}')
		echo "$s $p50 $p99 $r16 $r256 $cpu" >> "$OUT/rows"
		echo "round $r $s: c=1 p50 $p50 us p99 $p99 us; c=16 $r16 req/s; c=256 $r256 req/s; CPU $cpu s/1000 req"
		stop
	done
done

/usr/bin/python3 - "$OUT/rows" "$B" <<'PY'
import json, os, statistics, sys, time
rows = [l.split() for l in open(sys.argv[1])]
cols = ["p50_us", "p99_us", "rps_c16", "rps_c256", "cpu_s_per_1000"]
med = {}
for srv in ("corepipe", "reference"):
    vals = [[float(x) for x in r[1:]] for r in rows if r[0] == srv]
    med[srv] = {c: statistics.median(v[i] for v in vals) for i, c in enumerate(cols)}
print()
print("| scenario | corepipe | C++ async reference | ratio corepipe/ref |")
print("|---|---|---|---|")
labels = {"p50_us": "c=1 p50 (us)", "p99_us": "c=1 p99 (us)", "rps_c16": "c=16 req/s (h2load)",
          "rps_c256": "c=256 req/s (h2load)", "cpu_s_per_1000": "server CPU s / 1000 req (c=16)"}
for c in cols:
    a, b = med["corepipe"][c], med["reference"][c]
    print(f"| {labels[c]} | {a:.4g} | {b:.4g} | {a / b:.2f} |")
ts = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
os.makedirs("perf/results", exist_ok=True)
path = f"perf/results/{ts}-sidebyside.json"
json.dump({"time": ts, "rounds": rows, "median": med, "command": "perf/sidebyside.sh " +
           sys.argv[2]}, open(path, "w"), indent=1)
print(f"\nwritten: {path}")
PY
