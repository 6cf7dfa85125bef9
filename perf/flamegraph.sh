#!/usr/bin/env bash
# perf/flamegraph.sh: an interactive SVG flame graph of corepiped, in one command.
#
#   perf/flamegraph.sh [--duration S] [--pid PID | --bench SCENARIO] [--out FILE.svg]
#                      [--dwarf] [--freq HZ] [--minwidth PX] [--build DIR] [--keep-data FILE]
#
#   --pid PID        record this running corepiped (default: the only corepiped running)
#   --bench NAME     start a corepiped of our own with load against it and record that:
#                    unary | speech | stream | udp (see perf/scenario.sh; udp needs root);
#                    stopped afterwards
#   --duration S     seconds to record (default 5)
#   --out FILE       SVG to write (default build/flamegraph-<what>.svg)
#   --dwarf          DWARF unwinding (--call-graph dwarf) instead of frame pointers: slower and
#                    bigger, but walks through libraries built without frame pointers (Debian's
#                    libgrpc, libc); corepipe itself builds with -fno-omit-frame-pointer
#   --freq HZ        samples per second per thread (default 499)
#   --minwidth PX    hide frames narrower than this (default 0.5; larger = smaller file)
#   --build DIR      build to take corepiped and the load generators from (default build/release)
#   --keep-data FILE keep the perf.data there (for perf report -i FILE); default: removed
#
# The SVG is interactive in a browser: hover a frame for its name, samples and share (the
# details line at the bottom and a tooltip). This renderer does not zoom.
#
# Samples: `perf record -g` on the cpu-clock event (a software clock: this machine's KVM guest
# has no hardware counters). Rendering: the npm package `flamegraph` (thlorenz, a port of
# Brendan Gregg's flamegraph.pl) at the version of perf/flamegraph/package-lock.json, installed
# into perf/flamegraph/node_modules by the set-up step (scripts/deps.sh: npm ci); nothing is
# fetched here, so this works offline.
#
# Threads are told apart by the frame just under the root: "worker: dp-worker-1" (worker-only
# lcores), "frontend: main thread" (front end 0's reactor, which also runs control),
# "frontend: cp-frontend-1" (further front ends), "control: cp-control" (and other
# cp-* threads), "grpc: <name>" (gRPC C-core's own threads), "metrics: MHD-*", "other: <name>".
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=5 PID="" BENCH="" OUT="" DWARF=0 FREQ=499 MINWIDTH=0.5 B=build/release KEEP=""

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
	case $1 in
	--duration) DURATION=$2; shift 2 ;;
	--pid) PID=$2; shift 2 ;;
	--bench) BENCH=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--dwarf) DWARF=1; shift ;;
	--freq) FREQ=$2; shift 2 ;;
	--minwidth) MINWIDTH=$2; shift 2 ;;
	--build) B=$2; shift 2 ;;
	--keep-data) KEEP=$2; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "flamegraph: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
done
source perf/scenario.sh
scenario_check flamegraph

