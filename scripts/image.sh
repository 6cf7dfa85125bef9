#!/usr/bin/env bash
# make image / make image-test: the container image of deploy/container/Containerfile, built
# without a registry: a Debian 12 root file system made here with debootstrap (minbase) is
# imported into podman as the base image, then the Containerfile installs build/deb's
# corepiped package on it.
#   scripts/image.sh build   rootfs (cached in build/image/rootfs.tar), base image, image
#   scripts/image.sh test    run the image with podman, answer a gRPC call and a health check
#                            over the published ports, stop it (SIGTERM: a clean drain)
# The mirror is the one this machine's apt uses (override with MIRROR=...).
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(cat VERSION)
base=localhost/corepipe-debian:bookworm
image=localhost/corepipe:$version
out=build/image
step() { echo "image: $*"; }
fail() { echo "image: FAIL: $*" >&2; exit 1; }

# How this machine runs containers. Normally podman's defaults; in a sandbox that lacks
# CAP_SYS_RESOURCE and has hybrid cgroups (this one), crun refuses ("cgroups in hybrid mode not
# supported") and podman's default limits above the host's hard ones fail with EPERM: then
# runc, with resource limits no higher than the host's.
RUN_OPTS=()
podman_setup() {
	if podman run --rm --entrypoint /bin/true "$1" >/dev/null 2>&1; then
		return
	fi
	local nofile nproc
	nofile=$(ulimit -Hn)
	nproc=4096 # threads: corepiped runs a few dozen
	[ "$nofile" = unlimited ] && nofile=16384
	[ "$nofile" -gt 16384 ] && nofile=16384
	RUN_OPTS=(--runtime runc --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")
	podman run --rm "${RUN_OPTS[@]}" --entrypoint /bin/true "$1" >/dev/null 2>&1 ||
		fail "podman cannot run a container here: $(podman run --rm "${RUN_OPTS[@]}" --entrypoint /bin/true "$1" 2>&1 | tail -1)"
	step "podman defaults do not run here; using ${RUN_OPTS[*]}"
}

mirror() {
	[ -n "${MIRROR:-}" ] && { echo "$MIRROR"; return; }
	local m
	m=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' |
		grep -v security | head -1)
	[ -z "$m" ] && m=$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | head -1)
	[ -n "$m" ] || fail "no Debian mirror in this machine's apt sources; set MIRROR"
	echo "$m"
}

build() {
	[ -f build/deb/corepiped_${version}_amd64.deb ] || fail "no package: run make deb first"
	mkdir -p "$out"
	if [ ! -f "$out/rootfs.tar" ]; then
		step "debootstrap bookworm (minbase) from $(mirror)"
		rm -rf "$out/rootfs"
		debootstrap --variant=minbase bookworm "$out/rootfs" "$(mirror)" \
			>"$out/debootstrap.log" 2>&1 || { tail -20 "$out/debootstrap.log"; fail debootstrap; }
		# What a slim image leaves out: apt lists (the build fetches its own), logs, docs.
		rm -rf "$out"/rootfs/var/lib/apt/lists/* "$out"/rootfs/var/cache/apt/*.bin \
			"$out"/rootfs/usr/share/doc/* "$out"/rootfs/usr/share/man/*
		tar -C "$out/rootfs" --numeric-owner -cf "$out/rootfs.tar.tmp" .
		mv "$out/rootfs.tar.tmp" "$out/rootfs.tar"
		rm -rf "$out/rootfs"
	fi
	step "import the root file system as $base"
	podman import --change 'CMD ["/bin/bash"]' "$out/rootfs.tar" "$base" >/dev/null
	rm -rf "$out/context"
	mkdir -p "$out/context"
	cp build/deb/corepiped_${version}_amd64.deb deploy/container/corepipe.yaml "$out/context/"
	podman_setup "$base"
	step "podman build $image"
	podman build "${RUN_OPTS[@]}" --network host --build-arg BASE=$base -f deploy/container/Containerfile \
		-t "$image" "$out/context" >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; fail "podman build"; }
	podman image inspect "$image" --format '{{.Id}} {{.Size}}' | sed 's/^/image: /'
}

run_test() {
	local gport mport
	name=corepipe-image-test-$$
	podman image exists "$image" || fail "no image $image: run make image"
	gport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	trap 'podman rm -f "$name" >/dev/null 2>&1 || true' EXIT
	podman_setup "$image"
	step "podman run ($gport -> 50051, $mport -> 29051)"
	podman run "${RUN_OPTS[@]}" -d --name "$name" -p "127.0.0.1:$gport:50051" -p "127.0.0.1:$mport:29051" \
		"$image" --workers 1 >/dev/null || fail "podman run"
	for _ in $(seq 1 300); do
		podman logs "$name" 2>&1 | grep -q '"msg":"serving"' && break
		[ "$(podman inspect -f '{{.State.Running}}' "$name")" = true ] ||
			{ podman logs "$name"; fail "the container exited"; }
		sleep 0.1
	done
	podman logs "$name" 2>&1 | grep '"msg":"serving"' | grep -q '"config":"/etc/corepipe/corepipe.yaml"' ||
		{ podman logs "$name"; fail "not serving from /etc/corepipe/corepipe.yaml"; }
	step "a gRPC call and a health check through the published ports"
	PYTHONPATH=build/gen/python /usr/bin/python3 - "$gport" "$mport" <<'PY' || { podman logs "$name"; fail "the call failed"; }
import sys, time, urllib.request, grpc, corepipe_pb2 as pb, health_pb2 as hpb
ch = grpc.insecure_channel(f"127.0.0.1:{sys.argv[1]}")
grpc.channel_ready_future(ch).result(timeout=20)
ex = ch.unary_unary("/corepipe.v1.Pipeline/Execute", pb.ExecuteRequest.SerializeToString,
                    pb.ExecuteResponse.FromString)
r = ex(pb.ExecuteRequest(name="crc32c", input=pb.Payload(data=b"123456789")), timeout=10)
assert r.annotations["crc32c"] == "e3069283", r
hc = ch.unary_unary("/grpc.health.v1.Health/Check", hpb.HealthCheckRequest.SerializeToString,
                    hpb.HealthCheckResponse.FromString)
assert hc(hpb.HealthCheckRequest(), timeout=10).status == hpb.HealthCheckResponse.SERVING
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[2]}/readyz", timeout=10) as h:
    assert h.status == 200
print("  crc32c('123456789') =", r.annotations["crc32c"], "; health SERVING; /readyz 200")
PY
	[ "$(podman exec "$name" id -un)" = corepipe ] || fail "not running as corepipe"
	step "podman stop (SIGTERM): a clean drain"
	podman stop -t 30 "$name" >/dev/null
	[ "$(podman inspect -f '{{.State.ExitCode}}' "$name")" = 0 ] || { podman logs "$name"; fail "exit code"; }
	podman logs "$name" 2>&1 | grep -q '"msg":"stopped"' || fail "no stopped line"
	step "PASS"
}

case "${1:-}" in
build) build ;;
test) run_test ;;
*) echo "usage: $0 build|test" >&2; exit 2 ;;
esac
