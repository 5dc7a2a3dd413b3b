"""A minimal Debian root filesystem without Python, built once and cached as tarballs.

Two cached stages under `$CINIT_E2E_CACHE` (default `~/.cache/cinit-e2e/`):
`bookworm-minbase.tar` is `debootstrap --variant=minbase bookworm` from Debian's mirror (the
download: 40-60 s here), and `bookworm-minbase-<key>.tar` adds an image's packages with
`chroot apt-get` (key: a hash of the package list). Two images share the first stage:
`PACKAGES` (the small image of test_rootfs_boot.py) and `PACKAGED` (the eleven Debian services
of issue 15 and their clients, test_packaged_boot.py; ~200 MB more to download). Each run
unpacks the second into a fresh directory. The tarballs are written under a temporary name
and renamed, under a lock, so an interrupted or concurrent build never leaves a half
tarball behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

SUITE = "bookworm"
MIRROR = os.environ.get("CINIT_E2E_MIRROR", "http://deb.debian.org/debian")
# dbus-system-bus-common: system.conf and the messagebus account; dbus-bin: dbus-send.
PACKAGES = ("nginx-light", "dbus-daemon", "dbus-bin", "dbus-system-bus-common", "passwd")
# Issue 15's eleven services and the clients that check them, as `apt-get install` gives them
# (no recommends: those pull in systemd itself, which a container image does not boot).
PACKAGED = (
    "nginx-light", "apache2", "redis-server", "openssh-server", "cron", "rsyslog", "memcached",
    "haproxy", "php8.2-fpm", "postgresql", "dbus",
    "curl", "redis-tools", "openssh-client", "postgresql-client", "dbus-bin", "bsdutils",
)  # fmt: skip
APT_ENV = {
    "DEBIAN_FRONTEND": "noninteractive",
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "LC_ALL": "C",
}


def cache_dir() -> Path:
    configured = os.environ.get("CINIT_E2E_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cinit-e2e"


def _run(argv: list[str], what: str, env: dict[str, str] | None = None) -> None:
    """Run a build step; on failure raise with the step's own output (its tail)."""
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=1200)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise RuntimeError(f"{what} failed (exit {done.returncode}): {' '.join(argv)}\n{tail}")


def ensure_debootstrap() -> None:
    """debootstrap from apt when it is missing (a fresh Debian machine has apt, not it)."""
    if shutil.which("debootstrap"):
        return
    if not shutil.which("apt-get"):
        raise RuntimeError("debootstrap is not installed and there is no apt-get to install it")
    env = {**os.environ, **APT_ENV}
    _run(["apt-get", "update", "-q"], "apt-get update", env)
    _run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "debootstrap"],
         "installing debootstrap", env)  # fmt: skip


@contextlib.contextmanager
def _locked(cache: Path) -> Iterator[None]:
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _pack(tree: Path, tarball: Path) -> None:
    partial = tarball.with_name(tarball.name + ".partial")
    _run(["tar", "--numeric-owner", "-C", str(tree), "-cf", str(partial), "."], "packing the tree")
    partial.rename(tarball)


def unpack(tarball: Path, tree: Path) -> None:
    """Extract a cached tarball into `tree` (created), owners and modes as stored."""
    tree.mkdir(parents=True, exist_ok=True)
    _run(["tar", "--numeric-owner", "-C", str(tree), "-xpf", str(tarball)], "unpacking the tree")


def _chroot_apt(tree: Path, *args: str) -> None:
    """apt-get inside the tree, in a private mount namespace with /proc and /dev."""
    script = (
        'set -e; mount -t proc proc "$1/proc"; mount --bind /dev "$1/dev"; shift; exec chroot "$@"'
    )
    argv = [
        "unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, "apt",
        str(tree), str(tree), "apt-get", *args,
    ]  # fmt: skip
    _run(argv, f"apt-get {' '.join(args)} in the tree", APT_ENV)


def _build_base(tarball: Path, work: Path) -> None:
    ensure_debootstrap()
    tree = work / "base"
    _run(["debootstrap", "--variant=minbase", SUITE, str(tree), MIRROR], "debootstrap")
    _pack(tree, tarball)


def _build_with_packages(base: Path, tarball: Path, work: Path, packages: tuple[str, ...]) -> None:
    tree = work / "image"
    unpack(base, tree)
    # Package scripts must not try to start services in the build tree.
    policy = tree / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    shutil.copyfile("/etc/resolv.conf", tree / "etc/resolv.conf")
    _chroot_apt(tree, "update", "-q")
    _chroot_apt(tree, "install", "-y", "-q", "--no-install-recommends", *packages)
    _chroot_apt(tree, "clean")
    policy.unlink()
    pythons = sorted(p.name for p in (tree / "usr/bin").glob("python*"))
    if pythons:
        raise RuntimeError(f"the image must have no Python, but apt installed {pythons}")
    _pack(tree, tarball)


def image_tarball(packages: tuple[str, ...] = PACKAGES) -> Path:
    """The cached tarball of `packages` on minbase; built (with download) if absent."""
    cache = cache_dir()
    key = hashlib.sha256(" ".join((SUITE, MIRROR, *packages)).encode()).hexdigest()[:12]
    base = cache / f"{SUITE}-minbase.tar"
    image = cache / f"{SUITE}-minbase-{key}.tar"
    with _locked(cache):
        if image.exists():
            return image
        with tempfile.TemporaryDirectory(prefix="build-", dir=cache) as work:
            if not base.exists():
                _build_base(base, Path(work))
            _build_with_packages(base, image, Path(work), packages)
    return image
