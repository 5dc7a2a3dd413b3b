#!/bin/sh
# `make dist`: the release files, in OUT (default dist/):
#   cinit-VERSION-linux-ARCH.tar.gz  the standalone build as installed (make-tarball.sh):
#       opt/cinit/... and usr/local/bin/{cinit,systemctl,journalctl} -> /opt/cinit/cinit;
#   cinit-VERSION-py3-none-any.whl, cinit-VERSION.tar.gz  (pip install; python -m build);
#   cinit_systemctl-VERSION-py3-none-any.whl  (pip install 'cinit[systemctl]': the two
#       commands as scripts; packaging/systemctl-shim/);
#   SHA256SUMS  (sha256sum -c SHA256SUMS).
#   usage: packaging/make-dist.sh PYTHON [BUNDLE] [OUT]   (run from the repository root)
# PYTHON has `build` (pip install '.[build]'); BUNDLE is a standalone build (bin/cinit.dist).
set -eu
PYTHON=${1:?usage: make-dist.sh PYTHON [BUNDLE] [OUT]}
BUNDLE=${2:-bin/cinit.dist}
OUT=${3:-dist}
HERE=$(cd "$(dirname "$0")" && pwd)
VERSION=$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
SHIM=$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("packaging/systemctl-shim/pyproject.toml", "rb"))["project"]["version"])')
if [ "$VERSION" != "$SHIM" ]; then
    echo "make-dist: cinit is $VERSION but packaging/systemctl-shim is $SHIM" >&2
    exit 1
fi
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

rm -rf "$OUT"
mkdir -p "$OUT"
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
"$HERE/make-tarball.sh" "$BUNDLE" "$OUT" >/dev/null
# The wheel and the sdist (an isolated build: setuptools comes from the package index).
"$PYTHON" -m build --sdist --wheel --outdir "$OUT" . >"$LOG" 2>&1 || { cat "$LOG" >&2; exit 1; }
"$PYTHON" -m build --wheel --outdir "$OUT" packaging/systemctl-shim >"$LOG" 2>&1 \
    || { cat "$LOG" >&2; exit 1; }
(cd "$OUT" && sha256sum -- * >"$LOG" && mv "$LOG" SHA256SUMS && chmod 644 SHA256SUMS)
echo "make-dist: $OUT/:"
(cd "$OUT" && ls -l -- *)
