# perf/scenario.sh: sourced by perf/flamegraph.sh and perf/perfstat.sh (not run on its own).
#
# Starts a corepiped of our own on loopback with a scenario's load against it, or finds the
# metrics port of a server that is already running, and reads its request counter. Only the
# processes started here are stopped (by PID, from scenario_stop).
#
# Scenarios (load from perf/corepipe-bench of the same build):
#   unary   Execute(passthrough, 64 B), 16 calls outstanding
#   speech  Execute(speech = convert, resample 16 kHz, vad), 8 outstanding, 10 ms frames of
#           16 kHz S16 audio
#   stream  ExecuteStream(speech), 8 streams, 8 frames in flight, 10 ms frames of 48 kHz audio
#   udp     Execute over the UDP data path (passthrough, 64 B): corepiped serves a net_tap port
#           whose interface is moved into a network namespace made here, and corepipe-bench
#           --proto udp runs inside it (root only: tap, netns)

# The callers' options these helpers read: DURATION, PID, BENCH, B (build dir).

SC_SRV_PID=""
SC_LOAD_PID=""
SC_DIR=""
SC_NETNS=""
SC_TAP=""

# scenario_check TOOL: DURATION is 1..600 s, not both PID and BENCH, perf is installed.
scenario_check() {
	local tool=$1
	[[ $DURATION =~ ^[0-9]+$ ]] && [ "$DURATION" -ge 1 ] && [ "$DURATION" -le 600 ] ||
		{ echo "$tool: --duration must be 1..600 seconds" >&2; exit 2; }
	[ -n "$PID" ] && [ -n "$BENCH" ] && { echo "$tool: --pid or --bench, not both" >&2; exit 2; }
	command -v perf >/dev/null ||
		{ echo "$tool: perf not installed (apt-get install linux-perf)" >&2; exit 1; }
}

# scenario_target TOOL: sets PID to what to measure: with BENCH, a server of our own with the
# scenario's load running (warmed up for a second); else PID as given, or the only corepiped.
scenario_target() {
	local tool=$1 pids n
	if [ -n "$BENCH" ]; then
		case $BENCH in
		unary|speech|stream|udp) ;;
		*) echo "$tool: unknown scenario '$BENCH' (unary, speech, stream, udp)" >&2; exit 2 ;;
		esac
		scenario_start_server "$B" "$BENCH" || exit 1
		PID=$SC_SRV_PID
		scenario_start_load "$B" "$BENCH" $((DURATION + 2)) || exit 1
		sleep 1 # past connection set-up: measure the steady state
	elif [ -z "$PID" ]; then
		pids=$(pgrep -x corepiped || true)
		n=$(echo "$pids" | grep -c . || true)
		[ "$n" -eq 1 ] ||
			{ echo "$tool: found $n corepiped processes; pass --pid or --bench" >&2; exit 1; }
		PID=$pids
	fi
	kill -0 "$PID" 2>/dev/null || { echo "$tool: no process $PID" >&2; exit 1; }
}

# scenario_start_server BUILD_DIR [NAME]: start corepiped (with a net_tap port for udp, its
# interface then moved into a namespace of ours); sets SC_SRV_PID, SC_GRPC_PORT,
# SC_METRICS_PORT.
scenario_start_server() {
	local b=$1 name=${2:-} ports="[]"
	SC_DIR=$(mktemp -d /tmp/corepipe-scenario.XXXXXX)
	if [ "$name" = udp ]; then
		[ "$(id -u)" -eq 0 ] || { echo "scenario: udp needs root (tap, netns)" >&2; return 1; }
		SC_TAP=cpsc$$
		ports="[ { name: tap0, device: \"net_tap0,iface=$SC_TAP\", address: 10.77.251.1/24, udp_port: 9000 } ]"
	fi
	cat > "$SC_DIR/c.yaml" <<YAML
logging: { level: warn }
dataplane:
  ports: $ports
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
	COREPIPE_SERVER_METRICS_LISTEN=127.0.0.1:0 "$b/corepiped" --config "$SC_DIR/c.yaml" \
		--grpc-listen 127.0.0.1:0 --log-level info 2> "$SC_DIR/server.log" &
	SC_SRV_PID=$!
	for _ in $(seq 300); do
		SC_GRPC_PORT=$(grep -o '"grpc_port":[0-9]*' "$SC_DIR/server.log" | cut -d: -f2 || true)
		SC_METRICS_PORT=$(grep -o '"metrics_port":[0-9]*' "$SC_DIR/server.log" | cut -d: -f2 || true)
		[ -n "$SC_GRPC_PORT" ] && break
		kill -0 "$SC_SRV_PID" 2>/dev/null || break
		sleep 0.1
	done
	if [ -z "$SC_GRPC_PORT" ]; then
		echo "scenario: corepiped did not start:" >&2
		cat "$SC_DIR/server.log" >&2
		return 1
	fi
	if [ "$name" = udp ]; then
		SC_NETNS=cpsc$$
		ip netns add "$SC_NETNS" || return 1
		ip link set "$SC_TAP" netns "$SC_NETNS" || return 1
		ip netns exec "$SC_NETNS" ip addr add 10.77.251.2/24 dev "$SC_TAP"
		ip netns exec "$SC_NETNS" ip link set "$SC_TAP" up
		ip netns exec "$SC_NETNS" ip link set lo up
	fi
	return 0
}