# The renderer, installed into the tree by scripts/deps.sh (never fetched here).
FG=perf/flamegraph/node_modules/.bin/flamegraph
command -v node >/dev/null || { echo "flamegraph: node is not installed (make deps)" >&2; exit 1; }
[ -x "$FG" ] || { echo "flamegraph: the renderer is not installed: make deps (npm ci in perf/flamegraph)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/corepipe-flamegraph.XXXXXX)
trap 'scenario_stop; rm -rf "$TMP"' EXIT
scenario_target flamegraph
WHAT=${BENCH:-pid$PID}
OUT=${OUT:-build/flamegraph-$WHAT.svg}
mkdir -p "$(dirname "$OUT")"

CG=(-g)
[ "$DWARF" = 1 ] && CG=(--call-graph dwarf,16384)
echo "flamegraph: recording pid $PID for ${DURATION}s: perf record -e cpu-clock -F $FREQ ${CG[*]}" >&2
perf record -q -e cpu-clock -F "$FREQ" "${CG[@]}" -p "$PID" -o "$TMP/perf.data" \
	-- sleep "$DURATION" 2> "$TMP/record.err" || { cat "$TMP/record.err" >&2; exit 1; }
[ -n "$BENCH" ] && { wait "$SC_LOAD_PID" 2>/dev/null || true; scenario_load_summary >&2; }

# perf script -> the renderer. Every sample's header names the process (the renderer roots all
# stacks at the first header's name), and a frame naming the thread is added as the outermost
# frame, so each thread gets its own tower. Frames perf could not symbolise are named after
# their library, and the garbage frames past the end of a frame-pointer-less stack (no
# library) are dropped.
perf script -i "$TMP/perf.data" -F comm,pid,tid,time,period,event,ip,sym,dso 2> /dev/null |
	awk -v main="$PID" '
	function role(comm, tid) {
		if (tid == main) return "frontend: main thread (front end 0 and control)"
		if (comm ~ /^cp-frontend/) return "frontend: " comm
		if (comm ~ /^(dp|rte|lcore)-worker/) return "worker: " comm
		if (comm ~ /^cp-/) return "control: " comm
		if (comm ~ /^(event_engine|default-execut|resolver-execut|grpc_|timer_manager|grpcpp)/)
			return "grpc: " comm
		if (comm ~ /^MHD/) return "metrics: " comm
		return "other: " comm
	}
	/^[^ \t]/ {
		# header: COMM PID/TID TIME: PERIOD EVENT: (COMM may contain spaces)
		if (!match($0, /[ ]+[0-9]+\/[0-9]+[ ]+/)) next
		comm = substr($0, 1, RSTART - 1)
		ids = substr($0, RSTART, RLENGTH)
		rest = substr($0, RSTART + RLENGTH)
		sub(/^[ ]+[0-9]+\//, "", ids)
		sub(/[ ]+$/, "", ids)
		thread = role(comm, ids)
		print "corepiped " ids " " rest
		next
	}
	/^[ \t]+[0-9a-f]+ / {
		if ($0 ~ /\[unknown\] \(\[unknown\]\)$/) next
		if ($2 == "[unknown]") { lib = $NF; gsub(/^\(.*\//, "", lib); sub(/\)$/, "", lib); sub(/\[unknown\]/, "[" lib "]") }
		print; next
	}
	/^$/ { if (thread != "") print "\t0 " thread " ([thread])"; thread = ""; print; next }
	END { if (thread != "") print "\t0 " thread " ([thread])" }
	' > "$TMP/stacks.txt"
[ -s "$TMP/stacks.txt" ] || { echo "flamegraph: no samples recorded" >&2; exit 1; }
"$FG" -t perf --minwidth "$MINWIDTH" --countname samples \
	--titletext "corepiped: $WHAT, ${DURATION}s, cpu-clock at ${FREQ} Hz" < "$TMP/stacks.txt" > "$TMP/raw.svg"
# Two fix-ups of flamegraph@1.3.0's SVG template: its onmouseover attributes hold a bare "&&",
# which an XML parser (a browser opening the .svg) rejects, and it comments out the title.
sed -e '/^<g class="func_g/s/ && / \&amp;\&amp; /g' \
	-e 's/^<!--\(<text text-anchor="middle".*\)-->$/\1/' "$TMP/raw.svg" > "$OUT"
if command -v python3 >/dev/null; then
	python3 -c 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' "$OUT" ||
		{ echo "flamegraph: $OUT is not well-formed XML" >&2; exit 1; }
fi

# What it says: per-thread share and the top self-time symbols (text, next to the SVG).
echo "flamegraph: wrote $OUT ($(($(stat -c %s "$OUT") / 1024)) KiB)"
echo "samples by thread:"
perf report -i "$TMP/perf.data" --no-children --sort comm --stdio -g none 2> /dev/null |
	grep -E '^ +[0-9]' | head -12 || true
echo "top self time (symbol, all threads):"
perf report -i "$TMP/perf.data" --no-children --sort sym --stdio -g none 2> /dev/null |
	grep -E '^ +[0-9]' | head -15 || true
if [ -n "$KEEP" ]; then
	cp "$TMP/perf.data" "$KEEP"
	echo "perf data kept: perf report -i $KEEP"
fi
