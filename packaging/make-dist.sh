#!/bin/sh
# `make dist`: the release files, in OUT (default dist/):
#   cinit-VERSION-linux-ARCH.tar.gz  the standalone build as installed: opt/cinit/... (the
#       bundle) and usr/local/bin/{cinit,systemctl,journalctl} -> /opt/cinit/cinit, so that
#       `ADD cinit-VERSION-linux-x86_64.tar.gz /` in a glibc image is the whole install;
#   cinit-VERSION-py3-none-any.whl, cinit-VERSION.tar.gz  (pip install; python -m build);
#   cinit_systemctl-VERSION-py3-none-any.whl  (pip install 'cinit[systemctl]': the two
#       commands as scripts; packaging/systemctl-shim/);
#   SHA256SUMS  (sha256sum -c SHA256SUMS).
#   usage: packaging/make-dist.sh PYTHON [BUNDLE] [OUT]   (run from the repository root)
# BUNDLE is a built standalone (make standalone: bin/cinit.dist). Reproducible: sorted names,
# owner 0, mtimes SOURCE_DATE_EPOCH (default: the last commit's time), gzip without a name.
set -eu
PYTHON=${1:?usage: make-dist.sh PYTHON [BUNDLE] [OUT]}
BUNDLE=${2:-bin/cinit.dist}
OUT=${3:-dist}
test -x "$BUNDLE/cinit" && test -d "$BUNDLE/libexec" \
    || { echo "make-dist: $BUNDLE is no standalone build (make standalone)" >&2; exit 1; }
VERSION=$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
SHIM=$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("packaging/systemctl-shim/pyproject.toml", "rb"))["project"]["version"])')
if [ "$VERSION" != "$SHIM" ]; then
    echo "make-dist: cinit is $VERSION but packaging/systemctl-shim is $SHIM" >&2
    exit 1
fi
case $(uname -m) in
    x86_64) ARCH=x86_64 ;;
    aarch64|arm64) ARCH=arm64 ;;
    *) ARCH=$(uname -m) ;;
esac
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

rm -rf "$OUT"
mkdir -p "$OUT"
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/opt" "$STAGE/usr/local/bin"
cp -a "$BUNDLE" "$STAGE/opt/cinit"
# cinit answers to the name it is run under: the two links make it systemctl and journalctl
# (the Containerfile links /usr/bin/systemctl and /usr/bin/journalctl only where the base
# image has none).
for name in cinit systemctl journalctl; do
    ln -s /opt/cinit/cinit "$STAGE/usr/local/bin/$name"
done
TARBALL="$OUT/cinit-$VERSION-linux-$ARCH.tar.gz"
tar -C "$STAGE" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
    -cf - opt usr | gzip -9 -n >"$TARBALL"

# The wheel and the sdist (an isolated build: setuptools comes from the package index).
"$PYTHON" -m build --sdist --wheel --outdir "$OUT" . >"$STAGE/build.log" 2>&1 \
    || { cat "$STAGE/build.log" >&2; exit 1; }
"$PYTHON" -m build --wheel --outdir "$OUT" packaging/systemctl-shim >"$STAGE/shim.log" 2>&1 \
    || { cat "$STAGE/shim.log" >&2; exit 1; }

(cd "$OUT" && sha256sum -- * >SHA256SUMS.new && mv SHA256SUMS.new SHA256SUMS)
echo "make-dist: $OUT/:"
(cd "$OUT" && ls -l -- *)