# scenario_start_load BUILD_DIR NAME SECONDS: load in the background; sets SC_LOAD_PID.
scenario_start_load() {
	local b=$1 name=$2 secs=$3 t="127.0.0.1:$SC_GRPC_PORT"
	local cb=$b/perf/corepipe-bench common=(--warmup 0 -z "$secs" --allow-errors)
	case $name in
	unary) set -- "$cb" "$t" -c 16 "${common[@]}" ;;
	speech) set -- "$cb" "$t" -c 8 --pipeline speech --audio-format s16le --audio-rate 16000 \
		--frame-ms 10 "${common[@]}" ;;
	stream) set -- "$cb" "$t" --stream -c 8 --depth 8 --pipeline speech --audio-format s16le \
		--audio-rate 48000 --frame-ms 10 --stream-frames 1000000 "${common[@]}" ;;
	udp) set -- ip netns exec "$SC_NETNS" "$cb" --proto udp --udp 10.77.251.1:9000 \
		--pipeline-id 1 -c 32 "${common[@]}" ;;
	*) echo "scenario: unknown scenario '$name' (unary, speech, stream, udp)" >&2; return 2 ;;
	esac
	[ -x "$cb" ] || { echo "scenario: $cb not built (make -j2)" >&2; return 1; }
	echo "load: $*" >&2
	"$@" > "$SC_DIR/load.out" 2>&1 &
	SC_LOAD_PID=$!
}

# scenario_stop: stop the load and the server this script started (by PID), remove the
# namespace and the dir.
scenario_stop() {
	local p
	for p in $SC_LOAD_PID $SC_SRV_PID; do
		if kill -0 "$p" 2>/dev/null; then
			kill -TERM "$p" 2>/dev/null || true
			for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		fi
	done
	SC_LOAD_PID=""
	SC_SRV_PID=""
	[ -n "$SC_NETNS" ] && ip netns del "$SC_NETNS" 2>/dev/null
	SC_NETNS=""
	[ -n "$SC_DIR" ] && rm -rf "$SC_DIR"
	SC_DIR=""
	return 0
}

# scenario_load_summary: the load generator's first lines (what it measured), if any.
scenario_load_summary() {
	[ -n "$SC_DIR" ] && [ -f "$SC_DIR/load.out" ] &&
		grep -E 'Result:|Count:|Requests/sec|Messages/sec' "$SC_DIR/load.out"
	return 0
}

# metrics_port_of PID: the loopback TCP port where PID serves /metrics with corepipe counters.
metrics_port_of() {
	local pid=$1 port
	for port in $(ss -Hltnp 2>/dev/null | grep "pid=$pid," | awk '{print $4}' | sed 's/.*://' | sort -u); do
		if curl -s -m 2 "http://127.0.0.1:$port/metrics" 2>/dev/null | grep -q '^corepipe_requests_total'; then
			echo "$port"
			return 0
		fi
	done
	return 1
}

# requests_total PORT: sum of corepipe_requests_total (every pipeline and status) right now.
requests_total() {
	curl -s -m 2 "http://127.0.0.1:$1/metrics" |
		awk '/^corepipe_requests_total[{ ]/ { s += $NF } END { printf "%d\n", s }'
}
