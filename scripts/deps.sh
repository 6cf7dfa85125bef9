#!/usr/bin/env bash
# Install the Debian 12 packages corepipe needs, by set. Idempotent: when every package of the
# sets asked for is installed it prints nothing and touches nothing.
#
#   scripts/deps.sh run build      what `make run` installs: build corepiped and run it
#   scripts/deps.sh test           what `make test` adds: unit/integration tests, benchmarks
#   scripts/deps.sh package        what `make deb` / `make image` add: packaging and containers
#   scripts/deps.sh                run, build and test (`make deps`)
#   scripts/deps.sh --list SET...  print the packages of the sets, one per line, and exit
#
# "run" is what a host needs to run corepiped and nothing more: the shared libraries it links
# (the .deb's Depends, computed by dpkg-shlibdeps, are the same list; tests/integration/
# test_install.py checks that they agree) and the DPDK drivers it loads at run time.
set -euo pipefail

RUN=(
	# the shared libraries corepiped links (dpkg-shlibdeps of the binary)
	librte-eal23 librte-ethdev23 librte-mbuf23 librte-mempool23 librte-net23 librte-ring23 librte-hash23
	liburcu8 libck0 libprotobuf-c1 libgrpc29 libyaml-0-2 libsodium23 libzstd1 libsoxr0
	libmicrohttpd12 libsystemd0
	libstdc++6 # the C++ shim that hands sockets to gRPC (control/grpc_handoff.cc); named by the ASan build
	# DPDK drivers the EAL loads at start (its plugin directory): the mempool handler every
	# pool needs, the buses, and the port drivers of dataplane.ports' examples
	librte-mempool-ring23 librte-bus-vdev23 librte-bus-pci23
	librte-net-tap23 librte-net-memif23 librte-net-af-packet23 librte-net-ring23 librte-net-null23
)
BUILD=(
	build-essential pkg-config git
	universal-ctags                      # make check-cycles: function definitions (scripts/)
	libdpdk-dev                          # EAL, lcores, rte_ring, rte_mempool, rte_hash_crc
	liburcu-dev libck-dev                # urcu-qsbr + rculfhash; Concurrency Kit (ck_ec)
	libprotobuf-c-dev protobuf-c-compiler libgrpc-dev
	libyaml-dev libsodium-dev libzstd-dev libsoxr-dev
	libmicrohttpd-dev libsystemd-dev     # metrics endpoint; sd_notify
)
TEST=(
	libcmocka-dev
	dpdk dpdk-dev                        # dpdk-testpmd: the io-forward baseline of make bench (UDP)
	python3-grpcio python3-protobuf protobuf-compiler   # integration test clients
	python3-h2                                          # the rapid-reset flood client (test_frontend)
	clang libclang-rt-14-dev clang-format-14            # libFuzzer, sanitizers, format
	clang-tidy-14                                       # make analyze
	nghttp2-client                                      # h2load for perf/
	espeak-ng sox                                       # speech for the VAD tests
	python3-prometheus-client                           # the /metrics test parser
	prometheus                                          # promtool: check metrics, rules
	python3-yaml python3-kubernetes                     # manifest schema check (tests/k8s)
	systemd strace procps                               # systemd-analyze verify; the syscall filter check; /bin/kill
	dpkg-dev                                            # dpkg-shlibdeps: run set == the .deb's
	openssl                                             # throw-away CA and certs in TLS tests
	libgrpc++-dev libprotobuf-dev protobuf-compiler-grpc # the C++ reference server (make bench)
	gnuplot-nox curl                                    # make bench: plots; /metrics counters
	libjansson-dev libcurl4-openssl-dev                 # corepipectl: --json, top's /metrics
	tmux                                                # test_cli: top in a real terminal
	etcd-server                                         # registry.store: etcd (test_registry_etcd)
	etcd-client                                         # etcdctl: auth set-up in test_registry_etcd_secure
	linux-perf                                          # perf/flamegraph.sh, perf/perfstat.sh
	groff-base                                          # test_cli: the man page renders
	chromium                                            # test_bench_report: the HTML report
)
PACKAGE=(
	debhelper dpkg-dev fakeroot          # make deb: dpkg-buildpackage with dh
	debootstrap podman runc              # make image: a Debian root file system, podman (runc: see image.sh)
)

sets=("$@")
list=0
if [ "${1:-}" = "--list" ]; then
	list=1
	sets=("${@:2}")
fi
[ ${#sets[@]} -eq 0 ] && sets=(run build test)
PKGS=()
for s in "${sets[@]}"; do
	case "$s" in
	run) PKGS+=("${RUN[@]}") ;;
	build) PKGS+=("${BUILD[@]}") ;;
	test) PKGS+=("${TEST[@]}") ;;
	package) PKGS+=("${PACKAGE[@]}") ;;
	*) echo "deps: unknown set '$s' (run, build, test, package)" >&2; exit 2 ;;
	esac
done
if [ $list = 1 ]; then
	printf '%s\n' "${PKGS[@]}"
	exit 0
fi

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
# Packages such as prometheus start their daemon from the maintainer scripts; we want their
# tools only (promtool), so service starts are refused while installing, the Debian way
# (invoke-rc.d's policy-rc.d), unless the machine already has a policy of its own.
policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
	policy=/usr/sbin/policy-rc.d
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
	$SUDO chmod 755 "$policy"
	trap '$SUDO rm -f "$policy"' EXIT
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
npm_install
