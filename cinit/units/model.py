"""Typed, immutable units: what a parsed unit file *is*, with no I/O and no processes."""

from __future__ import annotations

from cinit.units.frozen import Frozen, QuickStrEnum, field, quick_enum


@quick_enum
class UnitKind(QuickStrEnum):
    SERVICE = "service"
    SOCKET = "socket"
    TARGET = "target"  # a grouping and synchronisation point: no process of its own
    TIMER = "timer"  # starts its service when it elapses (issue 17): no process of its own


@quick_enum
class ServiceType(QuickStrEnum):
    SIMPLE = "simple"
    EXEC = "exec"
    ONESHOT = "oneshot"
    FORKING = "forking"
    NOTIFY = "notify"
    NOTIFY_RELOAD = "notify-reload"  # notify; a reload is ReloadSignal=, then READY=1

    @property
    def notifies(self) -> bool:
        """Whether the service says READY=1 itself (notify and notify-reload)."""
        return self in (ServiceType.NOTIFY, ServiceType.NOTIFY_RELOAD)


@quick_enum
class RestartPolicy(QuickStrEnum):
    """systemd's Restart= values."""

    NO = "no"
    ON_SUCCESS = "on-success"
    ON_FAILURE = "on-failure"
    ON_ABNORMAL = "on-abnormal"
    ON_ABORT = "on-abort"
    ALWAYS = "always"


@quick_enum
class ActivationMode(QuickStrEnum):
    NATIVE = "native"
    PROXY = "proxy"


@quick_enum
class ListenKind(QuickStrEnum):
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


@quick_enum
class ConditionKind(QuickStrEnum):
    """The Condition*= checks; each also exists as Assert*= (`assert_name`)."""

    PATH_EXISTS = "ConditionPathExists"
    PATH_EXISTS_GLOB = "ConditionPathExistsGlob"
    ENVIRONMENT = "ConditionEnvironment"
    USER = "ConditionUser"
    # issue 15 (lifecycle): the checks packaged units use, evaluated for a container.
    PATH_IS_DIRECTORY = "ConditionPathIsDirectory"
    PATH_IS_SYMBOLIC_LINK = "ConditionPathIsSymbolicLink"
    PATH_IS_MOUNT_POINT = "ConditionPathIsMountPoint"
    PATH_IS_READ_WRITE = "ConditionPathIsReadWrite"
    DIRECTORY_NOT_EMPTY = "ConditionDirectoryNotEmpty"
    FILE_NOT_EMPTY = "ConditionFileNotEmpty"
    FILE_IS_EXECUTABLE = "ConditionFileIsExecutable"
    VIRTUALIZATION = "ConditionVirtualization"
    CAPABILITY = "ConditionCapability"
    KERNEL_COMMAND_LINE = "ConditionKernelCommandLine"
    SECURITY = "ConditionSecurity"
    HOST = "ConditionHost"
    FIRST_BOOT = "ConditionFirstBoot"
    NEEDS_UPDATE = "ConditionNeedsUpdate"
    GROUP = "ConditionGroup"
    ARCHITECTURE = "ConditionArchitecture"
    AC_POWER = "ConditionACPower"
    CREDENTIAL = "ConditionCredential"

    @property
    def assert_name(self) -> str:
        """The Assert*= spelling of this check (`AssertPathExists`)."""
        return "Assert" + self.value.removeprefix("Condition")


class Condition(Frozen):
    """A Condition*= (or Assert*=) check, evaluated when the unit is about to start.

    `trigger` is systemd's `|` prefix: the unit starts if every plain check holds and at
    least one of the triggering ones does (when it has any)."""

    kind: ConditionKind
    value: str
    negate: bool = False
    trigger: bool = False

    def describe(self, prefix: str = "Condition") -> str:
        """As written: `ConditionPathExists=|!/x` (or `AssertPathExists=...`)."""
        name = self.kind.value if prefix == "Condition" else self.kind.assert_name
        marks = ("|" if self.trigger else "") + ("!" if self.negate else "")
        return f"{name}={marks}{self.value}"


@quick_enum
class KillMode(QuickStrEnum):
    """systemd.kill's KillMode=: which processes a stop signals."""

    CONTROL_GROUP = "control-group"  # every process of the unit
    MIXED = "mixed"  # KillSignal= to the main process, SIGKILL later to the rest
    PROCESS = "process"  # the main process only; the rest is left alone
    NONE = "none"  # nothing is signalled (ExecStop= does the work)


@quick_enum
class NotifyAccess(QuickStrEnum):
    """systemd.service's NotifyAccess=: whose sd_notify messages count."""

    NONE = "none"
    MAIN = "main"
    EXEC = "exec"  # the main process or a control process (ExecStartPre=, ExecStop=, ...)
    ALL = "all"  # any process of the unit


@quick_enum
class OutputTarget(QuickStrEnum):
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

    def union(self, other: ExitStatusSet) -> ExitStatusSet:
        """Both sets' codes and signals (systemd merges the lines of one directive)."""
        return ExitStatusSet(self.codes | other.codes, self.signals | other.signals)


