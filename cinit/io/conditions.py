"""The Condition*=/Assert*= checks beyond paths, environment and user, as a container sees them.

systemd.unit(5) defines each check; cinit evaluates it when the unit is about to start,
from inside the container, and answers these the way systemd does when it runs as a
container's init:

- ConditionVirtualization=: cinit runs in a container (that is what it is for), so
  `container` and `yes` hold, `vm` and `no` do not. The container's kind comes from
  `$container` (what container managers set for their init), else /run/.containerenv
  (podman), else /.dockerenv (docker); `private-users` holds when cinit's user namespace
  does not map the whole uid range (a rootless or user-namespaced container). A VM
  technology's name (`kvm`, `qemu`, ...) never holds: what runs below the container is
  not looked for.
- ConditionCapability=: the capability is in cinit's bounding set (/proc/self/status).
- ConditionSecurity=: `selinux`, `apparmor`, `smack`, `ima`, `tomoyo` by their kernel
  interfaces; `audit` never holds (a container cannot use the kernel's audit subsystem);
  `uefi-secureboot`, `tpm2`, `cvm` and `measured-uki` describe the machine's boot, which a
  container does not see: they never hold.
- ConditionKernelCommandLine=: the host kernel's /proc/cmdline (a container shares it).
- ConditionFirstBoot=: the container's first boot is one whose /etc/machine-id is missing,
  empty or `uninitialized` (systemd's own test; images usually ship none).
- ConditionNeedsUpdate=: /usr is newer than `DIR/.updated` (missing: true), never on a
  read-only DIR: systemd's rule, unchanged.
- ConditionHost=: the hostname (shell pattern) or the machine id.
- ConditionPathIsMountPoint= reads /proc/self/mountinfo (bind mounts of files count).
- ConditionACPower=: systemd's test on /sys/class/power_supply (no mains supply known:
  on AC power).
- ConditionCredential=: a file of that name in cinit's $CREDENTIALS_DIRECTORY (what a
  container manager passes) or /run/credentials/@system.
"""

from __future__ import annotations

import os

from cinit.boot_path import TYPE_CHECKING
from cinit.io.host_facts import architecture

if TYPE_CHECKING:
    from collections.abc import Mapping

# Linux capability numbers (linux/capability.h): each name's place in this list.
_CAPABILITY_NAMES = """
    CAP_CHOWN CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER CAP_FSETID CAP_KILL CAP_SETGID
    CAP_SETUID CAP_SETPCAP CAP_LINUX_IMMUTABLE CAP_NET_BIND_SERVICE CAP_NET_BROADCAST
    CAP_NET_ADMIN CAP_NET_RAW CAP_IPC_LOCK CAP_IPC_OWNER CAP_SYS_MODULE CAP_SYS_RAWIO
    CAP_SYS_CHROOT CAP_SYS_PTRACE CAP_SYS_PACCT CAP_SYS_ADMIN CAP_SYS_BOOT CAP_SYS_NICE
    CAP_SYS_RESOURCE CAP_SYS_TIME CAP_SYS_TTY_CONFIG CAP_MKNOD CAP_LEASE CAP_AUDIT_WRITE
    CAP_AUDIT_CONTROL CAP_SETFCAP CAP_MAC_OVERRIDE CAP_MAC_ADMIN CAP_SYSLOG CAP_WAKE_ALARM
    CAP_BLOCK_SUSPEND CAP_AUDIT_READ CAP_PERFMON CAP_BPF CAP_CHECKPOINT_RESTORE
"""
CAPABILITIES = {name: number for number, name in enumerate(_CAPABILITY_NAMES.split())}

# Names systemd-detect-virt gives virtual machines: a container never is one of them.
VM_NAMES = frozenset(
    {
        "vm", "qemu", "kvm", "amazon", "zvm", "vmware", "microsoft", "oracle", "powervm",
        "xen", "bochs", "uml", "parallels", "bhyve", "qnx", "acrn", "apple", "sre", "google",
    }
)  # fmt: skip


