#!/usr/bin/env bash
# Fleet calls/s (issue 18), a benchmark, not a test: N corepiped instances (N = 1 and 2, or
# INSTANCES="1 2 3") sharing one registry in etcd (Debian's etcd-server, started here on free
# loopback ports), driven by corepipe-bench through the tree's service config
# (clients/service-config.json: round_robin, health checking, retries) over one target naming
# every instance (ipv4:127.0.0.1:P1,127.0.0.1:P2,...). The pipeline is put once, through the
# first instance's Admin API (corepipectl), and reaches the others through etcd; every run
# calls Execute on it (passthrough, 64 B, closed loop, every output checked).
#
# Reported per N: calls/s, p50/p99, and each instance's share of the calls (the OK count of
# its corepipe_requests_total moved by, warm-up included); plus the load average at the start.
# Above 1 the run says the machine is busy and the figures should not be published.
#
# On a 2-CPU machine the N instances, etcd and the client share the same two CPUs: this shows
# what balancing over a fleet costs, not scaling (expect N = 2 at or below N = 1 here).
#
# usage: perf/fleet_bench.sh BUILD_DIR [SECONDS] [CONCURRENCY]
set -Eeuo pipefail
B=${1:-build/release}
SECS=${2:-5}
CONC=${3:-16}
INSTANCES=${INSTANCES:-1 2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CB=$B/perf/corepipe-bench
CTL=$B/corepipectl
SC=$ROOT/clients/service-config.json
OUT=$(mktemp -d /tmp/corepipe-fleet.XXXXXX)
PIDS=()
ETCD_PID=""
cleanup() {
	local p
	for p in "${PIDS[@]}" $ETCD_PID; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}" $ETCD_PID; do wait "$p" 2>/dev/null || true; done
	rm -rf "$OUT"
}
trap cleanup EXIT
trap 'echo "fleet_bench: failed at line $LINENO (exit $?)" >&2' ERR
for x in "$CB" "$CTL" "$B/corepiped"; do
	[ -x "$x" ] || { echo "fleet_bench: $x not built (make)"; exit 2; }
done
command -v etcd > /dev/null || { echo "fleet_bench: etcd-server is not installed"; exit 2; }

free_port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

read -r LOAD _ < /proc/loadavg
echo "fleet_bench: load average at the start: $LOAD ($(nproc) CPUs)"
if awk -v l="$LOAD" 'BEGIN { exit !(l > 1) }'; then
	echo "fleet_bench: the machine is busy (load > 1): do not publish these figures"
fi

# One etcd member.
EC=$(free_port)
EP=$(free_port)
etcd --name fleet --data-dir "$OUT/etcd" \
	--listen-client-urls "http://127.0.0.1:$EC" --advertise-client-urls "http://127.0.0.1:$EC" \
	--listen-peer-urls "http://127.0.0.1:$EP" --initial-advertise-peer-urls "http://127.0.0.1:$EP" \
	--initial-cluster "fleet=http://127.0.0.1:$EP" > "$OUT/etcd.log" 2>&1 &
ETCD_PID=$!
for _ in $(seq 300); do
	curl -sf "http://127.0.0.1:$EC/health" | grep -q '"health":"true"' && break
	sleep 0.1
done
curl -sf "http://127.0.0.1:$EC/health" | grep -q '"health":"true"' ||
	{ echo "fleet_bench: etcd did not start"; cat "$OUT/etcd.log"; exit 1; }

cat > "$OUT/c.yaml" <<EOF
logging: { level: warn }
registry:
  store: etcd
  etcd_endpoint: "127.0.0.1:$EC"
  etcd_prefix: "/corepipe-fleet-bench/pipelines/"
EOF
printf 'name: fleet\nnodes:\n  - type: passthrough\n' > "$OUT/p.yaml"

# start I: instance I (0-based); sets PORTS[I], MPORTS[I], PIDS[I].
PORTS=()
MPORTS=()
start() {
	local i=$1 log=$OUT/log.$1 port=""
	COREPIPE_SERVER_METRICS_LISTEN=127.0.0.1:0 "$B/corepiped" --config "$OUT/c.yaml" \
		--grpc-listen 127.0.0.1:0 --log-level info 2> "$log" &
	PIDS[i]=$!
	for _ in $(seq 600); do
		port=$(grep -o '"grpc_port":[0-9]*' "$log" | grep -o '[0-9]*$' || true)
		[ -n "$port" ] && break
		sleep 0.1
	done
	[ -n "$port" ] || { echo "fleet_bench: instance $i did not start"; cat "$log"; exit 1; }
	PORTS[i]=$port
	MPORTS[i]=$(grep -o '"metrics_port":[0-9]*' "$log" | grep -o '[0-9]*$')
}
ok_count() {
	curl -sf "http://127.0.0.1:${MPORTS[$1]}/metrics" |
		awk '/^corepipe_requests_total\{/ && /pipeline="fleet"/ && /code="OK"/ {s += $NF}
		     END {printf "%d\n", s}'
}

MAX=0
for n in $INSTANCES; do [ "$n" -gt "$MAX" ] && MAX=$n; done
for i in $(seq 0 $((MAX - 1))); do start "$i"; done
"$CTL" -t "127.0.0.1:${PORTS[0]}" pipelines put "$OUT/p.yaml" > /dev/null
for i in $(seq 0 $((MAX - 1))); do
	for _ in $(seq 300); do
		"$CTL" -t "127.0.0.1:${PORTS[$i]}" pipelines get fleet > /dev/null 2>&1 && break
		sleep 0.1
	done
	"$CTL" -t "127.0.0.1:${PORTS[$i]}" pipelines get fleet > /dev/null ||
		{ echo "fleet_bench: instance $i never got the pipeline from etcd"; exit 1; }
done

printf '\n%-10s %12s %10s %10s  %s\n' instances calls/s p50_us p99_us "share per instance"
for n in $INSTANCES; do
	target="ipv4:"
	before=()
	for i in $(seq 0 $((n - 1))); do
		target+="127.0.0.1:${PORTS[$i]},"
		before[i]=$(ok_count "$i")
	done
	"$CB" "${target%,}" --service-config "$SC" --pipeline fleet --size 64 --check-output \
		-c "$CONC" -z "$SECS" --warmup 1 --format json \
		> "$OUT/run.$n.json" 2> "$OUT/run.$n.err" ||
		{ echo "fleet_bench: corepipe-bench failed for N=$n:"; head -c 2000 "$OUT/run.$n.err"; exit 1; }
	share=""
	for i in $(seq 0 $((n - 1))); do
		share+="$(( $(ok_count "$i") - before[i] )) "
	done
	/usr/bin/python3 - "$OUT/run.$n.json" "$n" "$share" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
lat = r["latency_us"]
print("%-10s %12.0f %10.0f %10.0f  %s" % (sys.argv[2], r["rps"], lat["p50"], lat["p99"],
                                          sys.argv[3].strip()))
PY
done
echo "(load average at the start: $LOAD; on $(nproc) CPUs the instances share the CPUs: no scaling expected)"
