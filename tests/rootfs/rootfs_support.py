"""Booting an unpacked image with the standalone cinit as PID 1 (shared by the rootfs tests).

`boot` runs `unshare --pid --mount --fork --mount-proc` (and `--net` when asked) with a small
wrapper as the namespace's PID 1 that mounts what a container runtime would into the tree
(/proc, /dev, /sys/fs/cgroup, a tmpfs /run), then execs `chroot TREE /usr/local/bin/cinit
ARGS` with a clean environment and CONTAINER_INIT_TRACE=1. `Image` is the running result:
commands run in it through nsenter, its processes are found through /proc.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))
from debian_services import SERVICES as SERVICES  # the services issue 15 names, and their units
from e2e_support import LineReader, Pid1Run
from e2e_support import wait_until as wait_until  # the rootfs tests' too

REPO = Path(__file__).resolve().parent.parent.parent
CINIT_BIN = Path(os.environ.get("CINIT_E2E_BIN") or REPO / "bin" / "cinit")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
OPT_IN = os.environ.get("CINIT_E2E_ROOTFS") == "1"

# The wrapper's parts. $1: the tree, $2: PATH, then cinit's arguments.
_PROC = 'mount -t proc proc "$tree/proc"\n'
# The host's /dev itself: enough for an image whose services never write to it.
_HOST_DEV = 'mount --bind /dev "$tree/dev"\n'
# A /dev of the container's own, as a runtime makes it (a tmpfs with the usual nodes bound
# from the host): a syslog daemon replaces /dev/log, which must not be the host's.
_PRIVATE_DEV = """mount -t tmpfs -o mode=0755,nosuid tmpfs "$tree/dev"
for node in null zero full random urandom tty; do
    touch "$tree/dev/$node"
    mount --bind "/dev/$node" "$tree/dev/$node"
done
mkdir "$tree/dev/shm" "$tree/dev/pts"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$tree/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$tree/dev/pts"
ln -s pts/ptmx "$tree/dev/ptmx"
ln -s /proc/self/fd "$tree/dev/fd"
ln -s /proc/self/fd/0 "$tree/dev/stdin"
ln -s /proc/self/fd/1 "$tree/dev/stdout"
ln -s /proc/self/fd/2 "$tree/dev/stderr"
"""
_CGROUP = """if [ -d /sys/fs/cgroup ]; then  # recursive: hybrid hosts have cgroup2 at .../unified
    mkdir -p "$tree/sys/fs/cgroup"
    mount --rbind /sys/fs/cgroup "$tree/sys/fs/cgroup"
fi
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$tree/run"
"""
# What Docker and Podman do to a container's /proc: the kernel's tunables are the host's, so
# they are read-only (systemd-sysctl.service and systemd-binfmt.service then skip themselves
# through ConditionPathIsReadWrite=/proc/sys, as they do under systemd in a container).
_READ_ONLY_PROC = """for entry in sys sysrq-trigger irq bus; do
    if [ -e "$tree/proc/$entry" ]; then
        mount --bind "$tree/proc/$entry" "$tree/proc/$entry"
        mount -o remount,bind,ro "$tree/proc/$entry"
    fi
done
"""
# A container's open-file limit as Docker's daemon sets it (1048576, soft and hard): units
# raise theirs up to it (redis' LimitNOFILE=65535) without CAP_SYS_RESOURCE. Where the test
# itself lacks CAP_SYS_RESOURCE (a sandbox), the hard limit it has stays.
_CONTAINER_LIMITS = "ulimit -n 1048576 2>/dev/null || :\n"
# Docker's default capability set: what a container's init has. Without CAP_SYS_MODULE,
# CAP_SYS_ADMIN, CAP_SYSLOG, ... units meant for a machine skip themselves
# (ConditionCapability=CAP_SYS_MODULE of systemd-modules-load.service) or fail harmlessly
# (rsyslog's imklog cannot take the host's kernel log), as in a container.
CONTAINER_CAPS = (
    "chown", "dac_override", "fowner", "fsetid", "kill", "setgid", "setuid", "setpcap",
    "net_bind_service", "net_raw", "sys_chroot", "mknod", "audit_write", "setfcap",
)  # fmt: skip
_EXEC = """shift 2
exec $confine env -i PATH="$path" CONTAINER_INIT_TRACE=1 chroot "$tree" /usr/local/bin/cinit "$@"
"""


def wrapper(*, private_dev: bool, net: bool, confined: bool) -> str:
    """The namespace's first PID 1: mounts what a container runtime would, then cinit.

    `private_dev`: a /dev of its own (else the host's, bound); `net`: loopback up in the
    new network namespace; `confined`: read-only kernel tunables in /proc, Docker's
    open-file limit and default capability set, as a container runtime starts a container.
    """
    head = 'set -e\ntree="$1"\npath="$2"\nconfine=\n'
    if net:  # a network namespace of its own: only loopback, up
        head += "ip link set lo up\n"
    script = head + _PROC + (_PRIVATE_DEV if private_dev else _HOST_DEV) + _CGROUP
    if confined:
        caps = ",".join(f"+{cap}" for cap in CONTAINER_CAPS)
        script += _READ_ONLY_PROC + _CONTAINER_LIMITS
        script += f"confine='setpriv --inh-caps=-all --bounding-set=-all,{caps}'\n"
    return script + _EXEC


@dataclass
class Image:
    """A booted image: the unpacked tree and cinit running in it as PID 1."""

    tree: Path
    run: Pid1Run
    run_dir_before: list[str]  # the tree's own /run, under the tmpfs cinit gets
    net: bool = False  # in a network namespace of its own

    @property
    def pid(self) -> int:
        """Host pid of cinit (PID 1 of the namespace)."""
        return int(self.run.init_pid())

    def inside(self) -> Path:
        """The tree as cinit sees it (its mounts included: /run is only visible here)."""
        return Path(f"/proc/{self.pid}/root")

    def exec_inside(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run argv in the image: cinit's namespaces, chrooted, clean env."""
        namespaces = ["--mount", "--pid", *(["--net"] if self.net else [])]
        command = [
            "nsenter", f"--target={self.pid}", *namespaces, "--root", "--wd", "--",
            "/usr/bin/env", "-i", f"PATH={PATH}", *argv,
        ]  # fmt: skip
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )

    def report(self) -> str:
        err = self.run.err.data.decode(errors="replace")
        out = self.run.out.data.decode(errors="replace")
        return f"\ncinit stderr:\n{err}\ncinit stdout:\n{out}"


