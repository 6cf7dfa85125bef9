#!/usr/bin/env bash
# make bench: start corepiped and measure Execute(passthrough, 64 B): ping-pong latency
# (concurrency 1) and throughput at concurrency 16, with perf/bench_execute (a gRPC C-core
# client) and h2load (a cheaper HTTP/2 client, for the server's capacity), for each worker idle
# policy, side by side in one run. Also idle CPU, the 1 -> 1000 clients curve, ExecuteStream
# messages/s against unary calls/s (perf/bench_stream), and the per-node framework cost
# (perf/bench_nodes). Every figure is printed with its command.
#
# usage: scripts/bench.sh BUILD_DIR [SECONDS]
set -euo pipefail
B=${1:-build/release}
SECS=${2:-5}
BENCH=$B/perf/bench_execute
OUT=$(mktemp -d /tmp/corepipe-bench.XXXXXX)
trap 'kill_server; rm -rf "$OUT"' EXIT

PID=""
kill_server() {
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		kill -TERM "$PID"
		for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
	fi
	PID=""
}

start_server() { # $1 = idle policy
	cat > "$OUT/c.yaml" <<YAML
dataplane: { idle_policy: $1 }
logging: { level: warn }
pipelines:
  passthrough:
    - type: passthrough
  speech:
    - type: convert
      params: { format: f32le }
    - type: resample
      params: { rate: "16000" }
    - type: vad
YAML
	COREPIPE_SERVER_METRICS_LISTEN=127.0.0.1:0 "$B/corepiped" --config "$OUT/c.yaml" \
		--grpc-listen 127.0.0.1:0 --log-level info \
		2> "$OUT/server.log" &
	PID=$!
	for _ in $(seq 300); do
		PORT=$(grep -o '"grpc_port":[0-9]*' "$OUT/server.log" | cut -d: -f2 || true)
		[ -n "$PORT" ] && return 0
		sleep 0.1
	done
	echo "bench: server did not start"; cat "$OUT/server.log"; exit 1
}

run() { echo "\$ $*"; "$@" 2>&1 | grep -v -E "^progress:|^spawning|^starting|^Application|^$"; echo; }

/usr/bin/python3 - "$OUT/req.grpc" <<'PY'
import struct, sys
# ExecuteRequest{name: "passthrough", input: {data: 64 x 'x'}}, hand-encoded protobuf, framed.
name = b"passthrough"
payload = b"\x0a" + bytes([64]) + b"x" * 64
msg = b"\x0a" + bytes([len(name)]) + name + b"\x1a" + bytes([len(payload)]) + payload
open(sys.argv[1], "wb").write(b"\0" + struct.pack(">I", len(msg)) + msg)
PY

echo "corepipe bench: $(date -u +%FT%TZ), $(nproc) CPUs, $(uname -r)"
echo "server: $B/corepiped, workers 1 (CPU 1), control on CPU 0; clients unpinned"
echo
for pol in adaptive spin sleep; do
	start_server "$pol"
	echo "==== idle_policy: $pol (port $PORT)"
	run "$BENCH" --target 127.0.0.1:$PORT -c 1 -z "$SECS" --check
	run "$BENCH" --target 127.0.0.1:$PORT -c 16 -z "$SECS" --check
	if command -v h2load >/dev/null; then
		run h2load -n 20000 -c 1 -m 1 -H 'content-type: application/grpc' \
			-H 'te: trailers' -d "$OUT/req.grpc" \
			http://127.0.0.1:$PORT/corepipe.v1.Pipeline/Execute
		run h2load -n 200000 -c 1 -m 16 -H 'content-type: application/grpc' \
			-H 'te: trailers' -d "$OUT/req.grpc" \
			http://127.0.0.1:$PORT/corepipe.v1.Pipeline/Execute
	fi
	sleep 2
	T0=$(awk '{print $14+$15}' /proc/$PID/stat)
	sleep 5
	T1=$(awk '{print $14+$15}' /proc/$PID/stat)
	echo "idle CPU over 5 s after load: $(( (T1 - T0) * 100 / (5 * $(getconf CLK_TCK)) ))% of one core"
	echo
	kill_server
done

echo "==== concurrent clients: Execute(passthrough, 1 KiB), one connection per client, idle_policy adaptive"
start_server adaptive
for n in 1 10 100 1000; do
	t=$(( n < 2 ? 1 : 2 ))
	run "$BENCH" --target 127.0.0.1:$PORT -c $n --connections $n --threads $t --size 1024 \
		-z "$SECS" --check
done
kill_server

echo "==== streaming vs unary: 10 ms frames of 48 kHz S16 mono (960 B), one worker, adaptive"
start_server adaptive
STREAM=$B/perf/bench_stream
run "$BENCH" --target 127.0.0.1:$PORT -c 8 --audio-frames 480 -z "$SECS" --pipeline passthrough
run "$STREAM" --target 127.0.0.1:$PORT -c 1 --depth 8 --rate 48000 -z "$SECS" --pipeline passthrough
run "$STREAM" --target 127.0.0.1:$PORT -c 8 --depth 8 --rate 48000 -z "$SECS" --pipeline passthrough
run "$STREAM" --target 127.0.0.1:$PORT -c 8 --depth 8 --rate 48000 -z "$SECS" --pipeline speech
run "$STREAM" --target 127.0.0.1:$PORT -c 1 --depth 1 --rate 48000 -z "$SECS" --pipeline speech
run "$STREAM" --target 127.0.0.1:$PORT -c 20 --depth 1 --frame-interval 10 --rate 48000 \
	-z "$SECS" --pipeline speech
kill_server

echo "==== node framework cost (in-process, no server)"
run "$B/perf/bench_nodes"

echo "==== metrics cost (in-process, no server)"
run "$B/perf/bench_worker"

echo "==== side by side with the C++ async reference server (same gRPC, same messages)"
perf/sidebyside.sh "$B" 3 "$SECS"
