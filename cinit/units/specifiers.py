"""Specifiers (`%i`, `%n`, `%t`, ...) as systemd.unit(5) defines them for system units.

The unit's own (`%n %N %p %P %i %I %j %J %f %y %Y`) come from its name and file. The
directories are those of systemd's system manager (`%t` /run, `%S` /var/lib, `%C`
/var/cache, `%L` /var/log, `%E` /etc, `%T` /tmp, `%V` /var/tmp). The host's (`%H %l %m %b
%v %a %o %w %B %W` and the user `%u %U %g %G %h %s`, cinit's own as systemd's are root's)
are `HostFacts`, read by `cinit.io.host_facts` and passed in: this module reads nothing.
They are asked for (`facts()`) only when a value holds one of them.

A specifier that cannot be expanded (unknown letter, `%m` without a machine id, `%I` whose
instance is not validly escaped) is left as written, with a warning naming it.
"""

from __future__ import annotations

from collections.abc import Callable

from cinit.units import unit_names
from cinit.units._text import quoted
from cinit.units.diagnostics import ValueFormError
from cinit.units.frozen import Frozen


class HostFacts(Frozen):
    """What the host-dependent specifiers expand to ("" when unknown)."""

    hostname: str = ""
    machine_id: str = ""  # 32 hex digits (/etc/machine-id)
    boot_id: str = ""  # 32 hex digits, no dashes (as systemd prints an id128)
    kernel_release: str = ""
    architecture: str = ""  # systemd's names: x86-64, arm64, ...
    user_name: str = "root"
    uid: int = 0
    group_name: str = "root"
    gid: int = 0
    home: str = "/root"
    shell: str = "/bin/sh"
    os_id: str = ""  # /etc/os-release: ID=, VERSION_ID=, BUILD_ID=, VARIANT_ID=
    os_version_id: str = ""
    os_build_id: str = ""
    os_variant_id: str = ""


# The system manager's directories (systemd.unit(5), "Specifiers", for system units).
DIRECTORIES = {
    "t": "/run",
    "S": "/var/lib",
    "C": "/var/cache",
    "L": "/var/log",
    "E": "/etc",
    "T": "/tmp",
    "V": "/var/tmp",
}

# Specifier letter -> HostFacts field.
_HOST: dict[str, str] = {
    "H": "hostname",
    "m": "machine_id",
    "b": "boot_id",
    "v": "kernel_release",
    "a": "architecture",
    "u": "user_name",
    "g": "group_name",
    "h": "home",
    "s": "shell",
    "o": "os_id",
    "w": "os_version_id",
    "B": "os_build_id",
    "W": "os_variant_id",
}
# Where a missing host fact comes from, for the warning.
_SOURCES = {
    "m": "/etc/machine-id",
    "b": "/proc/sys/kernel/random/boot_id",
    "o": "/etc/os-release",
    "w": "/etc/os-release",
    "B": "/etc/os-release",
    "W": "/etc/os-release",
}
LETTERS = frozenset("inNpPIjJfyY%lUG") | frozenset(DIRECTORIES) | frozenset(_HOST)


class _Unit:
    """The specifiers of one unit's name and file, computed as they are asked for."""

    __slots__ = ("facts", "name", "path")

    def __init__(self, name: str, path: str, facts: Callable[[], HostFacts]) -> None:
        self.name = name
        self.path = path
        self.facts = facts

    def value(self, letter: str) -> str:
        """The expansion of `%letter`; `ValueFormError` says why there is none."""
        found = DIRECTORIES.get(letter)
        if found is not None:
            return found
        if letter == "%":
            return "%"
        field = _HOST.get(letter)
        if field is not None:
            text = str(getattr(self.facts(), field))
            if not text and letter not in ("o", "w", "B", "W"):  # os-release's may be empty
                source = _SOURCES.get(letter, "the host")
                raise ValueFormError(f"no value for {quoted('%' + letter)} ({source})")
            return text
        if letter in "UGl":
            facts = self.facts()
            if letter == "U":
                return str(facts.uid)
            if letter == "G":
                return str(facts.gid)
            return facts.hostname.partition(".")[0]
        return self._own(letter)

    def _own(self, letter: str) -> str:
        prefix, instance, suffix = unit_names.split_name(self.name)
        if letter == "n":
            return self.name
        if letter == "N":
            return self.name[: len(self.name) - len(suffix)] if suffix else self.name
        if letter == "p":
            return prefix
        if letter == "P":
            return unit_names.unescape(prefix)
        if letter == "i":
            return instance or ""
        if letter == "I":
            return unit_names.unescape(instance or "")
        if letter in "jJ":
            last = prefix.rpartition("-")[2]
            return last if letter == "j" else unit_names.unescape(last)
        if letter == "f":
            return unit_names.unescape_path(instance if instance else prefix)
        if letter == "y":
            return self.path
        if letter == "Y":
            return self.path.rpartition("/")[0] or "/"
        raise ValueFormError(f"unknown specifier {quoted('%' + letter)}")


def substitute(text: str, resolve: Callable[[str], str]) -> str:
    """`text` with each `%X` replaced by `resolve(X)` (`X` is "" for a lone `%` at the
    end): the one scanner of specifiers, for unit files (`expand`) and tmpfiles.d lines."""
    if "%" not in text:
        return text
    out: list[str] = []
    pos = 0
    while (percent := text.find("%", pos)) >= 0:
        out.append(text[pos:percent])
        out.append(resolve(text[percent + 1 : percent + 2]))
        pos = percent + 2
    out.append(text[pos:])
    return "".join(out)


def expand(
    text: str, unit_name: str, path: str, facts: Callable[[], HostFacts]
) -> tuple[str, list[str]]:
    """`text` with every `%X` expanded for the unit `unit_name` (file `path`).

    Returns the text and one warning per specifier left as written (unknown, or without
    a value here), and for a lone `%` at the end.
    """
    if "%" not in text:
        return text, []
    unit = _Unit(unit_name, path, facts)
    warnings: list[str] = []

    def resolve(letter: str) -> str:
        if not letter:
            warnings.append("lone '%' at the end of the value left as is (write %% for a '%')")
            return "%"
        try:
            if letter not in LETTERS:
                raise ValueFormError(f"unsupported specifier {quoted('%' + letter)}")
            return unit.value(letter)
        except ValueFormError as exc:
            warnings.append(f"{exc} left as is")
            return "%" + letter

    return substitute(text, resolve), warnings
