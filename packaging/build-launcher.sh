#!/bin/sh
# Compile packaging/launcher.c (the standalone cinit's `cinit`) into OUT.
#   usage: packaging/build-launcher.sh OUT      (CC: the compiler, default cc)
# Static when the C library has a static archive (no dynamic loader runs before the signals
# are blocked), else dynamic. Exit status 3 when there is no C compiler at all.
set -eu
OUT=${1:?usage: build-launcher.sh OUT}
HERE=$(cd "$(dirname "$0")" && pwd)
CC=${CC:-cc}
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "build-launcher: no C compiler ($CC)" >&2
    exit 3
fi
# First choice: launcher-nolibc.c (x86_64, aarch64): raw system calls, no C library, a few
# KiB instead of glibc's ~680 KiB static. CINIT_LAUNCHER=libc skips it (tests build both).
NOLIBC="-Os -s -static -nostdlib -ffreestanding -fno-builtin -fno-stack-protector -fno-pie
    -no-pie -fno-asynchronous-unwind-tables -fno-tree-loop-distribute-patterns
    -Wl,--build-id=none"
if [ "${CINIT_LAUNCHER:-}" != libc ]; then
    # shellcheck disable=SC2086  # NOLIBC is a list of flags
    if "$CC" $NOLIBC -o "$OUT" "$HERE/launcher-nolibc.c" 2>/dev/null; then
        exit 0
    fi
fi
"$CC" -O2 -s -static -o "$OUT" "$HERE/launcher.c" 2>/dev/null \
    || "$CC" -O2 -s -o "$OUT" "$HERE/launcher.c"
