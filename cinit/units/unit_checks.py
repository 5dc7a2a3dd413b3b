"""Per-unit rules: what one unit's directives say together (a oneshot with Restart=always,
WatchdogSec= without Type=notify, proxy mode without ProxyTarget=, ...).

Pure code: a built `Unit` in, `Diagnostic`s appended to the caller's list.
"""

from __future__ import annotations

from collections.abc import Callable

from cinit.units.diagnostics import Diagnostic, Severity
from cinit.units.model import (
    ActivationMode,
    ListenKind,
    RestartPolicy,
    ServiceSection,
    ServiceType,
    SocketSection,
    TimerSection,
    Unit,
)


def _reporter(
    unit: Unit, section: str, diags: list[Diagnostic]
) -> Callable[[Severity, str, str], None]:
    """say(severity, directive, message): a finding at the line that set `directive`."""

    def say(severity: Severity, directive: str, message: str) -> None:
        line = unit.line_of(directive)
        where = unit.path_of(directive)
        diags.append(Diagnostic(severity, message, where, line, section, directive))

    return say


def check_service(unit: Unit, service: ServiceSection, diags: list[Diagnostic]) -> None:
    """Rules about one service that need several of its directives together."""
    say = _reporter(unit, "Service", diags)
    count = len(service.exec_start)
    if count == 0:
        say(Severity.ERROR, "ExecStart", "service has no ExecStart=; nothing to run")
    elif count > 1 and service.type is not ServiceType.ONESHOT:
        message = (
            f"Type={service.type.value} takes exactly one ExecStart= "
            f"(found {count}); only Type=oneshot may have several"
        )
        say(Severity.ERROR, "ExecStart", message)
    if service.type is ServiceType.ONESHOT and service.restart in (
        RestartPolicy.ALWAYS,
        RestartPolicy.ON_SUCCESS,
    ):
        message = (
            f"Restart={service.restart.value} is not allowed for Type=oneshot (use on-failure)"
        )
        say(Severity.ERROR, "Restart", message)
    if service.watchdog_sec and not service.type.notifies:
        say(Severity.WARNING, "WatchdogSec", "WatchdogSec= only works with Type=notify; ignored")
    for name in service.runtime_directory:
        if name.split("/")[0] == "cinit":  # /run/cinit: cinit's control and notify sockets
            message = (
                f"RuntimeDirectory={name} is inside cinit's own runtime directory /run/cinit; "
                "removing it at stop would take cinit's sockets"
            )
            say(Severity.ERROR, "RuntimeDirectory", message)
    exec_lines = {
        "ExecStartPre": service.exec_start_pre,
        "ExecStart": service.exec_start,
        "ExecStartPost": service.exec_start_post,
        "ExecStop": service.exec_stop,
        "ExecStopPost": service.exec_stop_post,
        "ExecReload": service.exec_reload,
    }
    for directive, commands in exec_lines.items():
        for command in commands:
            if command.privilege_prefix:
                message = (
                    f"{directive}= prefix '{command.privilege_prefix}' accepted: "
                    "the command runs as configured (User=/Group=)"
                )
                say(Severity.WARNING, directive, message)


def check_socket(unit: Unit, sock: SocketSection, diags: list[Diagnostic]) -> None:
    """Rules about one socket that need several of its directives together."""
    say = _reporter(unit, "Socket", diags)
    if not sock.listen_stream and not sock.listen_datagram:
        message = "socket has no ListenStream= or ListenDatagram=; nothing to bind"
        say(Severity.ERROR, "ListenStream", message)
    if sock.activation_mode is ActivationMode.PROXY:
        if sock.proxy_target is None:
            say(Severity.ERROR, "ActivationMode", "ActivationMode=proxy requires ProxyTarget=")
        if sock.listen_datagram:
            message = "ActivationMode=proxy relays streams only; ListenDatagram= needs native mode"
            say(Severity.ERROR, "ListenDatagram", message)
        if sock.accept:
            message = "Accept=yes cannot be combined with ActivationMode=proxy"
            say(Severity.ERROR, "Accept", message)
    elif sock.proxy_target is not None:
        message = "ProxyTarget= is only valid with ActivationMode=proxy"
        say(Severity.ERROR, "ProxyTarget", message)
    if sock.service == unit.name or not sock.service.endswith(".service"):
        say(Severity.ERROR, "Service", f"Service={sock.service} must name a .service unit")
    _check_socket_options(sock, say)


def check_timer(unit: Unit, timer: TimerSection, diags: list[Diagnostic]) -> None:
    """A timer needs something to elapse on and a service to start (systemd.timer(5))."""
    say = _reporter(unit, "Timer", diags)
    said = any(d.directive == "OnCalendar" and d.path == unit.path for d in diags)
    if not timer.has_trigger and not said:  # not when an OnCalendar= was wrong already
        message = "timer has no OnCalendar= nor On*Sec= setting; it would never elapse"
        say(Severity.ERROR, "OnCalendar", message)
    if timer.unit == unit.name or not timer.unit.endswith(".service"):
        say(Severity.ERROR, "Unit", f"Unit={timer.unit}: cinit's timers start a .service unit")


def _check_socket_options(sock: SocketSection, say: Callable[[Severity, str, str], None]) -> None:
    """Symlinks= and SocketProtocol= make sense for some listeners only (systemd.socket(5))."""
    listeners = sock.listen_stream + sock.listen_datagram
    unix = [a for a in listeners if a.kind is ListenKind.UNIX]
    if sock.symlinks and len(unix) != 1:
        message = (
            f"Symlinks= needs exactly one unix socket path to point to (found {len(unix)}); "
            "no link is made"
        )
        say(Severity.WARNING, "Symlinks", message)
    if sock.socket_protocol:
        if not any(a.kind is ListenKind.INET for a in listeners):
            message = f"SocketProtocol={sock.socket_protocol} applies to IP sockets only; ignored"
            say(Severity.WARNING, "SocketProtocol", message)
        elif sock.socket_protocol == "udplite" and sock.listen_stream:
            message = "SocketProtocol=udplite is for ListenDatagram= only"
            say(Severity.ERROR, "SocketProtocol", message)
        elif sock.socket_protocol != "udplite" and sock.listen_datagram:
            message = f"SocketProtocol={sock.socket_protocol} is for ListenStream= only"
            say(Severity.ERROR, "SocketProtocol", message)
