#!/bin/sh
# The build stage of the Containerfile, as one script so it can also be run (and tested) on a
# plain machine: a clean venv with cinit and PyInstaller, the standalone build, then a check
# that the built binary validates the image's unit set (core units + drop-ins) strictly.
#   usage: packaging/containerfile-build.sh VENV OUT      (run from the repository root)
set -eu
VENV=${1:?usage: containerfile-build.sh VENV OUT}
OUT=${2:?usage: containerfile-build.sh VENV OUT}
PYTHON=${PYTHON:-python3}

"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --no-cache-dir --quiet '.[build]'
# PyInstaller takes cinit from this tree (the spec puts it on the path), its deps from the venv.
CINIT_BUILD_DIR=${CINIT_BUILD_DIR:-$VENV/pyinstaller} packaging/build-standalone.sh "$VENV/bin/python" "$OUT"
# The release tarball (what `make dist` ships), unpacked into $OUT/rootfs: the image copies
# exactly its files (/opt/cinit, /usr/local/bin/{cinit,systemctl,journalctl}).
TARBALL=$(packaging/make-tarball.sh "$OUT/cinit.dist" "$OUT/dist")
rm -rf "$OUT/rootfs"
mkdir -p "$OUT/rootfs"
tar -xzf "$TARBALL" -C "$OUT/rootfs"
# The drop-in layer of the image is two directories merged into /etc/container-init.d/.
DROP_IN=$(mktemp -d)
trap 'rm -rf "$DROP_IN"' EXIT
cp cinit/examples/container-init.d/* packaging/container-init.d/* "$DROP_IN"/
# --no-host-checks: the units' programs (busybox) are in the final image, not in this stage.
"$OUT/cinit" validate --units cinit/examples/units --drop-in "$DROP_IN" --strict-units --no-host-checks