INFINITY = float("inf")  # (not math.inf: `math`, a shared library, costs ~0.4 ms at boot)


# ---- the execution environment (issue 15: RuntimeDirectory=, Limit*=, UMask=, ...) -----------

RLIMIT_INFINITY = -1  # a Limit*= of `infinity` (resource.RLIM_INFINITY on Linux)


class ResourceLimit(Frozen):
    """One Limit*= value: the soft and hard limit in the kernel's unit for that resource
    (bytes, seconds, microseconds, a count), `RLIMIT_INFINITY` for no limit."""

    soft: int
    hard: int


@quick_enum
class Preserve(QuickStrEnum):
    """RuntimeDirectoryPreserve=: when the runtime directories go away."""

    NO = "no"  # whenever the unit stops (also between automatic restarts)
    YES = "yes"  # never
    RESTART = "restart"  # when the unit stops, but not between automatic restarts


@quick_enum
class DirectoryKind(QuickStrEnum):
    """The five exec directories of systemd.exec(5), named by their directive's prefix."""

    RUNTIME = "Runtime"  # /run
    STATE = "State"  # /var/lib
    CACHE = "Cache"  # /var/cache
    LOGS = "Logs"  # /var/log
    CONFIGURATION = "Configuration"  # /etc


# Where each kind's relative names live (systemd's system-manager values).
DIRECTORY_ROOTS: dict[DirectoryKind, str] = {
    DirectoryKind.RUNTIME: "/run",
    DirectoryKind.STATE: "/var/lib",
    DirectoryKind.CACHE: "/var/cache",
    DirectoryKind.LOGS: "/var/log",
    DirectoryKind.CONFIGURATION: "/etc",
}


# Limit*= resource names, in systemd.exec(5)'s order (`LimitNOFILE=` is `NOFILE`).
LIMIT_NAMES = (
    "CPU",
    "FSIZE",
    "DATA",
    "STACK",
    "CORE",
    "RSS",
    "NOFILE",
    "AS",
    "NPROC",
    "MEMLOCK",
    "LOCKS",
    "SIGPENDING",
    "MSGQUEUE",
    "NICE",
    "RTPRIO",
    "RTTIME",
)


class UnitSection(Frozen):
    """[Unit]: description, dependencies, conditions, start limits."""

    description: str = ""
    documentation: tuple[str, ...] = ()  # URIs, shown by nothing yet; read so it is not unknown
    after: tuple[str, ...] = ()
    before: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    wants: tuple[str, ...] = ()
    on_failure: tuple[str, ...] = ()
    conditions: tuple[Condition, ...] = ()
    # issue 15 (lifecycle): the other dependencies and Assert*=.
    binds_to: tuple[str, ...] = ()
    part_of: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()
    requisite: tuple[str, ...] = ()
    reload_propagated_from: tuple[str, ...] = ()  # kept for the reload verb
    propagates_reload_to: tuple[str, ...] = ()  # kept for the reload verb
    asserts: tuple[Condition, ...] = ()
    start_limit_burst: int = 5
    start_limit_interval_sec: float = 10.0
    # Of systemd's implicit dependencies cinit adds one: a target is ordered after the
    # units it wants or requires (the others order against shutdown and sysinit).
    default_dependencies: bool = True


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
    # issue 15 (lifecycle): stopping, restart exit statuses, reload, notify access.
    kill_mode: KillMode = KillMode.CONTROL_GROUP
    send_sigkill: bool = True
    send_sighup: bool = False
    final_kill_signal: int = 9
    restart_kill_signal: int | None = None  # None: KillSignal=
    timeout_sec: float | None = None  # TimeoutSec=: the default of both timeouts above
    exec_reload: tuple[ExecCommand, ...] = ()  # run by the reload verb ($MAINPID is set)
    reload_signal: int = 1  # Type=notify-reload: what a reload sends the main process (SIGHUP)
    restart_prevent_exit_status: ExitStatusSet = ExitStatusSet()
    restart_force_exit_status: ExitStatusSet = ExitStatusSet()
    notify_access: NotifyAccess | None = None  # None: main for Type=notify, else none
    guess_main_pid: bool = True  # forking without PIDFile=: adopt the one process left
    # ---- the execution environment (issue 15) ----
    runtime_directory: tuple[str, ...] = ()
    state_directory: tuple[str, ...] = ()
    cache_directory: tuple[str, ...] = ()
    logs_directory: tuple[str, ...] = ()
    configuration_directory: tuple[str, ...] = ()
    runtime_directory_mode: int = 0o755
    state_directory_mode: int = 0o755
    cache_directory_mode: int = 0o755
    logs_directory_mode: int = 0o755
    configuration_directory_mode: int = 0o755
    runtime_directory_preserve: Preserve = Preserve.NO
    limit_cpu: ResourceLimit | None = None
    limit_fsize: ResourceLimit | None = None
    limit_data: ResourceLimit | None = None
    limit_stack: ResourceLimit | None = None
    limit_core: ResourceLimit | None = None
    limit_rss: ResourceLimit | None = None
    limit_nofile: ResourceLimit | None = None
    limit_as: ResourceLimit | None = None
    limit_nproc: ResourceLimit | None = None
    limit_memlock: ResourceLimit | None = None
    limit_locks: ResourceLimit | None = None
    limit_sigpending: ResourceLimit | None = None
    limit_msgqueue: ResourceLimit | None = None
    limit_nice: ResourceLimit | None = None
    limit_rtprio: ResourceLimit | None = None
    limit_rttime: ResourceLimit | None = None
    umask: int = 0o022
    nice: int | None = None  # None: cinit's own
    oom_score_adjust: int | None = None  # None: cinit's own
    ignore_sigpipe: bool = True
    syslog_identifier: str = ""  # "": the unit's name prefixes its output lines

    def directories(self, kind: DirectoryKind) -> tuple[str, ...]:
        """The relative names of `kind`'s directories (RuntimeDirectory=, ...)."""
        return getattr(self, f"{kind.name.lower()}_directory")  # type: ignore[no-any-return]

    def directory_mode(self, kind: DirectoryKind) -> int:
        """The mode of `kind`'s directories (RuntimeDirectoryMode=, ...)."""
        return getattr(self, f"{kind.name.lower()}_directory_mode")  # type: ignore[no-any-return]

    def limits(self) -> dict[str, ResourceLimit]:
        """The Limit*= that are set, by resource name (`NOFILE`, ...)."""
        found: dict[str, ResourceLimit] = {}
        for name in LIMIT_NAMES:
            limit = getattr(self, f"limit_{name.lower()}")
            if limit is not None:
                found[name] = limit
        return found


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
    # ---- socket options (issue 15) ----
    pass_credentials: bool = False  # SO_PASSCRED
    pass_security: bool = False  # SO_PASSSEC
    receive_buffer: int = 0  # SO_RCVBUF; 0: the kernel's default
    send_buffer: int = 0  # SO_SNDBUF; 0: the kernel's default
    socket_protocol: str = ""  # "": the default protocol of the family and type
    directory_mode: int = 0o755  # of the parent directories a unix socket path needs
    symlinks: tuple[str, ...] = ()  # created to a unix socket's path, removed with it


