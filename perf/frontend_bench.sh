#!/usr/bin/env bash
# The gRPC front end side by side with the C++ async reference server (perf/ref/ref_server.cc:
# same libgrpc, one completion queue, one thread), in one run, interleaved round by round (each
# round starts every server afresh), on Execute(passthrough, 64 B).
#
# Layouts (2-CPU machine):
#   pinned   corepiped under `taskset -c 0` (its default map then has one lcore: front end,
#            pipeline work and control on one reactor), the reference under `taskset -c 0`,
#            every load generator under `taskset -c 1`: the fair one-thread comparison.
#   default  nothing pinned: corepiped's default map (front end + worker lcore), the
#            reference as above, the generator wherever the kernel puts it; plus corepiped
#            with --frontends 2 (FRONTENDS=1,2,...: the sweep a perf engineer runs on a bigger
#            host), and corepiped with dataplane.idle_policy: spin (what a call after idle costs
#            when no lcore ever sleeps).
# Scenarios, against every server:
#   c1        corepipe-bench -c 1 (closed loop, back to back)         mean, p50, p99
#   idle10    corepipe-bench -c 1 --pause-ms 10 (a call after 10 ms idle)  mean, p50, p99
#   h2_16     h2load -c 1 -m 16                                        req/s, server CPU/request
#   h2_256    h2load -c 4 -m 64                                        req/s, server CPU/request
#   unary16   corepipe-bench -c 16 --connections 4                     calls/s
#   stream16  corepipe-bench --stream -c 16 --connections 4 --depth 1  messages/s
#   connN     h2load -c N -m 1, N = 1, 10, 100, 1000                   req/s
# h2load runs must get a 2xx for every request (and, for corepipe, the server's own count of OK
# answers must move by as much); corepipe-bench runs check every answer's status and output.
#
# The load average is recorded at the start; above 1 the run says the machine is busy and the
# figures should not be published (rerun when it is quiet).
# Writes perf/results/<UTC timestamp>-frontend.json and .md.
#
# usage: perf/frontend_bench.sh BUILD_DIR [ROUNDS] [SECONDS]
set -Eeuo pipefail
B=${1:-build/release}
ROUNDS=${2:-3}
SECS=${3:-3}
FRONTENDS=${FRONTENDS:-2}
CB=$B/perf/corepipe-bench
REF=$B/perf/ref_server
OUT=$(mktemp -d /tmp/corepipe-fe.XXXXXX)
PID=""
cleanup() {
	if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
	rm -rf "$OUT"
}
trap cleanup EXIT
trap 'echo "frontend_bench: failed at line $LINENO (exit $?)" >&2' ERR
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ -x "$REF" ] || { echo "frontend_bench: $REF not built (make $REF)"; exit 2; }
[ "$(nproc)" -ge 2 ] || { echo "frontend_bench: needs 2 CPUs (server on CPU 0, generator on CPU 1)"; exit 2; }

/usr/bin/python3 - "$OUT/req.grpc" <<'PY'
import struct, sys
# ExecuteRequest{name: "passthrough", input: {data: 64 bytes}}, hand-encoded protobuf, framed.
name = b"passthrough"
payload = b"\x0a" + bytes([64]) + b"x" * 64
msg = b"\x0a" + bytes([len(name)]) + name + b"\x1a" + bytes([len(payload)]) + payload
open(sys.argv[1], "wb").write(b"\0" + struct.pack(">I", len(msg)) + msg)
PY
printf 'logging: { level: warn }\npipelines:\n  passthrough:\n    - type: passthrough\n' > "$OUT/c.yaml"

