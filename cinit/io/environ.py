"""A unit's environment and its Condition*= checks, both evaluated when the unit starts.

Environment, in systemd's order, later assignments winning:

1. cinit's own environment (`base`), minus what describes cinit itself rather than the
   container: LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES and NOTIFY_SOCKET/WATCHDOG_PID/
   WATCHDOG_USEC (set for cinit by whoever started it; passed on they would make a
   service take cinit's sockets or notify cinit's own manager) and `CINIT_*` (cinit's
   settings: runtime dir, verbosity, log prefix...). `CONTAINER_INIT_*` is kept: those
   variables are the Go ancestor's public settings (trace file, labels), images set
   them with ENV and their own scripts may read them.
2. Environment= assignments, in order.
3. EnvironmentFile= files, in order, read now (a file written by an earlier unit is
   seen); a path with glob characters names every match, sorted. A `-` file may be
   missing or unreadable (a warning then, unless it is simply absent); any other file
   that cannot be read raises `EnvironmentFileError`.
4. `extra`: what cinit sets for this start (NOTIFY_SOCKET, MAINPID, ...). Unlike systemd,
   these win over Environment=, so a unit cannot break its own readiness protocol.

Conditions follow systemd: ConditionPathExists (the path exists, symlinks followed),
ConditionPathExistsGlob (some path matches), ConditionEnvironment (NAME is set, or
NAME=VALUE is set exactly, in cinit's environment), ConditionUser (a uid, a user name
resolved from /etc/passwd at check time, or `@system` for uids below 1000: systemd's
default SYSTEM_UID_MAX is 999), compared with cinit's real and effective uid; `!` negates.
"""

from __future__ import annotations

import errno
import os
from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView

from cinit.boot_path import TYPE_CHECKING
from cinit.units.diagnostics import ValueFormError
from cinit.units.environment import read_env_file

if TYPE_CHECKING:
    from cinit.units.model import Condition, EnvironmentFileRef, Unit

