#!/usr/bin/env bash
# make bench: the in-process benchmarks (perf/bench_nodes: per-node framework cost;
# perf/bench_worker: metrics cost; every build/<variant>/perf/micro/micro_* that exists), then
# the side-by-side suite against the C++ async reference server (perf/sidebyside.sh), which
# writes perf/results/<UTC timestamp>.json, .md and the plots, with the in-process outputs
# included, and perf/frontend_bench.sh (the front end: pinned one-lcore and default maps).
# Every figure is printed with its command. About 15 minutes here.
#
# usage: scripts/bench.sh BUILD_DIR [ROUNDS] [SECONDS]
set -euo pipefail
B=${1:-build/release}
ROUNDS=${2:-3}
SECS=${3:-3}
OUT=$(mktemp -d /tmp/corepipe-bench.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
T0=$(date +%s)

echo "corepipe bench: $(date -u +%FT%TZ), $(nproc) CPUs, $(uname -r), build $B"
echo

# In-process benchmarks: each prints its own figures; the outputs go into the results too.
inproc() { # $1 = binary
	local name
	name=$(basename "$1")
	echo "==== $name (in-process, no server)"
	echo "\$ $1"
	if ! timeout 300 "$1" 2>&1 | tee "$OUT/$name.txt"; then
		echo "bench: $name failed"
		exit 1
	fi
	echo
}
inproc "$B/perf/bench_nodes"
inproc "$B/perf/bench_worker"
for m in "$B"/perf/micro/micro_*; do
	[ -x "$m" ] && [ -f "$m" ] || continue
	case "$m" in *.o | *.d) continue ;; esac
	inproc "$m"
done

echo "==== the gRPC front end side by side, pinned and default maps (perf/frontend_bench.sh)"
echo "\$ perf/frontend_bench.sh $B $ROUNDS $SECS"
perf/frontend_bench.sh "$B" "$ROUNDS" "$SECS"
echo

echo "==== side by side with the C++ async reference server (same gRPC, same messages)"
echo "\$ perf/sidebyside.sh $B $ROUNDS $SECS"
MICRO_OUT=$OUT perf/sidebyside.sh "$B" "$ROUNDS" "$SECS"
echo

# The UDP path (issue 6): memif against testpmd io-forward, tap against kernel UDP. It needs
# root (tap, veth, a network namespace) and dpdk-testpmd; say so rather than skip silently.
echo "==== the UDP path side by side (perf/udp_sidebyside.sh)"
if [ "$(id -u)" -eq 0 ] && command -v dpdk-testpmd >/dev/null; then
	echo "\$ perf/udp_sidebyside.sh $B $ROUNDS 4"
	perf/udp_sidebyside.sh "$B" "$ROUNDS" 4
else
	echo "bench: NOT RUN: the UDP benchmarks need root and dpdk-testpmd (make deps)"
fi
echo
echo "bench: done in $(( $(date +%s) - T0 )) s"
