"""The directive table: every directive cinit reads, where it lives, and how its value parses.

One row per directive (see shared/reference/directives.md). The loader walks a file's
assignments through this table; `render` turns a typed value back into unit-file text
(used by `render_unit` and the round-trip property tests).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import Enum

from cinit.boot_path import TYPE_CHECKING
from cinit.units import addresses, commands, environment, exec_values, values
from cinit.units._text import quoted
from cinit.units.diagnostics import ValueFormError
from cinit.units.frozen import Frozen
from cinit.units.model import (
    LIMIT_NAMES,
    ActivationMode,
    Condition,
    ConditionKind,
    DirectoryKind,
    EnvironmentFileRef,
    ExecCommand,
    ExitStatusSet,
    KillMode,
    ListenAddress,
    ListenKind,
    NotifyAccess,
    Output,
    OutputTarget,
    Preserve,
    RestartPolicy,
    ServiceType,
    UnitKind,
)

if TYPE_CHECKING:
    from typing import Any

# Which typed section a directive's value lands in.
UNIT, SERVICE, SOCKET, INSTALL = "unit", "service", "socket", "install"
TIMER = "timer"

# The sections a unit file of each kind may have, and the target each one fills.
SECTIONS: dict[UnitKind, dict[str, str]] = {
    UnitKind.SERVICE: {"Unit": UNIT, "Service": SERVICE, "Install": INSTALL},
    UnitKind.SOCKET: {"Unit": UNIT, "Socket": SOCKET, "Install": INSTALL},
    UnitKind.TARGET: {"Unit": UNIT, "Install": INSTALL},
    UnitKind.TIMER: {"Unit": UNIT, "Timer": TIMER, "Install": INSTALL},
}


class Directive(Frozen):
    """How one `Name=` in one `[Section]` is read.

    `parse` returns the typed value; for `multi` directives it returns a list of items
    that accumulate across assignments (an empty assignment resets the list).
    `expand` says whether `${VAR}` is expanded against cinit's environment first.
    """

    section: str
    name: str
    target: str
    field: str
    parse: Callable[..., Any]
    render: Callable[[Any], str]
    multi: bool = False
    expand: bool = True
    warns: bool = False  # `parse` takes a second argument: a list it appends warnings to
    merges: bool = False  # one value that several assignments join (`union`), as exit statuses


# --- small parsers and renderers (value forms: values, commands, environment, addresses) ---


def _parse_enum(enum: type[Enum]) -> Callable[[str], Any]:
    choices = [str(member.value) for member in enum]

    def parse(text: str) -> Any:
        for member in enum:
            if member.value == text:
                return member
        raise ValueFormError(f"invalid value {quoted(text)}: expected one of {', '.join(choices)}")

    return parse


def _render_enum(value: Enum) -> str:
    return str(value.value)


# The counters and sizes (StartLimitBurst=, Backlog=, ...) are C ints in systemd.
_UINT_MAX = 2**31 - 1
_UINT_MAX_DIGITS = len(str(_UINT_MAX))


def _parse_uint(text: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise ValueFormError(f"invalid number {quoted(text)}: expected a non-negative integer")
    significant = text.lstrip("0")
    # Counted before int(): Python refuses to convert more than 4,300 digits (ValueError).
    if len(significant) > _UINT_MAX_DIGITS or int(significant or "0") > _UINT_MAX:
        raise ValueFormError(f"invalid number {quoted(text)}: too large (at most {_UINT_MAX})")
    return int(significant or "0")


def _parse_positive(text: str) -> int:
    number = _parse_uint(text)
    if number == 0:
        raise ValueFormError(f"invalid number {quoted(text)}: must be at least 1")
    return number


def _parse_text(text: str) -> str:
    return text


def _parse_name(text: str) -> str:
    """A user or group name (or numeric id): one word, no control characters."""
    if not text or any(c.isspace() or ord(c) < 32 or c in ":/" for c in text):
        raise ValueFormError(f"invalid user or group name {quoted(text)}")
    return text


def _parse_abs_path(text: str) -> str:
    if not text.startswith("/"):
        raise ValueFormError(f"invalid path {quoted(text)}: must be absolute")
    return text


def _parse_working_directory(text: str) -> str:
    # systemd: "~" is the user's home; a leading "-" makes a missing directory non-fatal.
    bare = text[1:] if text.startswith("-") else text
    if bare != "~" and not bare.startswith("/"):
        raise ValueFormError(f"invalid directory {quoted(text)}: must be absolute, or ~")
    return text


def _parse_service_name(text: str) -> str:
    names = values.parse_unit_names(text)
    if len(names) != 1 or not names[0].endswith(".service"):
        raise ValueFormError(
            f"invalid service {quoted(text)}: expected one name ending in .service"
        )
    return names[0]


def _parse_fd_name(text: str) -> str:
    if not text or len(text) > 255 or any(not c.isprintable() or c == ":" for c in text):
        raise ValueFormError(f"invalid file descriptor name {quoted(text)}")
    return text


def _parse_bind_ipv6_only(text: str) -> str:
    if text in ("default", "both", "ipv6-only"):
        return text
    raise ValueFormError(f"invalid value {quoted(text)}: expected default, both or ipv6-only")


def _parse_environment_file(text: str) -> list[EnvironmentFileRef]:
    optional = text.startswith("-")
    path = text[1:] if optional else text
    if not path.startswith("/"):
        raise ValueFormError(f"invalid environment file {quoted(text)}: path must be absolute")
    return [EnvironmentFileRef(path, optional)]


def _render_environment_file(ref: EnvironmentFileRef) -> str:
    return ("-" if ref.optional else "") + ref.path


def _render_signal(number: int) -> str:
    import signal  # here: rendering is for tools; `signal` builds its enums (~1 ms) at import

    rtmin, rtmax = signal.SIGRTMIN, signal.SIGRTMAX
    if rtmin < number <= rtmax:
        return f"SIGRTMIN+{number - rtmin}"
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _render_exit_statuses(statuses: ExitStatusSet) -> str:
    words = [str(code) for code in sorted(statuses.codes)]
    words += [_render_signal(sig) for sig in sorted(statuses.signals)]
    return " ".join(words)


def _render_output(output: Output) -> str:
    if output.target in (OutputTarget.FILE, OutputTarget.APPEND):
        return f"{output.target.value}:{output.path}"
    return str(output.target.value)


def _render_proxy_target(address: ListenAddress) -> str:
    if address.kind is ListenKind.UNIX:
        return "unix:" + address.path
    return address.render()


def _parse_mode(text: str) -> int:
    return values.parse_octal_mode(text)


def _render_mode(mode: int) -> str:
    return f"{mode:04o}"


# Checks whose value is an absolute path (systemd refuses a relative one).
_PATH_CONDITIONS = frozenset(
    {
        ConditionKind.PATH_EXISTS,
        ConditionKind.PATH_EXISTS_GLOB,
        ConditionKind.PATH_IS_DIRECTORY,
        ConditionKind.PATH_IS_SYMBOLIC_LINK,
        ConditionKind.PATH_IS_MOUNT_POINT,
        ConditionKind.PATH_IS_READ_WRITE,
        ConditionKind.DIRECTORY_NOT_EMPTY,
        ConditionKind.FILE_NOT_EMPTY,
        ConditionKind.FILE_IS_EXECUTABLE,
        ConditionKind.NEEDS_UPDATE,
    }
)


def _condition(kind: ConditionKind) -> Callable[[str], list[Condition]]:
    def parse(text: str) -> list[Condition]:
        # systemd's order: "|" (triggering) first, then "!" (negation).
        trigger = text.startswith("|")
        rest = text[1:] if trigger else text
        negate = rest.startswith("!")
        value = rest[1:] if negate else rest
        if not value:
            raise ValueFormError(f"invalid condition {quoted(text)}: empty")
        if kind in _PATH_CONDITIONS:
            _parse_abs_path(value)
        elif kind in (ConditionKind.FIRST_BOOT, ConditionKind.AC_POWER):
            values.parse_bool(value)
        elif kind is ConditionKind.ENVIRONMENT:
            name = value.partition("=")[0]
            if not name or not (name[0].isalpha() or name[0] == "_"):
                raise ValueFormError(
                    f"invalid condition {quoted(text)}: expected NAME or NAME=VALUE"
                )
        elif kind in (ConditionKind.USER, ConditionKind.GROUP):
            _parse_name(value)
        return [Condition(kind, value, negate, trigger)]

    return parse


def _render_condition(condition: Condition) -> str:
    return ("|" if condition.trigger else "") + ("!" if condition.negate else "") + condition.value


def _render_exec(command: ExecCommand) -> str:
    return commands.render_exec_line(command)


def _parse_exec(text: str, warnings: list[str]) -> list[ExecCommand]:
    return [commands.parse_exec_line(text, warnings=warnings)]


# Outputs that name a logging system a container does not have: the container log is it.
_LOG_OUTPUTS = frozenset(
    {"journal", "journal+console", "kmsg", "kmsg+console", "syslog", "syslog+console", "tty"}
)


def _parse_output(text: str, warnings: list[str]) -> Output:
    if text.strip() in _LOG_OUTPUTS:
        warnings.append(f"{text.strip()} is not available in a container; using inherit")
        return Output(OutputTarget.INHERIT)
    return values.parse_output(text)


def _parse_listen(text: str) -> list[ListenAddress]:
    return [addresses.parse_listen_address(text)]


def _render_listen(address: ListenAddress) -> str:
    return address.render()


def _render_environment_pair(pair: tuple[str, str]) -> str:
    return environment.render_environment([pair])


def _render_str(text: str) -> str:
    return text


def _render_int(number: int) -> str:
    return str(number)


_enum_type = _parse_enum(ServiceType)
_enum_restart = _parse_enum(RestartPolicy)
_enum_mode = _parse_enum(ActivationMode)
_bool, _rbool = values.parse_bool, values.render_bool
_time, _rtime = values.parse_timespan, values.render_timespan
_names = values.parse_unit_names


def _d(
    section: str,
    name: str,
    target: str,
    field: str,
    parse: Callable[..., Any],
    render: Callable[[Any], str],
    multi: bool = False,
    expand: bool = True,
) -> Directive:
    warns = parse in (_parse_exec, _parse_output)
    return Directive(section, name, target, field, parse, render, multi, expand, warns)


_UNIT_ROWS = [
    _d("Unit", "Description", UNIT, "description", _parse_text, _render_str, expand=False),
    _d("Unit", "After", UNIT, "after", _names, _render_str, multi=True),
    _d("Unit", "Before", UNIT, "before", _names, _render_str, multi=True),
    _d("Unit", "Requires", UNIT, "requires", _names, _render_str, multi=True),
    _d("Unit", "Wants", UNIT, "wants", _names, _render_str, multi=True),
    _d("Unit", "OnFailure", UNIT, "on_failure", _names, _render_str, multi=True),
    _d("Unit", "StartLimitBurst", UNIT, "start_limit_burst", _parse_uint, _render_int),
    _d("Unit", "StartLimitIntervalSec", UNIT, "start_limit_interval_sec", _time, _rtime),
    # Targets (issue 15): whether a target is ordered after what it pulls in.
    _d("Unit", "DefaultDependencies", UNIT, "default_dependencies", _bool, _rbool),
]
_CONDITION_ROWS = [
    _d(
        "Unit",
        kind.value,
        UNIT,
        "conditions",
        _condition(kind),
        _render_condition,
        multi=True,
        expand=kind is not ConditionKind.ENVIRONMENT,
    )
    for kind in ConditionKind
]
# Assert*=: the same checks; one that does not hold fails the unit instead of skipping it.
_ASSERT_ROWS = [
    _d(
        "Unit",
        kind.assert_name,
        UNIT,
        "asserts",
        _condition(kind),
        _render_condition,
        multi=True,
        expand=kind is not ConditionKind.ENVIRONMENT,
    )
    for kind in ConditionKind
]
# issue 15 (lifecycle): the dependencies beyond Requires=/Wants=.
_LIFECYCLE_UNIT_ROWS = [
    _d("Unit", "BindsTo", UNIT, "binds_to", _names, _render_str, multi=True),
    _d("Unit", "PartOf", UNIT, "part_of", _names, _render_str, multi=True),
    _d("Unit", "Conflicts", UNIT, "conflicts", _names, _render_str, multi=True),
    _d("Unit", "Requisite", UNIT, "requisite", _names, _render_str, multi=True),
    _d(
        "Unit",
        "ReloadPropagatedFrom",
        UNIT,
        "reload_propagated_from",
        _names,
        _render_str,
        multi=True,
    ),
    _d("Unit", "PropagatesReloadTo", UNIT, "propagates_reload_to", _names, _render_str, True),
]
_SERVICE_ROWS = [
    _d("Service", "Type", SERVICE, "type", _enum_type, _render_enum),
    _d("Service", "ExecStart", SERVICE, "exec_start", _parse_exec, _render_exec, True, False),
    _d(
        "Service", "ExecStartPre", SERVICE, "exec_start_pre", _parse_exec, _render_exec, True, False
    ),
    _d(
        "Service",
        "ExecStartPost",
        SERVICE,
        "exec_start_post",
        _parse_exec,
        _render_exec,
        True,
        False,
    ),
    _d("Service", "ExecStop", SERVICE, "exec_stop", _parse_exec, _render_exec, True, False),
    _d(
        "Service", "ExecStopPost", SERVICE, "exec_stop_post", _parse_exec, _render_exec, True, False
    ),
    _d("Service", "Restart", SERVICE, "restart", _enum_restart, _render_enum),
    _d("Service", "RestartSec", SERVICE, "restart_sec", _time, _rtime),
    _d("Service", "TimeoutStartSec", SERVICE, "timeout_start_sec", _time, _rtime),
    _d("Service", "TimeoutStopSec", SERVICE, "timeout_stop_sec", _time, _rtime),
    _d("Service", "KillSignal", SERVICE, "kill_signal", values.parse_signal, _render_signal),
    _d("Service", "RemainAfterExit", SERVICE, "remain_after_exit", _bool, _rbool),
    _d("Service", "PIDFile", SERVICE, "pid_file", _parse_abs_path, _render_str),
    _d("Service", "WatchdogSec", SERVICE, "watchdog_sec", _time, _rtime),
    _d(
        "Service",
        "SuccessExitStatus",
        SERVICE,
        "success_exit_status",
        values.parse_exit_status_set,
        _render_exit_statuses,
    ).replace(merges=True),
    _d(
        "Service",
        "Environment",
        SERVICE,
        "environment",
        environment.parse_environment,
        _render_environment_pair,
        multi=True,
        expand=False,
    ),
    _d(
        "Service",
        "EnvironmentFile",
        SERVICE,
        "environment_files",
        _parse_environment_file,
        _render_environment_file,
        multi=True,
    ),
    _d("Service", "User", SERVICE, "user", _parse_name, _render_str),
    _d("Service", "Group", SERVICE, "group", _parse_name, _render_str),
    _d(
        "Service",
        "WorkingDirectory",
        SERVICE,
        "working_directory",
        _parse_working_directory,
        _render_str,
    ),
    _d("Service", "StandardOutput", SERVICE, "standard_output", _parse_output, _render_output),
    _d("Service", "StandardError", SERVICE, "standard_error", _parse_output, _render_output),
    _d("Service", "ExitContainerOnFailure", SERVICE, "exit_container_on_failure", _bool, _rbool),
    # ---- issue 15 (lifecycle): stopping, restart exit statuses, reload, notify access ----
    _d("Service", "KillMode", SERVICE, "kill_mode", _parse_enum(KillMode), _render_enum),
    _d("Service", "SendSIGKILL", SERVICE, "send_sigkill", _bool, _rbool),
    _d("Service", "SendSIGHUP", SERVICE, "send_sighup", _bool, _rbool),
    _d(
        "Service",
        "FinalKillSignal",
        SERVICE,
        "final_kill_signal",
        values.parse_signal,
        _render_signal,
    ),
    _d(
        "Service",
        "RestartKillSignal",
        SERVICE,
        "restart_kill_signal",
        values.parse_signal,
        _render_signal,
    ),
    _d("Service", "TimeoutSec", SERVICE, "timeout_sec", _time, _rtime),
    _d("Service", "ExecReload", SERVICE, "exec_reload", _parse_exec, _render_exec, True, False),
    _d("Service", "ReloadSignal", SERVICE, "reload_signal", values.parse_signal, _render_signal),
    _d(
        "Service",
        "RestartPreventExitStatus",
        SERVICE,
        "restart_prevent_exit_status",
        values.parse_exit_status_set,
        _render_exit_statuses,
    ).replace(merges=True),
    _d(
        "Service",
        "RestartForceExitStatus",
        SERVICE,
        "restart_force_exit_status",
        values.parse_exit_status_set,
        _render_exit_statuses,
    ).replace(merges=True),
    _d(
        "Service",
        "NotifyAccess",
        SERVICE,
        "notify_access",
        _parse_enum(NotifyAccess),
        _render_enum,
    ),
    _d("Service", "GuessMainPID", SERVICE, "guess_main_pid", _bool, _rbool),
    # systemd also accepts the start limits in [Service] (older spelling).
    _d("Service", "StartLimitBurst", UNIT, "start_limit_burst", _parse_uint, _render_int),
    _d("Service", "StartLimitIntervalSec", UNIT, "start_limit_interval_sec", _time, _rtime),
]
_SOCKET_ROWS = [
    _d("Socket", "ListenStream", SOCKET, "listen_stream", _parse_listen, _render_listen, True),
    _d("Socket", "ListenDatagram", SOCKET, "listen_datagram", _parse_listen, _render_listen, True),
    _d("Socket", "Accept", SOCKET, "accept", _bool, _rbool),
    _d("Socket", "Service", SOCKET, "service", _parse_service_name, _render_str),
    _d("Socket", "SocketUser", SOCKET, "socket_user", _parse_name, _render_str),
    _d("Socket", "SocketGroup", SOCKET, "socket_group", _parse_name, _render_str),
    _d("Socket", "SocketMode", SOCKET, "socket_mode", _parse_mode, _render_mode),
    _d("Socket", "Backlog", SOCKET, "backlog", _parse_uint, _render_int),
    _d("Socket", "ReusePort", SOCKET, "reuse_port", _bool, _rbool),
    _d("Socket", "BindIPv6Only", SOCKET, "bind_ipv6_only", _parse_bind_ipv6_only, _render_str),
    _d("Socket", "FileDescriptorName", SOCKET, "file_descriptor_name", _parse_fd_name, _render_str),
    _d("Socket", "RemoveOnStop", SOCKET, "remove_on_stop", _bool, _rbool),
    _d("Socket", "TriggerLimitIntervalSec", SOCKET, "trigger_limit_interval_sec", _time, _rtime),
    _d("Socket", "TriggerLimitBurst", SOCKET, "trigger_limit_burst", _parse_uint, _render_int),
    _d("Socket", "MaxConnections", SOCKET, "max_connections", _parse_positive, _render_int),
    _d("Socket", "ActivationMode", SOCKET, "activation_mode", _enum_mode, _render_enum),
    _d(
        "Socket",
        "ProxyTarget",
        SOCKET,
        "proxy_target",
        addresses.parse_proxy_target,
        _render_proxy_target,
    ),
]
# ---- issue 15: the execution environment and socket options (acting directives) ----------


def _directory_rows() -> list[Directive]:
    rows = []
    for kind in DirectoryKind:
        name, field = f"{kind.value}Directory", f"{kind.name.lower()}_directory"
        parse = exec_values.parse_directory_names
        rows.append(_d("Service", name, SERVICE, field, parse, _render_str, multi=True))
        rows.append(
            _d("Service", name + "Mode", SERVICE, field + "_mode", _parse_mode, _render_mode)
        )
    return rows


def _limit_rows() -> list[Directive]:
    rows = []
    for resource in LIMIT_NAMES:
        parse, render = exec_values.limit_parser(resource)
        rows.append(
            _d("Service", f"Limit{resource}", SERVICE, f"limit_{resource.lower()}", parse, render)
        )
    return rows


_enum_preserve = _parse_enum(Preserve)
_EXEC_ROWS = [
    *_directory_rows(),
    _d(
        "Service",
        "RuntimeDirectoryPreserve",
        SERVICE,
        "runtime_directory_preserve",
        _enum_preserve,
        _render_enum,
    ),
    *_limit_rows(),
    _d("Service", "UMask", SERVICE, "umask", _parse_mode, _render_mode),
    _d("Service", "Nice", SERVICE, "nice", exec_values.parse_nice, _render_int),
    _d(
        "Service",
        "OOMScoreAdjust",
        SERVICE,
        "oom_score_adjust",
        exec_values.parse_oom_score_adjust,
        _render_int,
    ),
    _d("Service", "IgnoreSIGPIPE", SERVICE, "ignore_sigpipe", _bool, _rbool),
    _d("Service", "SyslogIdentifier", SERVICE, "syslog_identifier", _parse_text, _render_str),
]
_SOCKET_OPTION_ROWS = [
    _d("Socket", "PassCredentials", SOCKET, "pass_credentials", _bool, _rbool),
    _d("Socket", "PassSecurity", SOCKET, "pass_security", _bool, _rbool),
    _d(
        "Socket",
        "ReceiveBuffer",
        SOCKET,
        "receive_buffer",
        exec_values.parse_buffer_size,
        exec_values.render_size,
    ),
    _d(
        "Socket",
        "SendBuffer",
        SOCKET,
        "send_buffer",
        exec_values.parse_buffer_size,
        exec_values.render_size,
    ),
    _d(
        "Socket",
        "SocketProtocol",
        SOCKET,
        "socket_protocol",
        exec_values.parse_socket_protocol,
        _render_str,
    ),
    _d("Socket", "DirectoryMode", SOCKET, "directory_mode", _parse_mode, _render_mode),
    _d(
        "Socket",
        "Symlinks",
        SOCKET,
        "symlinks",
        exec_values.parse_symlinks,
        _render_str,
        multi=True,
    ),
]
def _parse_calendar(text: str) -> list[str]:
    """One OnCalendar= expression, kept as written once `cinit.units.calendar` accepts it
    (imported on first use: a load without timers does without it)."""
    from cinit.units.calendar import CalendarError, parse_calendar

    try:
        parse_calendar(text)
    except CalendarError as exc:
        said = str(exc)  # may quote the value: a huge one is cut (the line shows it anyway)
        said = said if len(said) <= 160 else said[:160] + "..."
        raise ValueFormError(f"invalid calendar expression: {said}") from exc
    return [text]


def _parse_spans(text: str) -> list[float]:
    """One monotonic On*Sec= span (a list: several assignments add triggers)."""
    return [_time(text)]


def _parse_unit_to_trigger(text: str) -> str:
    """Unit=: the one unit a timer starts (cinit triggers services)."""
    names = _names(text)
    if len(names) != 1:
        raise ValueFormError(f"expected one unit name, got {len(names)}")
    return names[0]


_TIMER_ROWS = [
    _d("Timer", "OnCalendar", TIMER, "on_calendar", _parse_calendar, _render_str, True, False),
    _d("Timer", "OnActiveSec", TIMER, "on_active_sec", _parse_spans, _rtime, True),
    _d("Timer", "OnBootSec", TIMER, "on_boot_sec", _parse_spans, _rtime, True),
    _d("Timer", "OnStartupSec", TIMER, "on_startup_sec", _parse_spans, _rtime, True),
    _d("Timer", "OnUnitActiveSec", TIMER, "on_unit_active_sec", _parse_spans, _rtime, True),
    _d("Timer", "OnUnitInactiveSec", TIMER, "on_unit_inactive_sec", _parse_spans, _rtime, True),
    _d("Timer", "AccuracySec", TIMER, "accuracy_sec", _time, _rtime),
    _d("Timer", "RandomizedDelaySec", TIMER, "randomized_delay_sec", _time, _rtime),
    _d("Timer", "FixedRandomDelay", TIMER, "fixed_random_delay", _bool, _rbool),
    _d("Timer", "Persistent", TIMER, "persistent", _bool, _rbool),
    _d("Timer", "Unit", TIMER, "unit", _parse_unit_to_trigger, _render_str),
    _d("Timer", "RemainAfterElapse", TIMER, "remain_after_elapse", _bool, _rbool),
]

_DOCUMENTATION_ROW = _d(
    "Unit", "Documentation", UNIT, "documentation", str.split, _render_str, True, False
)

_INSTALL_ROWS = [
    _d("Install", "WantedBy", INSTALL, "wanted_by", _names, _render_str, multi=True),
    _d("Install", "RequiredBy", INSTALL, "required_by", _names, _render_str, multi=True),
    # The unit language (issue 15).
    _d("Install", "Alias", INSTALL, "alias", _names, _render_str, multi=True),
    _d("Install", "Also", INSTALL, "also", _names, _render_str, multi=True),
    _d("Install", "DefaultInstance", INSTALL, "default_instance", _parse_text, _render_str),
]

DIRECTIVES: dict[tuple[str, str], Directive] = {
    (row.section, row.name): row
    for row in _UNIT_ROWS
    + _CONDITION_ROWS
    + _ASSERT_ROWS
    + _LIFECYCLE_UNIT_ROWS
    + _SERVICE_ROWS
    + _SOCKET_ROWS
    + _INSTALL_ROWS
    + _EXEC_ROWS
    + _SOCKET_OPTION_ROWS
    + _TIMER_ROWS
    + [_DOCUMENTATION_ROW]
}


def _words(text: str) -> list[str]:
    return text.split()


# ---- accepted, not applied (issue 15) -------------------------------------------------------
# Directives cinit reads without error and does not carry out: what systemd does with them
# needs a host's kernel features a container does not own (mount namespaces of its own,
# seccomp, capabilities dropped per service, cgroup controllers delegated to it) or a
# journal. A package's unchanged units use them (nginx, ssh, redis, ...): each unit lists
# the ones it sets in ONE `note` of `cinit validate` (never a warning, so --strict-units
# passes), and docs/directives.md says so. The one list, by section.
_NOT_APPLIED_EXEC = _words(
    # sandboxing (systemd.exec(5)): the container is the sandbox
    "ProtectSystem ProtectHome ProtectProc ProcSubset ReadWritePaths ReadOnlyPaths "
    "InaccessiblePaths ExecPaths NoExecPaths ReadWriteDirectories ReadOnlyDirectories "
    "InaccessibleDirectories TemporaryFileSystem BindPaths BindReadOnlyPaths PrivateTmp "
    "PrivateDevices PrivateNetwork NetworkNamespacePath PrivateIPC IPCNamespacePath "
    "PrivateUsers PrivateMounts MountFlags MountAPIVFS ProtectHostname ProtectClock "
    "ProtectKernelTunables ProtectKernelModules ProtectKernelLogs ProtectControlGroups "
    "RestrictAddressFamilies RestrictFileSystems RestrictNamespaces RestrictRealtime "
    "RestrictSUIDSGID LockPersonality MemoryDenyWriteExecute RemoveIPC SystemCallFilter "
    "SystemCallErrorNumber SystemCallArchitectures SystemCallLog NoNewPrivileges SecureBits "
    "CapabilityBoundingSet AmbientCapabilities KeyringMode DynamicUser PAMName "
    "SELinuxContext AppArmorProfile SmackProcessLabel Personality "
    # scheduling and memory policy: the container runtime's to set
    "CPUSchedulingPolicy CPUSchedulingPriority CPUSchedulingResetOnFork CPUAffinity "
    "NUMAPolicy NUMAMask IOSchedulingClass IOSchedulingPriority TimerSlackNSec "
    "CoredumpFilter OOMPolicy "
    # the journal and utmp: the container log is cinit's output
    "SyslogFacility SyslogLevel SyslogLevelPrefix LogLevelMax LogExtraFields "
    "LogRateLimitIntervalSec LogRateLimitBurst LogNamespace UtmpIdentifier UtmpMode "
    # resource control (systemd.resource-control(5)): the runtime owns the container's cgroup
    "Slice Delegate CPUAccounting CPUWeight StartupCPUWeight CPUShares StartupCPUShares "
    "CPUQuota CPUQuotaPeriodSec AllowedCPUs StartupAllowedCPUs AllowedMemoryNodes "
    "StartupAllowedMemoryNodes MemoryAccounting MemoryMin MemoryLow MemoryHigh MemoryMax "
    "MemorySwapMax MemoryLimit TasksAccounting TasksMax IOAccounting IOWeight "
    "StartupIOWeight IODeviceWeight IOReadBandwidthMax IOWriteBandwidthMax IOReadIOPSMax "
    "IOWriteIOPSMax BlockIOAccounting BlockIOWeight DeviceAllow DevicePolicy IPAccounting "
    "IPAddressAllow IPAddressDeny ManagedOOMSwap ManagedOOMMemoryPressure "
    "ManagedOOMMemoryPressureLimit ManagedOOMPreference"
)
# [Unit] (issue 15, lifecycle): the mounts a container's runtime made before cinit ran;
# systemd's job engine (isolate, manual-start refusals, job timeouts, garbage collection);
# machine-wide actions (reboot, poweroff) a container's init does not take on a unit's word.
_NOT_APPLIED_UNIT = _words(
    "RequiresMountsFor WantsMountsFor IgnoreOnIsolate AllowIsolate StopWhenUnneeded "
    "RefuseManualStart RefuseManualStop JobTimeoutSec JobRunningTimeoutSec JobTimeoutAction "
    "JobTimeoutRebootArgument CollectMode SuccessAction FailureAction SuccessActionExitStatus "
    "FailureActionExitStatus StartLimitAction RebootArgument"
)
NOT_APPLIED: frozenset[tuple[str, str]] = frozenset(
    [(section, name) for section in ("Service", "Socket") for name in _NOT_APPLIED_EXEC]
    + [("Unit", name) for name in _NOT_APPLIED_UNIT]
    # [Timer] (issue 17): waking a suspended machine, and the host's clock and time zone
    # changes, are the host's business; cinit re-checks the wall clock on every wake anyway.
    + [("Timer", name) for name in ("WakeSystem", "OnClockChange", "OnTimezoneChange")]
)


def not_applied(section: str, name: str) -> bool:
    """Whether `Name=` in `[Section]` is accepted but not carried out (a note, not a warning)."""
    return (section, name) in NOT_APPLIED


# Directive names per section, for "did you mean" suggestions.
NAMES_BY_SECTION: dict[str, list[str]] = {}
for _section, _name in DIRECTIVES:
    NAMES_BY_SECTION.setdefault(_section, []).append(_name)


def lookup(section: str, name: str) -> Directive | None:
    """The directive row for `Name=` in `[Section]`, or None when cinit does not read it."""
    return DIRECTIVES.get((section, name))


@functools.lru_cache(maxsize=1024)  # a file repeating one typo must not run difflib per line
def suggest(section: str, name: str) -> str | None:
    """The closest known directive name, for a 'did you mean' hint."""
    import difflib  # only on the error path: keeps validate's import cost down

    candidates = NAMES_BY_SECTION.get(section, [])
    lowered = {c.lower(): c for c in candidates}
    if name.lower() in lowered:
        return lowered[name.lower()]
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.75)
    if close:
        return close[0]
    # A directive that exists, but in another section.
    for other_section, other_name in DIRECTIVES:
        if other_name == name and other_section != section:
            return f"{name} (in [{other_section}])"
    return None