class TimerSection(Frozen):
    """[Timer] (systemd.timer(5)). `on_calendar` keeps each OnCalendar= expression as
    written (checked at load by `cinit.units.calendar`); the monotonic spans are seconds."""

    on_calendar: tuple[str, ...] = ()
    on_active_sec: tuple[float, ...] = ()
    on_boot_sec: tuple[float, ...] = ()
    on_startup_sec: tuple[float, ...] = ()
    on_unit_active_sec: tuple[float, ...] = ()
    on_unit_inactive_sec: tuple[float, ...] = ()
    accuracy_sec: float = 60.0  # systemd's default: 1min
    randomized_delay_sec: float = 0.0
    fixed_random_delay: bool = False
    persistent: bool = False
    unit: str = ""  # resolved: the timer's own name with .service when unset
    remain_after_elapse: bool = True

    @property
    def monotonic(self) -> tuple[tuple[str, tuple[float, ...]], ...]:
        """(directive, spans) of each monotonic trigger kind, in systemd's order."""
        return (
            ("OnActiveSec", self.on_active_sec),
            ("OnBootSec", self.on_boot_sec),
            ("OnStartupSec", self.on_startup_sec),
            ("OnUnitActiveSec", self.on_unit_active_sec),
            ("OnUnitInactiveSec", self.on_unit_inactive_sec),
        )

    @property
    def has_trigger(self) -> bool:
        """Whether any OnCalendar= or On*Sec= is set (systemd refuses a timer without)."""
        return bool(self.on_calendar) or any(spans for _, spans in self.monotonic)


class InstallSection(Frozen):
    """[Install]: how `systemctl enable` would link the unit.

    In --units mode every loaded unit starts at boot regardless, except that a service a
    socket activates also starts at boot when it is wanted or required by a boot target
    (`graph.BOOT_TARGETS`); in --systemd mode the `.wants/` links decide.
    """

    wanted_by: tuple[str, ...] = ()
    required_by: tuple[str, ...] = ()
    # The unit language (issue 15): names the unit answers to, as if enabled.
    alias: tuple[str, ...] = ()
    also: tuple[str, ...] = ()  # read for `systemctl enable`; cinit enables nothing
    default_instance: str = ""


@quick_enum
class UnitSource(QuickStrEnum):
    CORE = "core"
    DROP_IN = "drop-in"
    IMPLICIT = "implicit"  # a target named but defined by no file: empty, always reached
    SYSTEMD = "systemd"  # from systemd's search path (cinit --systemd)


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
    timer: TimerSection | None = None
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