def release_tarball() -> Path | None:
    """The release tarball to install: $CINIT_E2E_TARBALL (`make e2e` makes it with
    packaging/make-tarball.sh), else one made here from the standalone build (bin/cinit.dist);
    None when $CINIT_E2E_BIN names another build (installed as before: copied)."""
    given = os.environ.get("CINIT_E2E_TARBALL")
    if given:
        return Path(given)
    if os.environ.get("CINIT_E2E_BIN"):
        return None
    global _made_tarball
    if _made_tarball is None:
        out = Path(tempfile.mkdtemp(prefix="cinit-e2e-tarball-"))
        made = subprocess.run(
            [str(REPO / "packaging" / "make-tarball.sh"), str(CINIT_BIN.resolve().parent),
             str(out)],
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        _made_tarball = Path(made.stdout.strip())
    return _made_tarball


_made_tarball: Path | None = None


def install_cinit(tree: Path) -> None:
    """The standalone cinit in the tree as the release tarball installs it (unpacked at /:
    /opt/cinit, /usr/local/bin/cinit and its systemctl/journalctl links): what is tested is
    what is shipped. A build named by $CINIT_E2E_BIN is copied instead."""
    tarball = release_tarball()
    if tarball is not None:
        with tarfile.open(tarball) as tar:
            tar.extractall(tree, filter="tar")
        return
    executable = CINIT_BIN.resolve()
    target = tree / "usr/local/bin/cinit"
    if CINIT_BIN.is_symlink() or (executable.parent / "_internal").is_dir():
        # A one-directory build (the executable beside its libraries): copy the directory.
        shutil.copytree(executable.parent, tree / "usr/local/lib/cinit", symlinks=True)
        target.symlink_to(f"../lib/cinit/{executable.name}")
    else:
        shutil.copyfile(executable, target)
        target.chmod(0o755)


def boot(
    tree: Path,
    *cinit_args: str,
    private_dev: bool = False,
    net: bool = False,
    confined: bool = False,
) -> Image:
    """Start cinit in the tree as PID 1 of new namespaces (see the module docstring and
    `wrapper` for the options)."""
    argv = [
        "unshare", "--pid", "--mount", "--fork", "--mount-proc", "--propagation", "private",
        *(["--net"] if net else []),
        "/bin/sh", "-c", wrapper(private_dev=private_dev, net=net, confined=confined),
        "cinit-rootfs-wrapper", str(tree), PATH, *cinit_args,
    ]  # fmt: skip
    before = sorted(os.listdir(tree / "run"))
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    run = Pid1Run(proc, LineReader(proc.stdout), LineReader(proc.stderr), time.monotonic())
    return Image(tree, run, before, net)


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        # As servers bind: connections in TIME_WAIT do not make the port busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def namespace_pids(pid1: int) -> list[int]:
    """Host pids of every process in the PID namespace of host pid `pid1`."""
    ns = os.readlink(f"/proc/{pid1}/ns/pid")
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{entry}/ns/pid") == ns:
                    found.append(int(entry))
    return found


def processes_named(image: Image, name: str) -> list[int]:
    """Host pids of the namespace's processes whose executable is called `name`."""
    found = []
    for pid in namespace_pids(image.pid):
        with contextlib.suppress(OSError):  # it may exit while we look
            if os.path.basename(os.readlink(f"/proc/{pid}/exe")) == name:
                found.append(pid)
    return found


def rooted_in(tree: Path) -> list[int]:
    """Host pids of the processes anywhere whose root is `tree`."""
    rooted = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{entry}/root") == str(tree):
                rooted.append(int(entry))
    return rooted


def cgroup2_mount() -> Path | None:
    """Where the unified (v2) cgroup hierarchy is mounted on the host, if it is."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split(" - ", 1)
        if len(fields) == 2 and fields[1].split()[0] == "cgroup2":
            return Path(fields[0].split()[4])
    return None


def cgroups_of(pids: list[int]) -> set[str]:
    """The v2 cgroups (paths in the hierarchy) the processes `pids` are in, but the test's own."""
    own = _cgroup2_path(os.getpid())
    found = {_cgroup2_path(pid) for pid in pids}
    return {path for path in found if path is not None and path not in (own, "/")}


def _cgroup2_path(pid: int) -> str | None:
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return None
    return next((line[3:] for line in text.splitlines() if line.startswith("0::")), None)
