#!/usr/bin/env bash
# UDP path side by side, in one run, interleaved round by round so that the shared machine's
# drift hits every contender alike. Prints each command, then a table of medians and ratios,
# and writes perf/results/<UTC timestamp>-udp.json.
#
# 1. net_memif, kernel bypass on both sides: perf/bench_udp_gen (DPDK, CPU 0, memif server)
#    drives, in turn, dpdk-testpmd --forward-mode=io (the plain-forwarding ceiling: every
#    frame reflected unchanged) and corepiped (one worker on CPU 1, idle_policy spin, load
#    shedding off) running passthrough (id 1) and crc32c (id 2), each on the memif client
#    side. Open loop: the generator sends as fast as the device takes frames, so each side
#    runs at its own saturation. Then once more closed loop (--window 32) for latency.
#    Worker cycles per request at saturation = TSC Hz / answers per second (the spinning
#    worker always has a full RX ring then: the generator's backpressure count says so);
#    pipeline cycles per request from /metrics corepipe_request_duration_seconds sum/count.
# 2. net_tap vs the kernel: perf/bench_udp_kernel (libcorepipe-udp, sendmmsg/recvmmsg, CPU 0)
#    drives corepiped over a tap port (10.77.0.1, host side 10.77.0.2, worker on CPU 1, spin)
#    and perf/udp_echo (recvmmsg/sendmmsg, CPU 1) behind a veth pair into a network namespace
#    (10.78.0.1 in namespace cpecho, 10.78.0.2 on the host) and on loopback.
#
# 0. First, in-process (perf/bench_udp_ring over net_ring, one thread): corepipe's own cycles
#    per request against an rx_burst+tx_burst forward, immune to the scheduler (medians of
#    short rounds), and a capacity model from it: testpmd's best on-CPU cycles per packet on
#    memif + corepipe's in-process extra per request.
#
# Needs root (tap, veth, netns), dpdk-testpmd (Debian dpdk) and the perf binaries in BUILD_DIR.
# Everything it creates (processes, the namespace, the veth pair, the tap through corepiped,
# EAL runtime directories of its own prefixes) is removed at exit, by PID or by name.
#
# usage: perf/udp_sidebyside.sh BUILD_DIR [ROUNDS] [SECONDS]
set -euo pipefail
B=${1:-build/release}
ROUNDS=${2:-3}
SECS=${3:-4}
OUT=$(mktemp -d /tmp/corepipe-udp.XXXXXX)
TAG=$$
SOCK=$OUT/memif.sock
NS=cpecho
VH=cpeh0 # veth, host side
VN=cpen0 # veth, namespace side
TAP=cptap0
GEN=$B/perf/bench_udp_gen
KCL=$B/perf/bench_udp_kernel
ECHO=$B/perf/udp_echo
RES=$OUT/results.jsonl
PIDS=()
PREFIXES=()
MADE_NS=0
MADE_VETH=0

for f in "$GEN" "$KCL" "$ECHO" "$B/corepiped"; do
	[ -x "$f" ] || { echo "udp_sidebyside: $f missing (make all)"; exit 1; }
done
command -v dpdk-testpmd >/dev/null || { echo "udp_sidebyside: dpdk-testpmd missing (apt-get install dpdk)"; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "udp_sidebyside: needs root (tap, veth, netns)"; exit 1; }
[ -c /dev/net/tun ] || { echo "udp_sidebyside: /dev/net/tun is absent: no tap test"; exit 1; }

stop_pid() { # $1 = a PID this script started
	local p=$1
	kill -0 "$p" 2>/dev/null || return 0
	kill -TERM "$p" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}

cleanup() {
	set +e
	for p in "${PIDS[@]}"; do stop_pid "$p"; done
	[ "$MADE_VETH" = 1 ] && ip link del "$VH" 2>/dev/null
	[ "$MADE_NS" = 1 ] && ip netns del "$NS" 2>/dev/null
	for p in "${PREFIXES[@]}"; do rm -rf "/var/run/dpdk/$p"; done
	rm -rf "$OUT"
}
trap cleanup EXIT

say() { echo "\$ $*"; }

# --- checks: the names and addresses we create must not exist yet -----------------------------
for a in 10.77.0.2 10.78.0.2; do
	if ip -o addr show | grep -q " $a/"; then
		echo "udp_sidebyside: $a is already on an interface here; not touching it"; exit 1
	fi
done
for i in "$VH" "$TAP"; do
	if ip link show "$i" >/dev/null 2>&1; then
		echo "udp_sidebyside: interface $i exists already (another run?); not touching it"; exit 1
	fi
