#!/usr/bin/env bash
# make deb-test: install the packages from build/deb on this machine, check what they put
# where, start corepiped the way the unit does (as the corepipe user, the installed
# configuration found without --config), answer one gRPC call, stop it, then remove and purge
# and check that nothing is left. Refuses to run where corepipe is already installed or
# configured. Needs root (dpkg), python3-grpcio and the stubs of `make` (build/gen/python).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
fail() { echo "deb-test: FAIL: $*" >&2; exit 1; }
step() { echo "deb-test: $*"; }
[ "$(id -u)" = 0 ] || fail "needs root (dpkg -i)"
if dpkg-query -W corepiped >/dev/null 2>&1 || [ -e /etc/corepipe ]; then
	fail "corepiped is installed or /etc/corepipe exists on this machine: not touching it"
fi
debs=(build/deb/corepiped_*.deb build/deb/libcorepipe-udp1_*.deb build/deb/libcorepipe-udp-dev_*.deb)
for d in "${debs[@]}"; do [ -f "$d" ] || fail "$d missing: run make deb"; done
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	dpkg --purge corepiped libcorepipe-udp-dev libcorepipe-udp1 >/dev/null 2>&1 || true
}
trap cleanup EXIT

step "the .deb depends on runtime packages only"
depends=$(dpkg-deb -f build/deb/corepiped_*.deb Depends)
echo "  Depends: $depends"
if echo "$depends" | grep -Eq -- '-dev\b|cmocka|clang|python|protobuf-c-compiler'; then
	fail "build or test packages in Depends"
fi
runset=$(scripts/deps.sh --list run)
for p in $(echo "$depends" | tr ',' '\n' | sed 's/(.*)//; s/|.*//' | tr -d ' '); do
	case "$p" in libc6 | adduser | '') continue ;; esac
	echo "$runset" | grep -qx "$p" || fail "$p in Depends but not in scripts/deps.sh's run set"
done

step "install (apt resolves the runtime dependencies)"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	"${debs[@]/#/./}" >/dev/null
command -v corepiped >/dev/null || fail "corepiped not on PATH"
step "corepiped --version: $(corepiped --version | head -1)"
[ "$(corepiped --version | head -1)" = "corepiped $(cat VERSION)" ] || fail "--version"
getent passwd corepipe >/dev/null || fail "no corepipe user"
dpkg-query -W -f='${Conffiles}\n' corepiped | grep -q '/etc/corepipe/corepipe.yaml' ||
	fail "/etc/corepipe/corepipe.yaml is not a conffile"
[ "$(stat -c '%U:%G %a' /etc/corepipe/corepipe.yaml)" = "root:corepipe 640" ] ||
	fail "config owner/mode: $(stat -c '%U:%G %a' /etc/corepipe/corepipe.yaml)"
[ -f /lib/systemd/system/corepiped.service ] || fail "no unit"
systemd-analyze verify /lib/systemd/system/corepiped.service || fail "unit does not verify"
[ -L /usr/lib/x86_64-linux-gnu/libcorepipe-udp.so.1 ] || fail "no soname link"
pkg-config --modversion corepipe-udp >/dev/null || fail "no corepipe-udp.pc"
man -w corepiped >/dev/null || fail "no man page"

step "start as the unit does: user corepipe, config found in /etc without --config"
log=$(mktemp)
cd /
# The unit's settings, minus the sandboxing systemd would add; loopback port 0, 1 worker.
setpriv --reuid=corepipe --regid=corepipe --init-groups \
	env -i PATH=/usr/sbin:/usr/bin:/bin COREPIPE_SERVER_GRPC_LISTEN=127.0.0.1:0 \
	COREPIPE_SERVER_METRICS_LISTEN=127.0.0.1:0 COREPIPE_DATAPLANE_WORKERS=1 \
	corepiped 2>"$log" &
pid=$!
cd "$root"
for _ in $(seq 1 300); do
	grep -q '"msg":"serving"' "$log" && break
	kill -0 "$pid" 2>/dev/null || { cat "$log"; fail "corepiped exited"; }
	sleep 0.1
done
grep '"msg":"serving"' "$log" | grep -q '"config":"/etc/corepipe/corepipe.yaml"' ||
	{ cat "$log"; fail "serving line does not name /etc/corepipe/corepipe.yaml"; }
port=$(grep -o '"grpc_port":[0-9]*' "$log" | head -1 | cut -d: -f2)
step "serving on port $port; one call"
PYTHONPATH=build/gen/python /usr/bin/python3 - "$port" <<'PY' || fail "the call failed"
import sys, grpc, corepipe_pb2 as pb
ch = grpc.insecure_channel(f"127.0.0.1:{sys.argv[1]}")
ex = ch.unary_unary("/corepipe.v1.Pipeline/Execute", pb.ExecuteRequest.SerializeToString,
                    pb.ExecuteResponse.FromString)
r = ex(pb.ExecuteRequest(name="crc32c", input=pb.Payload(data=b"123456789")), timeout=10)
assert r.annotations["crc32c"] == "e3069283", r
print("  crc32c('123456789') =", r.annotations["crc32c"])
PY
kill -TERM "$pid"
wait "$pid" || fail "corepiped exited with $?"
pid=""
grep -q '"msg":"stopped"' "$log" || fail "no clean stop"
rm -f "$log"

step "remove: the program goes, the conffile stays"
dpkg -r corepiped libcorepipe-udp-dev libcorepipe-udp1 >/dev/null
[ ! -e /usr/sbin/corepiped ] || fail "/usr/sbin/corepiped left after remove"
[ -f /etc/corepipe/corepipe.yaml ] || fail "conffile removed by dpkg -r (only purge may)"
step "purge: nothing left"
dpkg --purge corepiped libcorepipe-udp-dev libcorepipe-udp1 >/dev/null
[ ! -e /etc/corepipe ] || fail "/etc/corepipe left after purge"
[ ! -e /lib/systemd/system/corepiped.service ] || fail "unit left after purge"
! dpkg-query -W corepiped >/dev/null 2>&1 || dpkg-query -W -f='${Status}\n' corepiped |
	grep -q not-installed || fail "package still known to dpkg"
step "PASS (the corepipe user is kept, as Debian policy recommends)"
