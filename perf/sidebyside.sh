#!/usr/bin/env bash
# Side by side: corepiped vs the C++ async reference server (perf/ref/ref_server.cc, same gRPC
# 1.51, same Execute(passthrough, 64 B) messages), in one run, interleaved round by round (each
# round starts each server afresh) so that the shared machine's drift hits both alike.
#
# Scenarios, every one against both servers:
#   ping-pong        corepipe-bench -c 1                        p50 / p99
#   concurrency      corepipe-bench -c 4, 16, 64, 256           latency percentiles, req/s
#   h2load           h2load -c 1 -m 16 and -c 4 -m 64           req/s; every answer must be a 2xx,
#                    and for corepipe the 2xx count must equal the server's own count of OK
#                    answers (corepipe_requests_total on /metrics, before and after)
#   streaming        corepipe-bench --stream -c 16 --depth 1    messages/s vs unary calls/s at
#                    (and -c 1)                                 the same 16 outstanding
#   connections      corepipe-bench -c N --connections N, N = 1, 10, 100, 1000
#   server CPU       /proc/PID/stat utime+stime around the c=16 runs: CPU s per 1000 requests
# The client's CPU use is recorded for every corepipe-bench run (it shares the 2 CPUs).
#
# Writes perf/results/<UTC timestamp>.json (every run's full output, medians, ratios),
# perf/results/<timestamp>.md (the tables) and perf/results/<timestamp>-*.svg/.png (gnuplot).
# MICRO_OUT=DIR adds each DIR/*.txt (in-process benchmark outputs, from scripts/bench.sh).
#
# usage: perf/sidebyside.sh BUILD_DIR [ROUNDS] [SECONDS]
set -euo pipefail
B=${1:-build/release}
ROUNDS=${2:-3}
SECS=${3:-3}
CB=$B/perf/corepipe-bench
OUT=$(mktemp -d /tmp/corepipe-sbs.XXXXXX)
PID=""
cleanup() {
	if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
	rm -rf "$OUT"
}
trap cleanup EXIT
# 1000 connections need more than the usual 1024 descriptors, in the servers too.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

/usr/bin/python3 - "$OUT/req.grpc" <<'PY'
import struct, sys
# ExecuteRequest{name: "passthrough", input: {data: 64 bytes}}, hand-encoded protobuf, framed.
name = b"passthrough"
payload = b"\x0a" + bytes([64]) + b"x" * 64
msg = b"\x0a" + bytes([len(name)]) + name + b"\x1a" + bytes([len(payload)]) + payload
open(sys.argv[1], "wb").write(b"\0" + struct.pack(">I", len(msg)) + msg)
PY
printf 'logging: { level: warn }\npipelines:\n  passthrough:\n    - type: passthrough\n' > "$OUT/c.yaml"