done
if ip netns list | grep -qw "$NS"; then
	echo "udp_sidebyside: network namespace $NS exists already; not touching it"; exit 1
fi

# --- helpers ---------------------------------------------------------------------------------
GEN_EAL=(-l 0 --no-huge -m 256 --no-pci --log-level='lib.*:warning')

start_gen() { # $1 = label, $2 = file-prefix, rest: generator options; sets GPID
	local label=$1 prefix=$2
	shift 2
	rm -f "$SOCK" "$OUT/peer.schedstat"
	set -- --peer-schedstat "$OUT/peer.schedstat" --hold 30 "$@"
	PREFIXES+=("$prefix")
	say "$GEN" "${GEN_EAL[@]}" --file-prefix "$prefix" \
		--vdev=net_memif0,role=server,socket="$SOCK",socket-abstract=no -- --label "$label" "$@"
	"$GEN" "${GEN_EAL[@]}" --file-prefix "$prefix" \
		--vdev=net_memif0,role=server,socket="$SOCK",socket-abstract=no -- --label "$label" "$@" \
		> "$OUT/gen.log" 2>&1 &
	GPID=$!
	PIDS+=("$GPID")
	for _ in $(seq 100); do [ -S "$SOCK" ] && return 0; sleep 0.1; done
	echo "udp_sidebyside: the generator did not create $SOCK"; cat "$OUT/gen.log"; exit 1
}