# start LAYOUT SERVER: sets PID, PORT, MPORT (corepipe only), GEN (the generator's prefix)
start() {
	local pin=() pat
	: > "$OUT/log"
	MPORT=""
	GEN=()
	if [ "$1" = pinned ]; then
		pin=(taskset -c 0)
		GEN=(taskset -c 1)
	fi
	case "$2" in
	corepipe*)
		local fe=() idle=adaptive
		case "$2" in
		corepipe-f*) fe=(--frontends "${2#corepipe-f}") ;;
		corepipe-spin) idle=spin ;;
		esac
		COREPIPE_DATAPLANE_IDLE_POLICY=$idle COREPIPE_SERVER_METRICS_LISTEN=127.0.0.1:0 \
			"${pin[@]}" "$B/corepiped" \
			--config "$OUT/c.yaml" --grpc-listen 127.0.0.1:0 --log-level info "${fe[@]}" \
			2> "$OUT/log" &
		PID=$!
		pat='"grpc_port":[0-9]*'
		;;
	reference)
		"${pin[@]}" "$REF" --port 0 --threads 1 > "$OUT/log" 2>&1 &
		PID=$!
		pat='port [0-9]*'
		;;
	esac
	PORT=""
	for _ in $(seq 300); do
		PORT=$(grep -o "$pat" "$OUT/log" | grep -o '[0-9]*$' || true)
		[ -n "$PORT" ] && break
		sleep 0.1
	done
	[ -n "$PORT" ] || { echo "frontend_bench: $2 did not start"; cat "$OUT/log"; exit 1; }
	case "$2" in corepipe*)
		MPORT=$(grep -o '"metrics_port":[0-9]*' "$OUT/log" | grep -o '[0-9]*$')
		ROLES=$(grep -o '"roles":"[^"]*"' "$OUT/log" | head -1)
		;;
	*) ROLES="" ;;
	esac
}
stop() { kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
ok_count() {
	curl -sf "http://127.0.0.1:$MPORT/metrics" |
		awk '/^corepipe_requests_total\{/ && /code="OK"/ {s += $NF} END {printf "%d\n", s}'
}

# cb NAME ARGS...: one corepipe-bench run; its JSON (+ server CPU ticks) in $DIR/NAME.json
cb() {
	local name=$1 t0 t1 rc=0
	shift
	t0=$(cpu_ticks)
	"${GEN[@]}" "$CB" "127.0.0.1:$PORT" -z "$SECS" --warmup 1 --format json "$@" \
		> "$DIR/$name.json" 2> "$DIR/$name.err" || rc=$?
	t1=$(cpu_ticks)
	if [ "$rc" != 0 ]; then
		echo "frontend_bench: $SRV $name failed (exit $rc):"; head -c 2000 "$DIR/$name.err"; exit 1
	fi
	echo "$((t1 - t0))" > "$DIR/$name.ticks"
}

# h2 NAME CONNECTIONS STREAMS N: h2load, every answer a 2xx (and counted OK by corepipe)
h2() {
	local name=$1 n=$4 t0 t1 ok0 ok1 out rps xx
	ok0=$([ -n "$MPORT" ] && ok_count || echo 0)
	t0=$(cpu_ticks)
	out=$("${GEN[@]}" h2load -n "$n" -c "$2" -m "$3" -H 'content-type: application/grpc' \
		-H 'te: trailers' -d "$OUT/req.grpc" \
		"http://127.0.0.1:$PORT/corepipe.v1.Pipeline/Execute" 2>&1)
	t1=$(cpu_ticks)
	ok1=$([ -n "$MPORT" ] && ok_count || echo "$n")
	rps=$(echo "$out" | grep -o 'finished in [0-9.]*m\?s, [0-9.]*' | awk '{print $4}')
	xx=$(echo "$out" | grep -o 'status codes: [0-9]* 2xx' | awk '{print $3}')
	if [ "$xx" != "$n" ] || [ $((ok1 - ok0)) != "$n" ]; then
		echo "frontend_bench: $SRV h2load $name: $xx of $n 2xx, server counted $((ok1 - ok0)) OK"
		echo "$out"
		exit 1
	fi
	printf '{"rps": %s, "n": %s, "ticks": %s, "command": "h2load -n %s -c %s -m %s"}\n' \
		"$rps" "$n" "$((t1 - t0))" "$n" "$2" "$3" > "$DIR/$name.json"
}

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
echo "frontend bench: $(date -u +%FT%TZ), $(nproc) CPUs, $(uname -r), load average $LOAD;" \
	"$ROUNDS interleaved rounds, ${SECS} s corepipe-bench runs"
if awk -v l="${LOAD%% *}" 'BEGIN { exit !(l >= 1.0) }'; then
	echo "frontend_bench: the machine is busy (load average ${LOAD%% *} >= 1): do not publish" \
		"these figures; rerun when it is quiet"
fi
SERVERS_DEFAULT=(corepipe reference corepipe-spin)
IFS=, read -ra FES <<< "$FRONTENDS"
for f in "${FES[@]}"; do [ "$f" = 1 ] || SERVERS_DEFAULT+=("corepipe-f$f"); done
T_START=$(date +%s)
for r in $(seq "$ROUNDS"); do
	for LAYOUT in pinned default; do
		if [ "$LAYOUT" = pinned ]; then servers=(corepipe reference); else servers=("${SERVERS_DEFAULT[@]}"); fi
		for SRV in "${servers[@]}"; do
			DIR=$OUT/runs/$r/$LAYOUT/$SRV
			mkdir -p "$DIR"
			start "$LAYOUT" "$SRV"
			echo "round $r, $LAYOUT, $SRV (pid $PID) $ROLES"
			echo "$ROLES" > "$DIR/roles"
			cb c1 -c 1 --check-output
			cb idle10 -c 1 --pause-ms 10 --check-output
			h2 h2_16 1 16 60000
			h2 h2_256 4 64 100000
			cb unary16 -c 16 --connections 4 --threads 1 --check-output
			cb stream16 --stream -c 16 --connections 4 --threads 1 --depth 1 --check-output
			for n in 1 10 100 1000; do
				h2 "conn$n" "$n" 1 $((n < 100 ? 20000 : 40000))
			done
			stop
		done
	done
done
echo "suite: $(( $(date +%s) - T_START )) s"
/usr/bin/python3 perf/frontend_report.py "$OUT/runs" "$ROUNDS" "$SECS" "$LOAD" \
	"$(getconf CLK_TCK)"
