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
)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
