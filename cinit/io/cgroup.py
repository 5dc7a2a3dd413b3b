"""Per-unit cgroups (v2): find the hierarchy, create and remove groups, kill a whole group.

cinit works in a subtree of the cgroup it was started in (`<mount><own path>/<subtree>`):
in a container with a cgroup namespace that is `/sys/fs/cgroup/cinit`; on a hybrid host
like the development machine the v2 hierarchy is at `/sys/fs/cgroup/unified`. No
controller is enabled, so cinit may stay in its own cgroup beside the subtree (the "no
internal processes" rule only applies to enabled controllers).

When the hierarchy is missing or not writable (rootless, read-only /sys), `CgroupTree.detect`
returns None after logging the fallback once; callers then signal process groups instead.
"""

from __future__ import annotations

import errno
import os
import time

from cinit.boot_path import TYPE_CHECKING
from cinit.io.log import log
from cinit.io.sweep import signal_listed

if TYPE_CHECKING:
    import signal
else:  # the C half: `signal` itself builds its enums (~1 ms before the first exec)
    import _signal as signal

_fallback_logged = False


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal `\\040` etc."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        code = field[i + 1 : i + 4]
        if field[i] == "\\" and len(code) == 3 and code.isdigit():
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def find_cgroup2_mount(mountinfo: str = "/proc/self/mountinfo") -> tuple[str, str] | None:
    """(mount point, root of the mounted subtree) of the cgroup v2 hierarchy, if mounted."""
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        left, sep, right = line.partition(" - ")
        if not sep or not right.startswith("cgroup2 "):
            continue
        fields = left.split()
        if len(fields) >= 5:
            return _unescape(fields[4]), _unescape(fields[3])
    return None


def own_cgroup_path(proc_cgroup: str = "/proc/self/cgroup") -> str | None:
    """This process's cgroup v2 path (the `0::` line), e.g. `/` in a cgroup namespace."""
    try:
        with open(proc_cgroup, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("0::"):
                    return line[3:].rstrip("\n")
    except OSError:
        return None
    return None


class Cgroup:
    """One cgroup directory (a unit's)."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"Cgroup({self.path!r})"

    def pids(self) -> list[int]:
        """Processes in this cgroup (not in its children); empty when it is gone."""
        try:
            with open(os.path.join(self.path, "cgroup.procs")) as f:
                return [int(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def populated(self) -> bool:
        """Whether any process is in this cgroup or below it."""
        try:
            with open(os.path.join(self.path, "cgroup.events")) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "populated":
                        return value.strip() == "1"
        except FileNotFoundError:
            return False
        return bool(self.pids())

    def signal(self, signo: int) -> int:
        """Send `signo` to every process in the cgroup (through pidfds); returns how many.

        A pid is signalled only if it is still listed after its pidfd was opened, so a
        pid reused by a process outside the cgroup is never hit.
        """
        return signal_listed(self.pids, signo)

    def kill(self) -> None:
        """SIGKILL everything in the cgroup and below, atomically with `cgroup.kill`.

        On kernels without cgroup.kill (before 5.14) the listed processes are killed
        one by one, repeatedly, until the group is empty or a few passes found nothing new.
        """
        try:
            with open(os.path.join(self.path, "cgroup.kill"), "w") as f:
                f.write("1")
            return
        except FileNotFoundError:
            if not os.path.isdir(self.path):
                return
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.EACCES, errno.EPERM):
                raise
        for _ in range(20):
            if self._signal_tree(signal.SIGKILL) == 0:
                return
            time.sleep(0.005)

    def _signal_tree(self, signo: int) -> int:
        sent = 0
        for directory, _, _ in os.walk(self.path):
            sent += Cgroup(directory).signal(signo)
        return sent

    def remove(self) -> bool:
        """Remove the (empty) cgroup and its empty children; False if something is still in it."""
        for directory, _subdirs, _files in os.walk(self.path, topdown=False):
            try:
                os.rmdir(directory)
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno == errno.EBUSY:
                    return False
                raise
        return True


class CgroupTree:
    """cinit's own subtree of the cgroup v2 hierarchy, where unit cgroups live."""

    __slots__ = ("root",)

    def __init__(self, root: str) -> None:
        self.root = root  # an existing, writable directory

    def __repr__(self) -> str:
        return f"CgroupTree({self.root!r})"

    @classmethod
    def detect(
        cls,
        subtree: str = "cinit",
        mountinfo: str = "/proc/self/mountinfo",
        proc_cgroup: str = "/proc/self/cgroup",
    ) -> CgroupTree | None:
        """Create (or reuse) `<own cgroup>/<subtree>`; None (logged once) when unusable."""
        mount = find_cgroup2_mount(mountinfo)
        own = own_cgroup_path(proc_cgroup)
        if mount is None or own is None:
            _log_fallback("no cgroup v2 hierarchy is mounted")
            return None
        mount_point, mount_root = mount
        relative = os.path.relpath(own, mount_root) if mount_root != "/" else own.lstrip("/")
        if relative.startswith(".."):
            _log_fallback(f"cinit's cgroup {own} is outside the mounted hierarchy")
            return None
        root = os.path.normpath(os.path.join(mount_point, relative, subtree))
        try:
            os.makedirs(root, exist_ok=True)
            # Probe that processes can be moved here (fails on read-only or delegated trees).
            if not os.access(os.path.join(root, "cgroup.procs"), os.W_OK):
                raise PermissionError(errno.EACCES, "cgroup.procs is not writable")
        except OSError as exc:
            _log_fallback(f"{root}: {exc.strerror or exc}")
            return None
        return cls(root)

    @classmethod
    def for_instance(cls) -> CgroupTree | None:
        """This cinit's own subtree, named uniquely: several cinit instances may share one
        cgroup (tests, a host without cgroup namespaces, where even "/" is shared), and one
        must never kill another's units. It is removed when cinit exits."""
        return cls.detect(subtree=f"cinit.{os.urandom(4).hex()}")

    def create(self, name: str) -> Cgroup:
        """The cgroup for `name` (a unit name), created if needed."""
        if "/" in name or name in ("", ".", ".."):
            raise ValueError(f"not a cgroup name: {name!r}")
        path = os.path.join(self.root, name)
        try:  # one syscall: boot created the boot units' groups already
            os.mkdir(path)
        except FileExistsError:
            pass
        except FileNotFoundError:
            os.makedirs(path, exist_ok=True)
        return Cgroup(path)

    def children(self) -> list[Cgroup]:
        """The unit cgroups that exist now."""
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        paths = [os.path.join(self.root, n) for n in names]
        return [Cgroup(p) for p in paths if os.path.isdir(p)]

    def remove(self) -> bool:
        """Remove the whole (empty) subtree; False when a process is still in it."""
        return Cgroup(self.root).remove()


def _log_fallback(reason: str) -> None:
    global _fallback_logged
    if not _fallback_logged:
        _fallback_logged = True
        log(f"cgroups unavailable ({reason}); using process groups to stop units")
