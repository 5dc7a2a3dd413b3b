"""Per-unit rules: what one unit's directives say together (a oneshot with Restart=always,
WatchdogSec= without Type=notify, proxy mode without ProxyTarget=, ...).

Pure code: a built `Unit` in, `Diagnostic`s appended to the caller's list.
"""

from __future__ import annotations

from cinit.units.diagnostics import Diagnostic, Severity
from cinit.units.model import (
    ActivationMode,
    RestartPolicy,
    ServiceSection,
    ServiceType,
    SocketSection,
    Unit,
)


def _diag(unit: Unit, severity: Severity, directive: str, section: str, message: str) -> Diagnostic:
    return Diagnostic(severity, message, unit.path, unit.line_of(directive), section, directive)


def check_service(unit: Unit, service: ServiceSection, diags: list[Diagnostic]) -> None:
    """Rules about one service that need several of its directives together."""
    count = len(service.exec_start)
    if count == 0:
        diags.append(
            _diag(
                unit,
                Severity.ERROR,
                "ExecStart",
                "Service",
                "service has no ExecStart=; nothing to run",
            )
        )
    elif count > 1 and service.type is not ServiceType.ONESHOT:
        diags.append(
            _diag(
                unit,
                Severity.ERROR,
                "ExecStart",
                "Service",
                f"Type={service.type.value} takes exactly one ExecStart= "
                f"(found {count}); only Type=oneshot may have several",
            )
        )
    if service.type is ServiceType.ONESHOT and service.restart in (
        RestartPolicy.ALWAYS,
        RestartPolicy.ON_SUCCESS,
    ):
        diags.append(
            _diag(
                unit,
                Severity.ERROR,
                "Restart",
                "Service",
                f"Restart={service.restart.value} is not allowed for Type=oneshot (use on-failure)",
            )
        )
    if service.watchdog_sec and service.type is not ServiceType.NOTIFY:
        diags.append(
            _diag(
                unit,
                Severity.WARNING,
                "WatchdogSec",
                "Service",
                "WatchdogSec= only works with Type=notify; ignored",
            )
        )
    if service.pid_file and service.type is not ServiceType.FORKING:
        diags.append(
            _diag(
                unit,
                Severity.WARNING,
                "PIDFile",
                "Service",
                "PIDFile= is only used with Type=forking; ignored",
            )
        )
    exec_lines = {
        "ExecStartPre": service.exec_start_pre,
        "ExecStart": service.exec_start,
        "ExecStartPost": service.exec_start_post,
        "ExecStop": service.exec_stop,
        "ExecStopPost": service.exec_stop_post,
    }
    for directive, commands in exec_lines.items():
        for command in commands:
            if command.privilege_prefix:
                diags.append(
                    _diag(
                        unit,
                        Severity.WARNING,
                        directive,
                        "Service",
                        f"{directive}= prefix '{command.privilege_prefix}' accepted: "
                        "the command runs as configured (User=/Group=)",
                    )
                )


def check_socket(unit: Unit, sock: SocketSection, diags: list[Diagnostic]) -> None:
    """Rules about one socket that need several of its directives together."""
    if not sock.listen_stream and not sock.listen_datagram:
        diags.append(
            _diag(
                unit,
                Severity.ERROR,
                "ListenStream",
                "Socket",
                "socket has no ListenStream= or ListenDatagram=; nothing to bind",
            )
        )
    if sock.activation_mode is ActivationMode.PROXY:
        if sock.proxy_target is None:
            diags.append(
                _diag(
                    unit,
                    Severity.ERROR,
                    "ActivationMode",
                    "Socket",
                    "ActivationMode=proxy requires ProxyTarget=",
                )
            )
        if sock.listen_datagram:
            diags.append(
                _diag(
                    unit,
                    Severity.ERROR,
                    "ListenDatagram",
                    "Socket",
                    "ActivationMode=proxy relays streams only; ListenDatagram= needs native mode",
                )
            )
        if sock.accept:
            diags.append(
                _diag(
                    unit,
                    Severity.ERROR,
                    "Accept",
                    "Socket",
                    "Accept=yes cannot be combined with ActivationMode=proxy",
                )
            )
    elif sock.proxy_target is not None:
        diags.append(
            _diag(
                unit,
                Severity.ERROR,
                "ProxyTarget",
                "Socket",
                "ProxyTarget= is only valid with ActivationMode=proxy",
            )
        )
    if sock.service == unit.name or not sock.service.endswith(".service"):
        diags.append(
            _diag(
                unit,
                Severity.ERROR,
                "Service",
                "Socket",
                f"Service={sock.service} must name a .service unit",
            )
        )
