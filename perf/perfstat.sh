#!/usr/bin/env bash
# perf/perfstat.sh: perf stat on corepiped, per request.
#
#   perf/perfstat.sh [--pid PID | --bench SCENARIO] [--duration S] [--metrics PORT] [--build DIR]
#
#   --pid PID        a running corepiped (default: the only corepiped running)
#   --bench NAME     start a corepiped of our own with load against it: unary | speech | stream
#                    | udp (see perf/scenario.sh; udp needs root); stopped afterwards
#   --duration S     seconds to count (default 5)
#   --metrics PORT   the server's /metrics port (default: found from the process's listening
#                    sockets; with --bench, the one it started)
#   --build DIR      build to take corepiped and the load generators from (default build/release)
#
# Counts, over the interval, the whole process (all threads) and each thread: cycles,
# instructions, IPC and cache misses where the machine has hardware counters, and always the
# software ones (task-clock, context switches, CPU migrations, page faults). Requests are the
# delta of corepipe_requests_total (every pipeline and status; stream frames count one each)
# from /metrics over the same interval, so every figure is also given per request.
# A KVM guest without a virtual PMU (this machine) has no hardware counters: the script says so
# and prints the software figures.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=5 PID="" BENCH="" MPORT="" B=build/release
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
	case $1 in
	--duration) DURATION=$2; shift 2 ;;
	--pid) PID=$2; shift 2 ;;
	--bench) BENCH=$2; shift 2 ;;
	--metrics) MPORT=$2; shift 2 ;;
	--build) B=$2; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "perfstat: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
done
source perf/scenario.sh
scenario_check perfstat
TMP=$(mktemp -d /tmp/corepipe-perfstat.XXXXXX)
trap 'scenario_stop; rm -rf "$TMP"' EXIT

# Hardware counters: ask perf once, on a trivial command.
HW_EVENTS=cycles,instructions,cache-references,cache-misses
SW_EVENTS=task-clock,context-switches,cpu-migrations,page-faults
if perf stat -x, -e cycles,instructions true 2>&1 >/dev/null | grep -q -E '<not (supported|counted)>'; then
	HW=0
	EVENTS=$SW_EVENTS
else
	HW=1
	EVENTS=$HW_EVENTS,$SW_EVENTS
fi

scenario_target perfstat
[ -n "$BENCH" ] && MPORT=${MPORT:-$SC_METRICS_PORT}
MPORT=${MPORT:-$(metrics_port_of "$PID" || true)}
[ -n "$MPORT" ] || echo "perfstat: no /metrics port found for pid $PID (pass --metrics PORT): totals only" >&2

R0=0
[ -n "$MPORT" ] && R0=$(requests_total "$MPORT")
perf stat -x, -e "$EVENTS" -p "$PID" -o "$TMP/all.csv" -- sleep "$DURATION" &
S1=$!
perf stat -x, --per-thread -e task-clock,context-switches -p "$PID" -o "$TMP/thr.csv" \
	-- sleep "$DURATION" &
S2=$!
wait $S1 $S2
R1=0
[ -n "$MPORT" ] && R1=$(requests_total "$MPORT")
REQ=$((R1 - R0))
[ -n "$BENCH" ] && { wait "$SC_LOAD_PID" 2>/dev/null || true; scenario_load_summary; echo; }

echo "perf stat: pid $PID ($(cat /proc/$PID/comm 2>/dev/null || echo gone)), ${DURATION}s, $REQ requests" \
	"($(awk -v r=$REQ -v s=$DURATION 'BEGIN { printf "%.0f", r / s }') req/s, from corepipe_requests_total)"
if [ "$HW" = 0 ]; then
	echo "hardware counters: NOT SUPPORTED on this machine (perf stat -e instructions reports" \
		"<not supported>: no PMU in this VM), so no cycles, instructions, IPC or cache misses;" \
		"software counters only."
fi
echo "command: perf stat -x, -e $EVENTS -p $PID -- sleep $DURATION"
echo
awk -F, -v req="$REQ" -v dur="$DURATION" '
	/^#/ || NF < 3 { next }
	{ v[$3] = $1; u[$3] = $2; order[++n] = $3 }
	function per(x) { return (req > 0 ? sprintf("%.3f", x / req) : "-") }
	END {
		printf "| %-18s | %16s | %-6s | %14s |\n", "event", "total", "unit", "per request"
		printf "|---|---:|---|---:|\n"
		for (i = 1; i <= n; i++) {
			e = order[i]
			if (v[e] ~ /^</) { printf "| %-18s | %16s | %-6s | %14s |\n", e, v[e], "", "-"; continue }
			if (e ~ /^task-clock/) {
				printf "| %-18s | %16.1f | %-6s | %14s |\n", e, v[e], u[e], \
					(req > 0 ? sprintf("%.2f us", v[e] * 1000 / req) : "-")
				continue
			}
			printf "| %-18s | %16.0f | %-6s | %14s |\n", e, v[e], u[e], per(v[e])
		}
		if (("cycles" in v) && ("instructions" in v) && v["cycles"] !~ /^</ && v["instructions"] !~ /^</ && v["cycles"] > 0)
			printf "| %-18s | %16.2f | %-6s | %14s |\n", "IPC", v["instructions"] / v["cycles"], "", ""
		if ("task-clock" in v)
			printf "\nCPUs used: %.2f of %d\n", v["task-clock"] / 1000 / dur, '"$(nproc)"'
	}' "$TMP/all.csv"
echo
echo "per thread (task-clock ms and context switches over the interval; corepiped-$PID is the main thread: front end 0's reactor):"
awk -F, '
	/^#/ || NF < 4 { next }
	{ t = $1; val = $2; ev = $4; if (val ~ /^</) next
	  if (ev ~ /task-clock/) tc[t] = val; else cs[t] = val; seen[t] = 1 }
	END {
		printf "| %-26s | %12s | %10s |\n", "thread (comm-tid)", "task-clock ms", "ctx switches"
		printf "|---|---:|---:|\n"
		for (t in seen) if (tc[t] > 0.05)
			printf "| %-26s | %12.1f | %10d |\n", t, tc[t], cs[t]
	}' "$TMP/thr.csv" | { read -r h; read -r s; echo "$h"; echo "$s"; sort -t'|' -k3 -rn; }