def container_kind(environ: Mapping[str, str], root: str = "/") -> str:
    """What systemd-detect-virt would name this container (`docker`, `podman`, `lxc`...;
    `container-other` when nothing says)."""
    named = environ.get("container", "").strip()
    if named:
        return named
    if os.path.exists(os.path.join(root, "run/.containerenv")):
        return "podman"
    if os.path.exists(os.path.join(root, ".dockerenv")):
        return "docker"
    return "container-other"


def virtualization_holds(value: str, environ: Mapping[str, str]) -> bool:
    """ConditionVirtualization=VALUE inside a container (see the module's docstring)."""
    lowered = value.lower()
    if lowered in ("yes", "true", "on", "1", "y", "t"):
        return True
    if lowered in ("no", "false", "off", "0", "n", "f"):
        return False
    if lowered == "container":
        return True
    if lowered == "private-users":
        return _private_users()
    if lowered in VM_NAMES:
        return False
    return lowered == container_kind(environ).lower()


def _private_users() -> bool:
    """Whether cinit's user namespace maps less than the whole uid range (as systemd tests)."""
    try:
        with open("/proc/self/uid_map") as f:
            text = f.read()
    except OSError:
        return False
    return text.split() != ["0", "0", "4294967295"]


def capability_holds(name: str) -> bool:
    """Whether capability `name` (`CAP_NET_ADMIN`) is in cinit's bounding set."""
    number = CAPABILITIES.get(name.upper())
    if number is None:
        return False  # systemd: an unknown capability is not held
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    return bool(int(line.split()[1], 16) >> number & 1)
    except (OSError, ValueError, IndexError):
        pass
    return False


def security_holds(name: str) -> bool:
    """ConditionSecurity=NAME inside a container (see the module's docstring)."""
    lowered = name.lower()
    if lowered == "selinux":
        return os.path.exists("/sys/fs/selinux/enforce")
    if lowered == "apparmor":
        try:
            with open("/sys/module/apparmor/parameters/enabled") as f:
                return f.read().strip().upper().startswith("Y")
        except OSError:
            return False
    if lowered == "smack":
        return os.path.isdir("/sys/fs/smackfs")
    if lowered == "ima":
        return os.path.isdir("/sys/kernel/security/ima")
    if lowered == "tomoyo":
        return os.path.isdir("/sys/kernel/security/tomoyo")
    return False  # audit, uefi-secureboot, tpm2, cvm, measured-uki: not in a container


def kernel_command_line_holds(value: str, cmdline: str | None = None) -> bool:
    """A word of the kernel command line is `value`, or (for a bare name) `value=...`."""
    if cmdline is None:
        try:
            with open("/proc/cmdline") as f:
                cmdline = f.read()
        except OSError:
            return False
    for word in cmdline.split():
        if word == value or ("=" not in value and word.startswith(value + "=")):
            return True
    return False


def _machine_id(root: str = "/") -> str:
    try:
        with open(os.path.join(root, "etc/machine-id")) as f:
            return f.read().strip()
    except OSError:
        return ""


def first_boot_holds(value: bool, root: str = "/") -> bool:
    """ConditionFirstBoot=VALUE: first boot means no initialized /etc/machine-id."""
    machine_id = _machine_id(root)
    first = machine_id in ("", "uninitialized")
    return first == value


def needs_update_holds(directory: str) -> bool:
    """ConditionNeedsUpdate=DIR: /usr changed after DIR was last updated (systemd's rule)."""
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return False  # nothing could be updated there anyway
    except OSError:
        return False
    try:
        usr = os.stat("/usr").st_mtime_ns
    except OSError:
        return False
    try:
        updated = os.stat(os.path.join(directory, ".updated")).st_mtime_ns
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return usr > updated


def host_holds(value: str) -> bool:
    """ConditionHost=: the hostname matches the pattern, or the machine id is `value`."""
    import fnmatch

    compact = value.replace("-", "").lower()
    hexadecimal = len(compact) == 32 and all(c in "0123456789abcdef" for c in compact)
    if hexadecimal and compact == _machine_id().lower():
        return True
    return fnmatch.fnmatchcase(os.uname().nodename.lower(), value.lower())


def architecture_holds(value: str) -> bool:
    if value == "native":
        return True
    return architecture(os.uname().machine) == value


