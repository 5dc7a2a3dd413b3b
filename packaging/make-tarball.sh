#!/bin/sh
# The release tarball of the standalone cinit: OUT/cinit-VERSION-linux-ARCH.tar.gz, which
# unpacks at / to opt/cinit/... (the bundle) and usr/local/bin/{cinit,systemctl,journalctl}
# -> /opt/cinit/cinit: `ADD cinit-VERSION-linux-x86_64.tar.gz /` in a glibc image is the
# whole install. Prints the tarball's path. Used by `make dist` (packaging/make-dist.sh),
# the Containerfile's build stage and `make e2e` (tests/rootfs): what is tested is shipped.
#   usage: packaging/make-tarball.sh BUNDLE OUT      (BUNDLE: make standalone's bin/cinit.dist)
# Reproducible: sorted names, owner 0, mtimes SOURCE_DATE_EPOCH (default: the last commit's
# time, else now), gzip -9 without a name or time.
set -eu
BUNDLE=${1:?usage: make-tarball.sh BUNDLE OUT}
OUT=${2:?usage: make-tarball.sh BUNDLE OUT}
HERE=$(cd "$(dirname "$0")" && pwd)
test -x "$BUNDLE/cinit" && test -d "$BUNDLE/libexec" \
    || { echo "make-tarball: $BUNDLE is no standalone build (make standalone)" >&2; exit 1; }
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$HERE/../pyproject.toml" | head -n 1)
test -n "$VERSION" || { echo "make-tarball: no version in pyproject.toml" >&2; exit 1; }
case $(uname -m) in
    x86_64) ARCH=x86_64 ;;
    aarch64|arm64) ARCH=arm64 ;;
    *) ARCH=$(uname -m) ;;
esac
EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$HERE" log -1 --format=%ct 2>/dev/null || date +%s)}

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/opt" "$STAGE/usr/local/bin" "$OUT"
cp -a "$BUNDLE" "$STAGE/opt/cinit"
# cinit answers to the name it is run under: the two links make it systemctl and journalctl.
for name in cinit systemctl journalctl; do
    ln -s /opt/cinit/cinit "$STAGE/usr/local/bin/$name"
done
TARBALL="$OUT/cinit-$VERSION-linux-$ARCH.tar.gz"
tar -C "$STAGE" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$EPOCH" \
    -cf - opt usr | gzip -9 -n >"$TARBALL.new"
mv "$TARBALL.new" "$TARBALL"
echo "$TARBALL"
