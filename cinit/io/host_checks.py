"""What `cinit validate` checks against the file system it runs on, beyond unit syntax.

A unit set can be well-formed and still fail at boot: an Exec*= program that is not there
or not executable, a User=/Group=/SocketUser=/SocketGroup= that /etc/passwd or /etc/group
does not know. These checks warn (like `systemd-analyze verify`'s "Command ... is not
executable"), so `--strict-units` fails on them. They look at the machine where validate
runs: in an image build (`RUN cinit validate`) that is the image.

Rules, as at start time:
- a program is looked for as the spawn does (`cinit.io.spawn.exec_candidates`): a path
  with a slash as it is, a plain name in the unit's PATH (its Environment=PATH=, else
  cinit's, else systemd's default); it must be a regular file that may be executed.
- a command with the `-` prefix is not checked: systemd's verify skips it too, and a
  missing program there is a failure the unit ignores.
- a program path holding `$` is expanded at start: not checked. Nor is a plain name in a
  unit with EnvironmentFile= (its PATH may come from that file, read at start).
- users and groups follow `cinit.io.userdb.resolve_credentials`: a name, or a number
  (a numeric User= without a passwd entry only together with Group=). A user that an
  earlier unit creates is still warned about: validate cannot know what a unit will do.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING

from cinit.io.spawn import DEFAULT_PATH, exec_candidates
from cinit.io.userdb import UserDbError, lookup_group, lookup_user
from cinit.units.diagnostics import Diagnostic, Severity
from cinit.units.model import ExecCommand, Unit

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cinit.units.loader import UnitSet

_EXEC_DIRECTIVES = (
    ("ExecStartPre", "exec_start_pre"),
    ("ExecStart", "exec_start"),
    ("ExecStartPost", "exec_start_post"),
    ("ExecStop", "exec_stop"),
    ("ExecStopPost", "exec_stop_post"),
)


class HostChecker:
    """Checks units against this machine; each program, user and group is looked at once."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self._programs: dict[tuple[str, str], str | None] = {}
        self._users: dict[tuple[str, bool], str | None] = {}
        self._groups: dict[str, str | None] = {}

    def check(self, unit: Unit) -> list[Diagnostic]:
        """Warnings about `unit`'s programs and accounts (empty when all are there)."""
        found: list[Diagnostic] = []
        if unit.service is not None:
            service = unit.service
            # The PATH a plain program name is looked up in at start (as the spawn does).
            path_var = dict(service.environment).get("PATH") or self._environ.get("PATH", "")
            env_files = bool(service.environment_files)
            for directive, field in _EXEC_DIRECTIVES:
                commands: tuple[ExecCommand, ...] = getattr(service, field)
                for command in commands:
                    problem = self._program_problem(command, path_var, env_files)
                    if problem is not None:
                        message = f"{directive}: command {problem}"
                        found.append(_warning(unit, "Service", directive, message))
            accounts = ("User", service.user), ("Group", service.group)
            found += self._account_problems(unit, "Service", *accounts)
        if unit.socket is not None:
            sock = unit.socket
            accounts = ("SocketUser", sock.socket_user), ("SocketGroup", sock.socket_group)
            found += self._account_problems(unit, "Socket", *accounts)
        found.sort(key=lambda diagnostic: diagnostic.line or 0)  # in file order
        return found

    def _program_problem(
        self, command: ExecCommand, path_var: str, has_env_files: bool
    ) -> str | None:
        program = command.path
        if command.ignore_failure or ("$" in program and not command.no_env_expansion):
            return None
        if "/" not in program and has_env_files:
            return None
        key = (program, path_var)
        if key not in self._programs:
            self._programs[key] = _not_executable(program, path_var)
        reason = self._programs[key]
        return None if reason is None else f"{program} is not executable: {reason}"

    def _account_problems(
        self, unit: Unit, section: str, user_entry: tuple[str, str], group_entry: tuple[str, str]
    ) -> list[Diagnostic]:
        """Warnings for a (directive, user) and a (directive, group) that are not known here."""
        (user_key, user), (group_key, group) = user_entry, group_entry
        found: list[Diagnostic] = []
        # An earlier unit may create the account: said, since validate cannot know.
        outcome = "starting the unit" if section == "Service" else "setting up the socket"
        later = f"{outcome} fails unless something creates it first"
        if user:
            key = (user, bool(group))
            if key not in self._users:
                self._users[key] = _unknown_user(user, bool(group))
            reason = self._users[key]
            if reason is not None:
                message = f"{user_key}={user}: {reason}; {later}"
                found.append(_warning(unit, section, user_key, message))
        if group:
            if group not in self._groups:
                self._groups[group] = _unknown_group(group)
            reason = self._groups[group]
            if reason is not None:
                message = f"{group_key}={group}: {reason}; {later}"
                found.append(_warning(unit, section, group_key, message))
        return found


def check_against_host(
    unit_set: UnitSet, environ: Mapping[str, str] | None = None
) -> list[Diagnostic]:
    """Warnings for every unit of `unit_set` whose programs or accounts are missing here."""
    checker = HostChecker(environ)
    found: list[Diagnostic] = []
    for unit in unit_set.units.values():
        found += checker.check(unit)
    return found


def _warning(unit: Unit, section: str, directive: str, message: str) -> Diagnostic:
    return Diagnostic(
        Severity.WARNING,
        f"[{section}] {message}",
        unit.path_of(directive),
        unit.line_of(directive),
        section,
        directive,
    )


def _not_executable(program: str, path_var: str) -> str | None:
    """Why `program` cannot be executed here, or None when it can."""
    candidates = exec_candidates(program, {"PATH": path_var} if path_var else {})
    reasons = [_executable_error(candidate) for candidate in candidates]
    if None in reasons:
        return None
    if "/" in program:  # one place to look
        return os.strerror(reasons[0] or errno.ENOENT)
    # A plain name: the first entry that is there but cannot run says most (as execvp).
    found = next((err for err in reasons if err != errno.ENOENT), None)
    search = path_var or DEFAULT_PATH
    if found is None:
        return f"not found in {search}"
    return f"{os.strerror(found)} (searched {search})"


def _executable_error(path: str) -> int | None:
    """The errno exec would meet for `path` (ENOENT, EACCES, EISDIR), or None when it runs."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return errno.ENOENT if exc.errno == errno.ENOTDIR else exc.errno or errno.ENOENT
    if stat.S_ISDIR(mode):
        return errno.EISDIR
    if not stat.S_ISREG(mode) or not os.access(path, os.X_OK):
        return errno.EACCES
    return None


def _unknown_user(user: str, with_group: bool) -> str | None:
    try:
        lookup_user(user)
    except UserDbError as exc:
        if user.isdigit() and with_group:
            return None  # a bare uid is used as given when Group= is set
        return str(exc)
    return None


def _unknown_group(group: str) -> str | None:
    try:
        lookup_group(group)
    except UserDbError as exc:
        return str(exc)
    return None
