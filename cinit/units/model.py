"""Typed, immutable units: what a parsed unit file *is*, with no I/O and no processes."""

from __future__ import annotations

import math
from enum import StrEnum

from cinit.units.frozen import Frozen, field


class UnitKind(StrEnum):
    SERVICE = "service"
    SOCKET = "socket"


class ServiceType(StrEnum):
    SIMPLE = "simple"
    EXEC = "exec"
    ONESHOT = "oneshot"
    FORKING = "forking"
    NOTIFY = "notify"


class RestartPolicy(StrEnum):
    """systemd's Restart= values."""

    NO = "no"
    ON_SUCCESS = "on-success"
    ON_FAILURE = "on-failure"
    ON_ABNORMAL = "on-abnormal"
    ON_ABORT = "on-abort"
    ALWAYS = "always"


class ActivationMode(StrEnum):
    NATIVE = "native"
    PROXY = "proxy"


class ListenKind(StrEnum):
    INET = "inet"  # host may be "" (any address, dual stack), an IPv4 or an IPv6 address
    UNIX = "unix"  # a filesystem path
    ABSTRACT = "abstract"  # Linux abstract namespace, written @name


class ListenAddress(Frozen):
    """One ListenStream=/ListenDatagram= value (also used for ProxyTarget=)."""

    kind: ListenKind
    host: str = ""
    port: int = 0
    path: str = ""

    def render(self) -> str:
        """The canonical text form; parsing it gives back an equal address."""
        if self.kind is ListenKind.UNIX:
            return self.path
        if self.kind is ListenKind.ABSTRACT:
            return "@" + self.path
        if not self.host:
            return str(self.port)
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


class ExecCommand(Frozen):
    """One Exec*= line after systemd unquoting and specifier expansion.

    `words` still hold `$VAR`/`${VAR}` references: they are expanded against the
    unit's environment at start time (see `commands.expand_exec_words`).
    """

    words: tuple[str, ...]
    ignore_failure: bool = False  # "-" prefix
    argv0_separate: bool = False  # "@" prefix: words[0] is the path, words[1] is argv[0]
    no_env_expansion: bool = False  # ":" prefix
    privilege_prefix: str = ""  # "+", "!" or "!!": accepted, run as configured

    @property
    def path(self) -> str:
        """The program to execute."""
        return self.words[0]


class EnvironmentFileRef(Frozen):
    """An EnvironmentFile= entry; read when the unit starts, not at load."""

    path: str
    optional: bool = False  # "-" prefix: a missing file is not an error


class ConditionKind(StrEnum):
    PATH_EXISTS = "ConditionPathExists"
    PATH_EXISTS_GLOB = "ConditionPathExistsGlob"
    ENVIRONMENT = "ConditionEnvironment"
    USER = "ConditionUser"


class Condition(Frozen):
    """A Condition*= check, evaluated when the unit is about to start."""

    kind: ConditionKind
    value: str
    negate: bool = False


class OutputTarget(StrEnum):
    INHERIT = "inherit"
    NULL = "null"
    FILE = "file"
    APPEND = "append"


class Output(Frozen):
    """StandardOutput=/StandardError=: `inherit`, `null`, `file:PATH` or `append:PATH`."""

    target: OutputTarget = OutputTarget.INHERIT
    path: str = ""


class ExitStatusSet(Frozen):
    """SuccessExitStatus=: extra exit codes and signals counted as clean."""

    codes: frozenset[int] = frozenset()
    signals: frozenset[int] = frozenset()


INFINITY = math.inf


class UnitSection(Frozen):
    """[Unit]: description, dependencies, conditions, start limits."""

    description: str = ""
    after: tuple[str, ...] = ()
    before: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    wants: tuple[str, ...] = ()
    on_failure: tuple[str, ...] = ()
    conditions: tuple[Condition, ...] = ()
    start_limit_burst: int = 5
    start_limit_interval_sec: float = 10.0


