#!/usr/bin/env bash
# Install the Debian 12 packages corepipe needs to build, run and test. Idempotent: when every
# package is already installed it prints nothing and touches nothing.
set -euo pipefail

PKGS=(
	build-essential pkg-config git
	libdpdk-dev dpdk                     # EAL, lcores, rte_ring, rte_mempool, rte_hash_crc
	dpdk-dev                             # dpdk-testpmd: the io-forward baseline of make bench (UDP)
	liburcu-dev libck-dev                # urcu-qsbr + rculfhash; Concurrency Kit (ck_ec)
	libprotobuf-c-dev protobuf-c-compiler libgrpc-dev
	libyaml-dev libsodium-dev libzstd-dev libsoxr-dev
	libcmocka-dev
	python3-grpcio python3-protobuf protobuf-compiler   # integration test clients
	clang libclang-rt-14-dev clang-format-14            # libFuzzer, sanitizers, format
	nghttp2-client                                      # h2load for perf/
	espeak-ng sox                                       # speech for the VAD tests
	libmicrohttpd-dev python3-prometheus-client         # metrics endpoint and its test parser
	openssl                                             # throw-away CA and certs in TLS tests
	libgrpc++-dev libprotobuf-dev protobuf-compiler-grpc # the C++ reference server (make bench)
	gnuplot-nox curl                                    # make bench: plots; /metrics counters
	libjansson-dev libcurl4-openssl-dev                 # corepipectl: --json, top's /metrics
	tmux                                                # test_cli: top in a real terminal
	linux-perf                                          # perf/flamegraph.sh, perf/perfstat.sh
	groff-base                                          # test_cli: the man page renders
	chromium                                            # test_bench_report: the HTML report
)

# npm packages installed into the tree from committed package-lock.json files (npm ci), so
# that what uses them works offline afterwards: the Node.js example, the third-party
# reflection client of the tests, and the flame-graph renderer of perf/flamegraph.sh.
NPM_DIRS=(examples/node tests/integration/node perf/flamegraph)

npm_install() {
	local root d
	root=$(cd "$(dirname "$0")/.." && pwd)
	for d in "${NPM_DIRS[@]}"; do
		[ -f "$root/$d/package-lock.json" ] || continue
		# Installed already when node_modules is newer than the lock file.
		[ "$root/$d/node_modules/.package-lock.json" -nt "$root/$d/package-lock.json" ] && continue
		echo "deps: npm ci in $d" >&2
		(cd "$root/$d" && npm ci --no-audit --no-fund --loglevel=error >&2)
	done
}

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
# Node.js and npm (examples/node, the reflection test client, the flame-graph renderer): Debian's
# packages unless a node with npm is there already (e.g. from another repository).
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -eq 0 ]; then
	npm_install
	exit 0
fi

echo "deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
npm_install