# The schedstat of PID's thread named rte-worker-1 (the DPDK forwarding lcore of corepiped and
# of testpmd) is linked where the generator reads it at the start and end of its counted
# seconds: the peer's on-CPU time there gives cycles per answer on a shared machine.
link_peer_schedstat() { # $1 = PID
	local t
	for _ in $(seq 100); do
		for t in /proc/"$1"/task/*; do
			if [ "$(cat "$t/comm" 2>/dev/null)" = rte-worker-1 ]; then
				ln -sf "$t/schedstat" "$OUT/peer.schedstat"
				echo "$t/schedstat"
				return 0
			fi
		done
		sleep 0.05
	done
	echo "udp_sidebyside: no rte-worker-1 thread in $1" >&2
	return 1
}

# Wait (bounded: 120 s) until the generator has printed $1 results, or exited.
wait_results() {
	for _ in $(seq 1200); do
		[ "$(grep -c '^RESULT' "$OUT/gen.log" || true)" -ge "$1" ] && return 0
		kill -0 "$GPID" 2>/dev/null || return 0
		sleep 0.1
	done
}

# The generator holds its port after the last result (--hold): the caller has read and
# stopped the peer; now stop the generator and keep its RESULTs. A crash after the results
# (memif disconnects in DPDK 22.11) is reported, not fatal.
finish_gen() {
	local n
	stop_pid "$GPID"
	grep -v '^RESULT\|^TELEMETRY' "$OUT/gen.log" | sed 's/^/    /'
	n=$(grep -c '^RESULT' "$OUT/gen.log" || true)
	grep '^RESULT' "$OUT/gen.log" | sed 's/^RESULT //' >> "$RES" || true
	if grep -q '"error"' "$OUT/gen.log"; then echo "udp_sidebyside: generator: no answer"; exit 1; fi
	[ "$n" -ge 1 ] || { echo "udp_sidebyside: generator failed"; exit 1; }
}

start_corepiped() { # $1 = config file; sets SPID, MPORT
	: > "$OUT/server.log"
	say COREPIPE_SERVER_METRICS_LISTEN=127.0.0.1:0 "$B/corepiped" --config "$1" \
		--grpc-listen 127.0.0.1:0
	COREPIPE_SERVER_METRICS_LISTEN=127.0.0.1:0 "$B/corepiped" --config "$1" \
		--grpc-listen 127.0.0.1:0 2> "$OUT/server.log" &
	SPID=$!
	PIDS+=("$SPID")
	PREFIXES+=("corepiped-$SPID")
	for _ in $(seq 300); do
		MPORT=$(grep -o '"metrics_port":[0-9]*' "$OUT/server.log" | cut -d: -f2 || true)
		[ -n "$MPORT" ] && return 0
		kill -0 "$SPID" 2>/dev/null || break
		sleep 0.1
	done
	echo "udp_sidebyside: corepiped did not start"; cat "$OUT/server.log"; exit 1
}

# /metrics figures of a corepiped run as one JSON object (label, pipeline cost, drops).
scrape() { # $1 = label
	curl -s "http://127.0.0.1:$MPORT/metrics" > "$OUT/metrics.txt" || true
	/usr/bin/python3 - "$1" "$OUT/metrics.txt" >> "$RES" <<'PY'
import json, re, sys
label, path = sys.argv[1], sys.argv[2]
m = {}
for line in open(path):
    if line.startswith("#"):
        continue
    k, _, v = line.rpartition(" ")
    try:
        m[k] = float(v)
    except ValueError:
        pass
def get(name):
    return m.get(name, 0.0)
out = {"label": label, "metrics": True}
for p in ("passthrough", "crc"):
    out[p + "_sum_s"] = get('corepipe_request_duration_seconds_sum{pipeline="%s"}' % p)
    out[p + "_count"] = get('corepipe_request_duration_seconds_count{pipeline="%s"}' % p)
out["drops"] = {re.search(r'reason="([a-z_]+)"', k).group(1): v for k, v in m.items()
                if k.startswith("corepipe_udp_dropped_total") and v}
out["device_errors"] = {re.search(r'counter="([a-z_]+)"', k).group(1): v for k, v in m.items()
                        if k.startswith("corepipe_udp_device_errors_total") and v}
out["busy_ratio"] = get('corepipe_worker_busy_ratio{worker="0"}')
print(json.dumps(out))
PY
}

# --- 1. net_memif: testpmd io-forward vs corepiped --------------------------------------------
cat > "$OUT/memif.yaml" <<YAML
dataplane:
  workers: 1
  idle_policy: spin
  ports:
    - { name: mif0, device: "net_memif0,role=client,socket=$SOCK,socket-abstract=no", address: 10.99.0.1/24, udp_port: 9000 }
limits: { shed_busy_pct: 101 }
logging: { level: info }
pipelines:
  passthrough: [ { type: passthrough } ]
  crc: [ { type: crc32c } ]
YAML

echo "corepipe UDP side by side: $(date -u +%FT%TZ), $(nproc) CPUs, $(uname -r), $ROUNDS rounds of $SECS s"
echo "==== 0. in-process over net_ring: worker cycles per request (one thread, CPU 1)"
say taskset -c 1 "$B/perf/bench_udp_ring" --rounds 9 --bursts 2000
taskset -c 1 "$B/perf/bench_udp_ring" --rounds 9 --bursts 2000 > "$OUT/ring.log" 2>&1 || {
	cat "$OUT/ring.log"; echo "udp_sidebyside: bench_udp_ring failed"; exit 1; }
grep -v '^RESULT' "$OUT/ring.log" | sed 's/^/    /'
grep '^RESULT' "$OUT/ring.log" | sed 's/^RESULT //' >> "$RES"

echo "==== 1. net_memif (generator CPU 0; testpmd forwarding lcore / corepiped worker CPU 1)"
memif_round() { # $1 = round, $2 = extra generator options (closed loop), $3 = label suffix
	local r=$1 extra=$2 sfx=$3
	echo "-- round $r$sfx: dpdk-testpmd io-forward"
	start_gen "testpmd$sfx" "cpgen$TAG-t$r$sfx" --reflect -z "$SECS" $extra
	say dpdk-testpmd --lcores 0@0,1@1 --no-huge -m 256 --no-pci --file-prefix "cptpmd$TAG" \
		--vdev=net_memif0,role=client,socket="$SOCK",socket-abstract=no -- --forward-mode=io --auto-start \
		--no-mlockall --total-num-mbufs=8192 --stats-period 1
	PREFIXES+=("cptpmd$TAG")
	dpdk-testpmd --lcores 0@0,1@1 --no-huge -m 256 --no-pci --file-prefix "cptpmd$TAG" \
		--vdev=net_memif0,role=client,socket="$SOCK",socket-abstract=no -- --forward-mode=io --auto-start \
		--no-mlockall --total-num-mbufs=8192 --stats-period 1 \
		> "$OUT/testpmd.log" 2>&1 < /dev/null &
	TPID=$!
	PIDS+=("$TPID")
	link_peer_schedstat "$TPID" >/dev/null
	wait_results 1
	stop_pid "$TPID"
	finish_gen
	echo "-- round $r$sfx: corepiped passthrough (1), crc32c (2)"
	start_gen "corepipe$sfx" "cpgen$TAG-c$r$sfx" --pipeline 1,2 --crc 2 -z "$SECS" $extra
	start_corepiped "$OUT/memif.yaml"
	link_peer_schedstat "$SPID" >/dev/null
	wait_results 2
	scrape "corepipe-metrics$sfx"
	stop_pid "$SPID"
	finish_gen
}
for r in $(seq "$ROUNDS"); do memif_round "$r" "" ""; done
memif_round 1 "--window 32" "-w32"

# --- 2. net_tap vs kernel UDP echo ------------------------------------------------------------
echo "==== 2. net_tap vs the kernel (client CPU 0; corepiped worker / udp_echo CPU 1)"
say ip netns add "$NS"
ip netns add "$NS"
MADE_NS=1
say ip link add "$VH" type veth peer name "$VN"
ip link add "$VH" type veth peer name "$VN"
MADE_VETH=1
ip link set "$VN" netns "$NS"
ip addr add 10.78.0.2/24 dev "$VH"
ip link set "$VH" up
ip netns exec "$NS" ip addr add 10.78.0.1/24 dev "$VN"
ip netns exec "$NS" ip link set "$VN" up
ip netns exec "$NS" ip link set lo up
say ip netns exec "$NS" taskset -c 1 "$ECHO" --bind 10.78.0.1:9000
ip netns exec "$NS" taskset -c 1 "$ECHO" --bind 10.78.0.1:9000 2> "$OUT/echo-ns.log" &
EPID_NS=$!
PIDS+=("$EPID_NS")
say taskset -c 1 "$ECHO" --bind 127.0.0.1:0
taskset -c 1 "$ECHO" --bind 127.0.0.1:0 2> "$OUT/echo-lo.log" &
EPID_LO=$!
PIDS+=("$EPID_LO")
for _ in $(seq 50); do
	LOPORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$OUT/echo-lo.log" | cut -d: -f2 || true)
	[ -n "$LOPORT" ] && grep -q listening "$OUT/echo-ns.log" && break
	sleep 0.1
done
[ -n "$LOPORT" ] || { echo "udp_sidebyside: udp_echo did not start"; exit 1; }

cat > "$OUT/tap.yaml" <<YAML
dataplane:
  workers: 1
  idle_policy: spin
  ports:
    - { name: tap0, device: "net_tap0,iface=$TAP", address: 10.77.0.1/24, udp_port: 9000 }
limits: { shed_busy_pct: 101 }
logging: { level: info }
pipelines:
  passthrough: [ { type: passthrough } ]
YAML

KOPTS=(-c 128 --sockets 4 --batch 32 --size 64 --pipeline 1 -z "$SECS" --warmup 1)
kernel_run() { # $1 = label, $2 = target, $3 = the server thread's schedstat file
	local a b sa sb st=${3%schedstat}stat
	say taskset -c 0 "$KCL" --target "$2" "${KOPTS[@]}" --label "$1"
	a=$(cat "$3")
	sa=$(cut -d' ' -f14,15 < "$st")
	taskset -c 0 "$KCL" --target "$2" "${KOPTS[@]}" --label "$1" > "$OUT/kcl.log" 2>&1 || {
		cat "$OUT/kcl.log"; echo "udp_sidebyside: client failed"; exit 1; }
	b=$(cat "$3")
	sb=$(cut -d' ' -f14,15 < "$st")
	grep -v '^RESULT' "$OUT/kcl.log" | sed 's/^/    /'
	# Server thread on-CPU seconds over the whole client run (warm-up included).
	grep '^RESULT' "$OUT/kcl.log" | sed 's/^RESULT //' | /usr/bin/python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
a, b, sa, sb = [list(map(int, x.split()[:2])) for x in sys.argv[1:5]]
hz = int(sys.argv[5])
r["server_cpu_s"] = (b[0] - a[0]) / 1e9
r["server_wait_s"] = (b[1] - a[1]) / 1e9
r["server_user_s"] = (sb[0] - sa[0]) / hz
r["server_sys_s"] = (sb[1] - sa[1]) / hz
print(json.dumps(r))
print("    server thread: on CPU %.2f s (user %.2f, system %.2f), runnable waiting %.2f s"
      % (r["server_cpu_s"], r["server_user_s"], r["server_sys_s"], r["server_wait_s"]),
      file=sys.stderr)
' "$a" "$b" "$sa" "$sb" "$(getconf CLK_TCK)" >> "$RES"
}
for r in $(seq "$ROUNDS"); do
	echo "-- round $r: corepiped over net_tap"
	start_corepiped "$OUT/tap.yaml"
	for _ in $(seq 100); do ip link show "$TAP" >/dev/null 2>&1 && break; sleep 0.1; done
	say ip link set "$TAP" up\; ip addr add 10.77.0.2/24 dev "$TAP"
	ip link set "$TAP" up
	ip addr add 10.77.0.2/24 dev "$TAP"
	kernel_run corepipe-tap 10.77.0.1:9000 "$(link_peer_schedstat "$SPID")"
	scrape corepipe-tap-metrics
	stop_pid "$SPID"
	echo "-- round $r: udp_echo behind veth (netns $NS)"
	kernel_run echo-veth 10.78.0.1:9000 "/proc/$EPID_NS/schedstat"
	echo "-- round $r: udp_echo on loopback"
	kernel_run echo-lo "127.0.0.1:$LOPORT" "/proc/$EPID_LO/schedstat"
done

# --- table and JSON ---------------------------------------------------------------------------
mkdir -p perf/results
JSON=perf/results/$(date -u +%Y%m%dT%H%M%SZ)-udp.json
/usr/bin/python3 - "$RES" "$JSON" "$ROUNDS" "$SECS" <<'PY'
import json, statistics, sys
res_path, out_path, rounds, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
rows = [json.loads(l) for l in open(res_path) if l.strip()]
def sel(label, pipeline=None):
    return [r for r in rows if r.get("label") == label and not r.get("metrics")
            and (pipeline is None or r.get("pipeline") == pipeline) and "error" not in r]
def med(xs):
    return statistics.median(xs) if xs else float("nan")
hz = next((r["tsc_hz"] for r in rows if "tsc_hz" in r), 0)
summary = {}
def per_cpu(r):
    # Answers per second of the serving thread's own on-CPU time.
    if r.get("peer_cpu_s", -1) > 0:
        return r["answers_per_s"] * r["seconds"] / r["peer_cpu_s"]
    if r.get("server_cpu_s", 0) > 0:
        return r["answered"] / r["server_cpu_s"]
    return float("nan")
def put(name, rs, key="answers_per_s"):
    rates = [r[key] for r in rs]
    summary[name] = {"answers_per_s": rates, "median": med(rates),
                     "per_cpu_s": [per_cpu(r) for r in rs],
                     "per_cpu_s_median": med([per_cpu(r) for r in rs]),
                     "cycles_per_answer_on_cpu": med([r["peer_cycles_per_answer"] for r in rs
                                                      if r.get("peer_cycles_per_answer", -1) > 0]),
                     "cycles_per_answer_on_cpu_min": min([r["peer_cycles_per_answer"] for r in rs
                                                      if r.get("peer_cycles_per_answer", -1) > 0],
                                                     default=float("nan")),
                     "p50_us": med([r["p50_us"] for r in rs]),
                     "p99_us": med([r["p99_us"] for r in rs]),
                     "unanswered": sum(r.get("unanswered", r.get("timeouts", 0)) for r in rs),
                     "not_ok": sum(r.get("not_ok", 0) + r.get("bad_output", 0) + r.get("bad", 0)
                                   for r in rs)}
put("memif testpmd io-fwd", sel("testpmd"))
put("memif corepipe passthrough", sel("corepipe", 1))
put("memif corepipe crc32c", sel("corepipe", 2))
put("memif testpmd io-fwd (window 32)", sel("testpmd-w32"))
put("memif corepipe passthrough (window 32)", sel("corepipe-w32", 1))
put("memif corepipe crc32c (window 32)", sel("corepipe-w32", 2))
put("tap corepipe passthrough", sel("corepipe-tap"))
put("veth+netns udp_echo", sel("echo-veth"))
put("loopback udp_echo", sel("echo-lo"))
# Per-round ratios (same round, adjacent in time), then their median.
def ratio(a, b):
    xs = [x / y for x, y in zip(a, b) if y]
    return {"per_round": xs, "median": med(xs)}
t = [r["answers_per_s"] for r in sel("testpmd")]
tc = [per_cpu(r) for r in sel("testpmd")]
ratios = {
    "per on-CPU second: corepipe passthrough / testpmd io-fwd (memif)":
        ratio([per_cpu(r) for r in sel("corepipe", 1)], tc),
    "per on-CPU second: corepipe crc32c / testpmd io-fwd (memif)":
        ratio([per_cpu(r) for r in sel("corepipe", 2)], tc),
    "per server on-CPU second: corepipe tap / udp_echo veth":
        ratio([per_cpu(r) for r in sel("corepipe-tap")], [per_cpu(r) for r in sel("echo-veth")]),
    "corepipe passthrough / testpmd io-fwd (memif)":
        ratio([r["answers_per_s"] for r in sel("corepipe", 1)], t),
    "corepipe crc32c / testpmd io-fwd (memif)":
        ratio([r["answers_per_s"] for r in sel("corepipe", 2)], t),
    "corepipe tap / udp_echo veth":
        ratio([r["answers_per_s"] for r in sel("corepipe-tap")],
              [r["answers_per_s"] for r in sel("echo-veth")]),
    "corepipe tap / udp_echo loopback":
        ratio([r["answers_per_s"] for r in sel("corepipe-tap")],
              [r["answers_per_s"] for r in sel("echo-lo")]),
}
# Cycles: worker per request at saturation (TSC Hz / answers/s), pipeline from /metrics.
cycles = {}
if hz:
    for name in ("memif testpmd io-fwd", "memif corepipe passthrough", "memif corepipe crc32c"):
        cycles[name + ": lcore cycles per answer (on-CPU time)"] = \
            summary[name]["cycles_per_answer_on_cpu"]
        cycles[name + ": the same, best round"] = summary[name]["cycles_per_answer_on_cpu_min"]
        cycles[name + ": TSC Hz / answers per s (wall clock)"] = hz / summary[name]["median"]
    mets = [r for r in rows if r.get("label") == "corepipe-metrics"]
    for p, name in (("passthrough", "passthrough"), ("crc", "crc32c")):
        xs = [m[p + "_sum_s"] * hz / m[p + "_count"] for m in mets if m[p + "_count"]]
        cycles["memif corepipe %s: pipeline cycles per request (/metrics)" % name] = med(xs)
drops = [r for r in rows if r.get("metrics")]
ring = next((r for r in rows if r.get("label") == "ring"), None)
model = {}
if ring and hz:
    # Capacity model: testpmd's best on-CPU cost per packet over memif (device work, little
    # idle polling) plus corepipe's own per-request work measured in-process over net_ring.
    t_best = summary["memif testpmd io-fwd"]["cycles_per_answer_on_cpu_min"]
    for p, key in (("passthrough", "passthrough_cycles"), ("crc32c", "crc32c_cycles")):
        extra = ring[key] - ring["iofwd_cycles"]
        model["corepipe %s / testpmd io-fwd (model: memif best %.0f + in-process %.0f cycles)"
              % (p, t_best, extra)] = t_best / (t_best + extra)
print()
print("%-42s %11s %13s %9s %9s %10s" % ("median over %d rounds of %g s" % (rounds, secs),
      "answers/s", "per CPU-s", "p50 us", "p99 us", "unanswered"))
for k, v in summary.items():
    print("%-42s %11.0f %13.0f %9.1f %9.1f %10d" % (k, v["median"], v["per_cpu_s_median"],
          v["p50_us"], v["p99_us"], v["unanswered"]))
print("(per CPU-s: answers per second of the serving thread's own on-CPU time)")
print()
for k, v in ratios.items():
    print("%-66s %6.3f  (rounds: %s)" % (k, v["median"],
                                         " ".join("%.3f" % x for x in v["per_round"])))
print()
for k, v in cycles.items():
    print("%-70s %8.0f" % (k, v))
print()
for d in drops:
    print("%-28s server drops %s, device errors %s, worker busy ratio since start %.3f" %
          (d["label"], d["drops"] or "{}", d["device_errors"] or "{}", d["busy_ratio"]))
for label in ("corepipe-tap", "echo-veth", "echo-lo"):
    rs = [r for r in sel(label) if "server_sys_s" in r]
    if rs:
        u = med([r["server_user_s"] for r in rs]); k = med([r["server_sys_s"] for r in rs])
        summary.setdefault("cpu_split", {})[label] = {"user_s": u, "sys_s": k}
        print("%-14s server thread CPU per run (median): user %.2f s, system %.2f s"
              % (label, u, k))
if ring:
    print("in-process (net_ring, one thread): io-forward %.1f, passthrough %.1f, crc32c %.1f "
          "cycles per request" % (ring["iofwd_cycles"], ring["passthrough_cycles"],
                                  ring["crc32c_cycles"]))
for k, v in model.items():
    print("%-100s %6.3f" % (k, v))
json.dump({"rounds": rounds, "seconds": secs, "tsc_hz": hz, "summary": summary,
           "ratios": ratios, "cycles": cycles, "ring": ring, "model": model, "runs": rows},
          open(out_path, "w"), indent=1)
print("\nwrote", out_path)
PY