class ServiceSection(Frozen):
    """[Service]."""

    type: ServiceType = ServiceType.SIMPLE
    exec_start: tuple[ExecCommand, ...] = ()
    exec_start_pre: tuple[ExecCommand, ...] = ()
    exec_start_post: tuple[ExecCommand, ...] = ()
    exec_stop: tuple[ExecCommand, ...] = ()
    exec_stop_post: tuple[ExecCommand, ...] = ()
    restart: RestartPolicy = RestartPolicy.NO
    restart_sec: float = 0.1
    timeout_start_sec: float = 90.0
    timeout_stop_sec: float = 10.0
    kill_signal: int = 15
    remain_after_exit: bool = False
    pid_file: str = ""
    watchdog_sec: float = 0.0
    success_exit_status: ExitStatusSet = ExitStatusSet()
    environment: tuple[tuple[str, str], ...] = ()
    environment_files: tuple[EnvironmentFileRef, ...] = ()
    user: str = ""
    group: str = ""
    working_directory: str = ""
    standard_output: Output = Output()
    standard_error: Output = Output()
    exit_container_on_failure: bool = False


class SocketSection(Frozen):
    """[Socket]."""

    listen_stream: tuple[ListenAddress, ...] = ()
    listen_datagram: tuple[ListenAddress, ...] = ()
    accept: bool = False
    service: str = ""  # resolved: the socket's own name with .service when unset
    socket_user: str = ""
    socket_group: str = ""
    socket_mode: int = 0o666
    backlog: int = 0  # 0: the kernel maximum (SOMAXCONN)
    reuse_port: bool = False
    bind_ipv6_only: str = "default"  # default | both | ipv6-only
    file_descriptor_name: str = ""  # resolved: the socket's own name when unset
    remove_on_stop: bool = False
    trigger_limit_interval_sec: float = 2.0
    trigger_limit_burst: int = 20
    max_connections: int = 64
    activation_mode: ActivationMode = ActivationMode.NATIVE
    proxy_target: ListenAddress | None = None


class InstallSection(Frozen):
    """[Install]: accepted; cinit starts every loaded unit at boot regardless."""

    wanted_by: tuple[str, ...] = ()
    # The unit language (issue 15): names the unit answers to, as if enabled.
    alias: tuple[str, ...] = ()
    also: tuple[str, ...] = ()  # read for `systemctl enable`; cinit enables nothing
    default_instance: str = ""


class UnitSource(StrEnum):
    CORE = "core"
    DROP_IN = "drop-in"


class Unit(Frozen):
    """One loaded unit file.

    `directive_lines` maps each directive that was set to the line of its last
    assignment, so later checks (graph, supervisor) can point at the file.
    """

    name: str
    path: str
    kind: UnitKind
    unit: UnitSection = UnitSection()
    service: ServiceSection | None = None
    socket: SocketSection | None = None
    install: InstallSection = InstallSection()
    source: UnitSource = UnitSource.CORE
    overrides: str = ""  # path of the core unit this drop-in replaced, if any
    directive_lines: dict[str, int] = field(default_factory=dict, compare=False)
    # The unit language (issue 15): where a directive was set when not in `path` (a
    # snippet), the snippets applied in order, the template of an instance, its aliases.
    directive_files: dict[str, str] = field(default_factory=dict, compare=False)
    snippets: tuple[str, ...] = ()
    template: str = ""  # `x@.service` for the instance `x@a.service`
    aliases: tuple[str, ...] = ()  # other names that resolve to this unit

    @property
    def stem(self) -> str:
        """The name without its suffix (systemd's %N)."""
        return self.name.rsplit(".", 1)[0]

    def line_of(self, directive: str) -> int | None:
        """Line of the last assignment of `directive`, if the file set it."""
        return self.directive_lines.get(directive)

    def path_of(self, directive: str) -> str:
        """The file (unit file or snippet) of the last assignment of `directive`."""
        return self.directive_files.get(directive, self.path)