def on_ac_power(root: str = "/") -> bool:
    """systemd's test: on AC power when a mains supply is online, or when the machine has
    no mains supply at all (nothing says it runs on battery)."""
    base = os.path.join(root, "sys/class/power_supply")
    try:
        supplies = os.listdir(base)
    except OSError:
        return True
    mains = []
    for supply in supplies:
        try:
            with open(os.path.join(base, supply, "type")) as f:
                if f.read().strip() != "Mains":
                    continue
            with open(os.path.join(base, supply, "online")) as f:
                mains.append(f.read().strip() == "1")
        except OSError:
            continue
    return any(mains) or not mains


def credential_given(name: str, environ: Mapping[str, str]) -> bool:
    """ConditionCredential=: a credential `name` was passed to cinit, in
    $CREDENTIALS_DIRECTORY or systemd's system credential directory."""
    if not name or "/" in name:
        return False
    directories = [environ.get("CREDENTIALS_DIRECTORY", ""), "/run/credentials/@system"]
    return any(d and os.path.exists(os.path.join(d, name)) for d in directories)


def group_holds(group: str, userdb_root: str = "/") -> bool:
    """ConditionGroup=: cinit's real or effective gid, or a supplementary group, matches."""
    gids = {os.getgid(), os.getegid(), *os.getgroups()}
    if group.isdigit():
        return int(group) in gids
    if group == "root" and 0 in gids:
        return True
    try:
        with open(os.path.join(userdb_root, "etc/group")) as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 3 and fields[0] == group and fields[2].isdigit():
                    return int(fields[2]) in gids
    except OSError:
        pass
    return False


def is_mount_point(path: str) -> bool:
    """Whether `path` is a mount point: listed in /proc/self/mountinfo, or os.path.ismount."""
    target = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 4 and _unescape(fields[4]) == target:
                    return True
    except OSError:
        pass
    return os.path.ismount(target)


def _unescape(text: str) -> str:
    """mountinfo's octal escapes (`\\040` for a space)."""
    if "\\" not in text:
        return text
    import re

    raw = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), text.encode())
    return raw.decode("utf-8", "surrogateescape")


def path_is_read_write(path: str) -> bool:
    try:
        return not os.statvfs(path).f_flag & os.ST_RDONLY
    except OSError:
        return False


def directory_not_empty(path: str) -> bool:
    """An existing directory with an entry that is not hidden (systemd ignores those)."""
    try:
        with os.scandir(path) as entries:
            return any(not entry.name.startswith(".") for entry in entries)
    except OSError:
        return False


def file_not_empty(path: str) -> bool:
    import stat

    try:
        info = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_size > 0


def file_is_executable(path: str) -> bool:
    import stat

    try:
        info = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and bool(info.st_mode & 0o111)


def holds(kind: str, value: str, environ: Mapping[str, str], userdb_root: str = "/") -> bool:
    """Whether the check `kind` (a ConditionKind value) with `value` is true, before `!`."""
    checks = {
        "ConditionPathIsMountPoint": is_mount_point,
        "ConditionPathIsReadWrite": path_is_read_write,
        "ConditionDirectoryNotEmpty": directory_not_empty,
        "ConditionFileNotEmpty": file_not_empty,
        "ConditionFileIsExecutable": file_is_executable,
        "ConditionCapability": capability_holds,
        "ConditionKernelCommandLine": kernel_command_line_holds,
        "ConditionSecurity": security_holds,
        "ConditionHost": host_holds,
        "ConditionNeedsUpdate": needs_update_holds,
        "ConditionArchitecture": architecture_holds,
    }
    check = checks.get(kind)
    if check is not None:
        return check(value)
    if kind == "ConditionVirtualization":
        return virtualization_holds(value, environ)
    if kind == "ConditionFirstBoot":
        return first_boot_holds(value.lower() in ("1", "yes", "y", "true", "t", "on"))
    if kind == "ConditionGroup":
        return group_holds(value, userdb_root)
    if kind == "ConditionACPower":
        return on_ac_power() == (value.lower() in ("1", "yes", "y", "true", "t", "on"))
    if kind == "ConditionCredential":
        return credential_given(value, environ)
    raise ValueError(f"unknown condition {kind}")