# Variables of cinit's own environment that services must not inherit.
DROPPED_VARIABLES = frozenset(
    {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC"}
)
DROPPED_PREFIX = "CINIT_"
SYSTEM_UID_MAX = 999  # systemd's default: uids 0..999 are system users
_GLOB_CHARS = frozenset("*?[")


class EnvironmentFileError(Exception):
    """An EnvironmentFile= that cannot be read; `str()` is the line to log, e.g.
    `web.service: EnvironmentFile=/etc/web.env: No such file or directory`."""

    def __init__(self, unit: str, path: str, errno: int | None, reason: str) -> None:
        super().__init__(f"{unit}: EnvironmentFile={path}: {reason}")
        self.unit = unit
        self.path = path
        self.errno = errno  # None for a file that was read but is malformed


class ManagerEnvironment(Mapping[str, str]):
    """cinit's environment as units start with it: `systemctl set-environment` and
    `unset-environment` change it for the units started afterwards (systemd's manager
    environment). The pump thread changes it while unit threads read it: a change builds a
    new dict and swaps it in whole, so a reader iterating the old one is never disturbed."""

    __slots__ = ("_now",)

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._now: dict[str, str] = dict(environ)

    def __getitem__(self, name: str) -> str:
        return self._now[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._now)

    def __len__(self) -> int:
        return len(self._now)

    # Views of one dict: a swap between reading a name and its value cannot split them.
    def items(self) -> ItemsView[str, str]:
        return self._now.items()

    def keys(self) -> KeysView[str]:
        return self._now.keys()

    def values(self) -> ValuesView[str]:
        return self._now.values()

    def change(self, assign: Mapping[str, str], remove: Iterable[str] = ()) -> None:
        """Set the variables of `assign` and drop the names in `remove` (later starts)."""
        now = dict(self._now)
        now.update(assign)
        for name in remove:
            now.pop(name, None)
        self._now = now  # one reference swap: atomic for the readers (see the class doc)

    def shown(self) -> dict[str, str]:
        """What units get from it (cinit's own settings left out), for show-environment."""
        return base_environment(self._now)


def base_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` without the variables that describe cinit itself (see the module doc)."""
    return {
        name: value
        for name, value in environ.items()
        if name not in DROPPED_VARIABLES and not name.startswith(DROPPED_PREFIX)
    }


def unit_environment(
    unit: Unit, base: Mapping[str, str], extra: Mapping[str, str] | None = None
) -> tuple[dict[str, str], list[str]]:
    """The environment for a process of `unit`, and the warnings to log (complete lines
    naming the unit and the file). Raises EnvironmentFileError (see the module doc)."""
    env = base_environment(base)
    warnings: list[str] = []
    service = unit.service
    if service is not None:
        env.update(service.environment)
        for ref in service.environment_files:
            for name, value in _read_environment_file(unit.name, ref, warnings):
                env[name] = value
    if extra:
        env.update(extra)
    return env, warnings


def _read_environment_file(
    unit: str, ref: EnvironmentFileRef, warnings: list[str]
) -> list[tuple[str, str]]:
    paths = [ref.path]
    if _GLOB_CHARS.intersection(ref.path):
        import glob

        paths = sorted(glob.glob(ref.path))
        if not paths:
            if ref.optional:
                return []
            reason = f"{os.strerror(errno.ENOENT)} (no file matches)"
            raise EnvironmentFileError(unit, ref.path, errno.ENOENT, reason)
    pairs: list[tuple[str, str]] = []
    for path in paths:
        where = f"{unit}: EnvironmentFile={'-' if ref.optional else ''}{path}"
        notes: list[str] = []
        try:
            pairs.extend(read_env_file(path, warnings=notes))
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if not ref.optional:
                raise EnvironmentFileError(unit, path, exc.errno, reason) from None
            if not isinstance(exc, FileNotFoundError):
                warnings.append(f"{where}: {reason}; ignored")
            continue
        except ValueFormError as exc:
            if not ref.optional:
                raise EnvironmentFileError(unit, path, None, str(exc)) from None
            warnings.append(f"{where}: {exc}; ignored")
            continue
        warnings.extend(f"{where}: {note}" for note in notes)
    return pairs


def unmet_condition(unit: Unit, environ: Mapping[str, str], userdb_root: str = "/") -> str | None:
    """The first condition of `unit` that does not hold, as written (for example
    `ConditionUser=!root`), or None when all hold. `userdb_root` is where /etc/passwd is.
    Triggering conditions (`|`): when there are any, at least one of them must hold; they
    are named together when none does."""
    return first_unmet(unit.unit.conditions, "Condition", environ, userdb_root)


def failed_assertion(unit: Unit, environ: Mapping[str, str], userdb_root: str = "/") -> str | None:
    """`unmet_condition` for the unit's Assert*= checks (written `AssertPathExists=...`)."""
    return first_unmet(unit.unit.asserts, "Assert", environ, userdb_root)


def first_unmet(
    checks: Iterable[Condition], prefix: str, environ: Mapping[str, str], userdb_root: str
) -> str | None:
    """The first plain check that fails, else the triggering ones if none of them holds."""
    triggers: list[Condition] = []
    for condition in checks:
        if condition.trigger:
            triggers.append(condition)
        elif _holds(condition, environ, userdb_root) == condition.negate:
            return condition.describe(prefix)
    if triggers and not any(_holds(c, environ, userdb_root) != c.negate for c in triggers):
        return ", ".join(c.describe(prefix) for c in triggers)
    return None


def _holds(condition: Condition, environ: Mapping[str, str], userdb_root: str) -> bool:
    """Whether the condition's test is true, before negation."""
    kind = condition.kind.value
    value = condition.value
    if kind == "ConditionPathExists":
        return os.path.exists(value)
    if kind == "ConditionPathExistsGlob":
        import glob

        return next(glob.iglob(value), None) is not None
    if kind == "ConditionEnvironment":
        name, equals, expected = value.partition("=")
        return name in environ and (not equals or environ[name] == expected)
    if kind == "ConditionUser":
        return _user_matches(value, userdb_root)
    if kind == "ConditionPathIsDirectory":
        return os.path.isdir(value)
    if kind == "ConditionPathIsSymbolicLink":
        return os.path.islink(value)
    from cinit.io import conditions  # the rarer checks: off the common boot path

    return conditions.holds(kind, value, environ, userdb_root)


def _user_matches(user: str, userdb_root: str) -> bool:
    """systemd's ConditionUser: a uid, `@system`, or a name; true if cinit's real or
    effective uid matches. An unknown name is simply not matched."""
    uids = {os.getuid(), os.geteuid()}
    if user.isdigit():
        return int(user) in uids
    if user == "@system":
        return any(uid <= SYSTEM_UID_MAX for uid in uids)
    if user == "root" and 0 in uids:
        return True  # uid 0 is root even in an image without /etc/passwd
    from cinit.io.userdb import read_passwd

    try:
        records = read_passwd(userdb_root)
    except OSError:  # an unreadable /etc/passwd: no name can match
        return False
    return any(record.name == user and record.uid in uids for record in records)
