#!/bin/sh
# Build the standalone cinit: a PyInstaller onedir bundle in $OUT/cinit.dist/libexec, the
# launcher $OUT/cinit.dist/cinit (packaging/launcher.c: blocks cinit's signals, then execs the
# bundle's bootloader) and $OUT/cinit, a relative symlink to the launcher. Needs no Python on
# the target. Without a C compiler (CC, else cc) cinit.dist/cinit is a symlink to the
# bootloader: it works, but a SIGTERM in its first ~10 ms as PID 1 is lost (a warning says so).
#   usage: packaging/build-standalone.sh PYTHON [OUT]     (make standalone: PYTHON=.venv/bin/python OUT=bin)
# PYTHON must have cinit, its dependencies and PyInstaller importable (pip install '.[build]')
# and a shared libpython (python.org/pyenv/official container images have one; Debian's
# /usr/bin/python3 needs the `libpython3.11` package).
set -eu
PYTHON=${1:?usage: build-standalone.sh PYTHON [OUT]}
OUT=${2:-bin}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${CINIT_BUILD_DIR:-$HERE/../build/standalone}

"$PYTHON" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$WORK/dist" --workpath "$WORK/work" "$HERE/cinit.spec"

mkdir -p "$OUT"
# Replace atomically enough for a developer machine: build beside, then swap.
rm -rf "$OUT/cinit.dist.new"
mkdir "$OUT/cinit.dist.new"
cp -a "$WORK/dist/cinit" "$OUT/cinit.dist.new/libexec"
if ! "$HERE/build-launcher.sh" "$OUT/cinit.dist.new/cinit"; then
    echo "standalone cinit: WARNING: no launcher built: as PID 1, a SIGTERM in the first" \
        "~10 ms after exec is lost (packaging/README.md)" >&2
    ln -s libexec/cinit "$OUT/cinit.dist.new/cinit"
fi
rm -rf "$OUT/cinit.dist"
mv "$OUT/cinit.dist.new" "$OUT/cinit.dist"
# The launcher and the bootloader find their files through /proc/self/exe, so a symlink works
# from anywhere.
ln -sfn cinit.dist/cinit "$OUT/cinit"
# A smoke test of the paths that import the most (the spec leaves out what nothing imports:
# a module left out by mistake shows here, the test suite proves the rest).
for check in "validate --example --strict-units" "--help" "version" "help status" \
        "analyze --help" "watch --help" "logs --help" "systemctl --help" "journalctl --help"; do
    # shellcheck disable=SC2086  # each check is a list of words
    if ! "$OUT/cinit" $check >"$WORK/check.log" 2>&1; then
        cat "$WORK/check.log" >&2
        echo "standalone cinit: $OUT/cinit fails '$check'" >&2
        exit 1
    fi
done
echo "standalone cinit: $OUT/cinit -> $OUT/cinit.dist ($(du -sh "$OUT/cinit.dist" | cut -f1))"