start() { # $1 = corepipe | reference; sets PID, PORT (and MPORT for corepipe)
	: > "$OUT/log"
	MPORT=""
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
		[ -n "$PORT" ] && break
		sleep 0.1
	done
	[ -n "$PORT" ] || { echo "sidebyside: $1 did not start"; cat "$OUT/log"; exit 1; }
	if [ "$1" = corepipe ]; then
		MPORT=$(grep -o '"metrics_port":[0-9]*' "$OUT/log" | grep -o '[0-9]*$')
	fi
}
stop() { kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
# corepipe's own count of OK answers (all pipelines), from /metrics.
ok_count() {
	curl -sf "http://127.0.0.1:$MPORT/metrics" |
		awk '/^corepipe_requests_total\{/ && /code="OK"/ {s += $NF} END {printf "%d\n", s}'
}

# bench NAME ARGS...: one corepipe-bench run, its JSON (plus server CPU ticks) in $DIR/NAME.json
bench() {
	local name=$1 t0 t1
	shift
	t0=$(cpu_ticks)
	local rc=0
	"$CB" "127.0.0.1:$PORT" -z "$SECS" --warmup 1 --format json "$@" \
		> "$DIR/$name.json" 2> "$DIR/$name.err" || rc=$?
	# 1: some calls failed or a check did not hold. That is a result: it stays in the data
	# and the report lists it. Anything else is a broken run.
	if [ "$rc" = 1 ] && [ -s "$DIR/$name.json" ]; then
		echo "  $SRV $name: FAILED CALLS OR CHECKS (kept in the results): $(head -c 300 "$DIR/$name.err")"
	elif [ "$rc" != 0 ]; then
		echo "sidebyside: $SRV $name broke (exit $rc):"; cat "$DIR/$name.err" "$DIR/$name.json"; exit 1
	fi
	t1=$(cpu_ticks)
	echo "$((t1 - t0))" > "$DIR/$name.ticks"
	printf '  %-10s %-9s %s\n' "$SRV" "$name" "$(/usr/bin/python3 perf/sbs_report.py --line "$DIR/$name.json")"
}

# h2 NAME CONNECTIONS STREAMS: h2load, 2xx count checked (and against /metrics for corepipe)
h2() {
	local name=$1 n=100000 t0 t1 ok0 ok1 out rps xx
	ok0=$([ -n "$MPORT" ] && ok_count || echo 0)
	t0=$(cpu_ticks)
	out=$(h2load -n $n -c "$2" -m "$3" -H 'content-type: application/grpc' -H 'te: trailers' \
		-d "$OUT/req.grpc" "http://127.0.0.1:$PORT/corepipe.v1.Pipeline/Execute" 2>&1)
	t1=$(cpu_ticks)
	ok1=$([ -n "$MPORT" ] && ok_count || echo $n)
	rps=$(echo "$out" | grep -o 'finished in [0-9.]*m\?s, [0-9.]*' | awk '{print $4}')
	xx=$(echo "$out" | grep -o 'status codes: [0-9]* 2xx' | awk '{print $3}')
	if [ "$xx" != "$n" ] || [ $((ok1 - ok0)) != "$n" ]; then
		echo "sidebyside: $SRV h2load $name: $xx of $n 2xx, server counted $((ok1 - ok0)) OK"
		echo "$out"; exit 1
	fi
	echo "{\"rps\": $rps, \"n\": $n, \"2xx\": $xx, \"server_ok\": $((ok1 - ok0)), \"ticks\": $((t1 - t0)), \"command\": \"h2load -n $n -c $2 -m $3 -H 'content-type: application/grpc' -H 'te: trailers' -d req.grpc http://127.0.0.1:PORT/corepipe.v1.Pipeline/Execute\"}" \
		> "$DIR/$name.json"
	printf '  %-10s %-9s %9.0f/s  (%s 2xx, server counted %s OK)\n' "$SRV" "$name" "$rps" \
		"$xx" "$([ -n "$MPORT" ] && echo $((ok1 - ok0)) || echo n/a)"
}

echo "side by side: $(date -u +%FT%TZ), $(nproc) CPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg); $ROUNDS interleaved rounds of ${SECS} s runs (+1 s warm-up)"
echo "client: $CB 127.0.0.1:PORT -z $SECS --warmup 1 --format json <scenario flags>"
T_START=$(date +%s)
for r in $(seq "$ROUNDS"); do
	for SRV in corepipe reference; do
		DIR=$OUT/runs/$r/$SRV
		mkdir -p "$DIR"
		start "$SRV"
		echo "round $r, $SRV (pid $PID, port $PORT)"
		bench c1 -c 1 --check-output
		for c in 4 16 64 256; do
			bench "c$c" -c $c --threads 2 --connections $((c < 4 ? c : 4)) --check-output
		done
		h2 h2_c16 1 16
		h2 h2_c256 4 64
		bench stream_c1 --stream -c 1 --depth 1 --check-output
		bench stream_c16 --stream -c 16 --threads 2 --connections 4 --depth 1 --check-output
		for n in 1 10 100 1000; do
			bench "conn$n" -c $n --connections $n --threads $((n < 2 ? 1 : 2))
		done
		stop
	done
done
echo "suite: $(( $(date +%s) - T_START )) s"

/usr/bin/python3 perf/sbs_report.py "$OUT/runs" "$B" "$ROUNDS" "$SECS" "${MICRO_OUT:-}" \
	"$(getconf CLK_TCK)"
