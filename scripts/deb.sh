#!/usr/bin/env bash
# make deb: build the Debian packages (corepiped, libcorepipe-udp1, libcorepipe-udp-dev) with
# dpkg-buildpackage from debian/, in a clean copy of the tree (tracked files plus uncommitted
# changes) under build/deb/, so nothing is written outside build/. Output: build/deb/*.deb.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(cat VERSION)
deb_version=$(dpkg-parsechangelog -S Version)
if [ "$deb_version" != "$version" ]; then
	echo "deb: debian/changelog is at $deb_version but VERSION says $version;" \
		"add a changelog entry (dch -v $version)" >&2
	exit 2
fi
out=build/deb
src=$out/corepipe-$version
rm -rf "$out"
mkdir -p "$src"
git ls-files -z --cached --others --exclude-standard | grep -zv '^build/' |
	xargs -0 cp --parents -t "$src"
REVISION=$(git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)
export REVISION
(cd "$src" && dpkg-buildpackage -b -us -uc -j"$(nproc)" >../build.log 2>&1) || {
	tail -40 "$out/build.log" >&2
	exit 1
}
ls -1 "$out"/*.deb
