"""The host's side of the unit specifiers (`%H %m %b %v %a %u %h ...`), read from the OS.

`read_host_facts()` is handed to the unit loader, which calls it once, and only when a
unit holds a specifier that needs the host: most boots never read these files.
"""

from __future__ import annotations

import os

from cinit.units.specifiers import HostFacts

# systemd's architecture names for `uname -m` (the common ones; others are passed as is).
_ARCHITECTURES = {
    "x86_64": "x86-64",
    "i386": "x86",
    "i486": "x86",
    "i586": "x86",
    "i686": "x86",
    "aarch64": "arm64",
    "aarch64_be": "arm64-be",
    "armv7l": "arm",
    "armv6l": "arm",
    "ppc64le": "ppc64-le",
    "ppc64": "ppc64",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "loongarch64": "loongarch64",
    "mips64": "mips64",
}


def architecture(machine: str) -> str:
    """systemd's name for the `uname -m` architecture `machine` (%a, ConditionArchitecture=)."""
    return _ARCHITECTURES.get(machine, machine.replace("_", "-"))


def _first_line(path: str) -> str:
    """The first line of a small file, stripped; "" when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read(4096).decode("utf-8", "replace").partition("\n")[0].strip()
    except OSError:
        return ""


def _os_release(root: str) -> dict[str, str]:
    """/etc/os-release (else /usr/lib/os-release) as KEY -> unquoted value."""
    for path in ("etc/os-release", "usr/lib/os-release"):
        try:
            with open(os.path.join(root, path), encoding="utf-8", errors="replace") as handle:
                text = handle.read(64 * 1024)
        except OSError:
            continue
        found: dict[str, str] = {}
        for line in text.splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and not key.startswith("#"):
                found[key] = value.strip().strip("\"'")
        return found
    return {}


def _hex_id(text: str) -> str:
    """A 128-bit id as systemd prints it (32 lowercase hex digits), or "" if `text` is not one."""
    digits = text.replace("-", "").lower()
    if len(digits) == 32 and all(c in "0123456789abcdef" for c in digits):
        return digits
    return ""


def _user(uid: int, root: str) -> tuple[str, str, str]:
    """(name, home, shell) of `uid`: root's as systemd's system manager has them (no file
    read, so nothing more on the boot path), else from /etc/passwd."""
    if uid == 0:
        return "root", "/root", "/bin/sh"
    from cinit.io.userdb import read_passwd

    try:
        for record in read_passwd(root):
            if record.uid == uid:
                return record.name, record.home, record.shell or "/bin/sh"
    except OSError:
        pass
    return str(uid), "/", "/bin/sh"


def _group(gid: int, root: str) -> str:
    if gid == 0:
        return "root"
    from cinit.io.userdb import read_group

    try:
        for record in read_group(root):
            if record.gid == gid:
                return record.name
    except OSError:
        pass
    return str(gid)


def read_host_facts(root: str = "/") -> HostFacts:
    """The host facts as this process sees them (the user is the one cinit runs as:
    root in a container, as systemd's system manager)."""
    uname = os.uname()
    uid, gid = os.geteuid(), os.getegid()
    user, home, shell = _user(uid, root)
    release = _os_release(root)
    return HostFacts(
        hostname=uname.nodename,
        machine_id=_hex_id(_first_line(os.path.join(root, "etc/machine-id"))),
        boot_id=_hex_id(_first_line("/proc/sys/kernel/random/boot_id")),
        kernel_release=uname.release,
        architecture=architecture(uname.machine),
        user_name=user,
        uid=uid,
        group_name=_group(gid, root),
        gid=gid,
        home=home,
        shell=shell,
        os_id=release.get("ID", ""),
        os_version_id=release.get("VERSION_ID", ""),
        os_build_id=release.get("BUILD_ID", ""),
        os_variant_id=release.get("VARIANT_ID", ""),
    )
