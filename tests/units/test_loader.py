"""Loading unit files: every directive becomes a typed field; diagnostics name file and line."""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path

import pytest

from cinit.units import (
    ActivationMode,
    Condition,
    ConditionKind,
    EnvironmentFileRef,
    ListenAddress,
    ListenKind,
    Output,
    OutputTarget,
    RestartPolicy,
    ServiceType,
    Severity,
    UnitError,
    UnitKind,
    UnitSource,
    load_units,
    parse_unit,
    render_unit,
)

ENV = {"APP_USER": "alice", "EMPTY": ""}


def load(name: str, text: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    unit, diags = parse_unit(name, text, path=f"/u/{name}", environ=env or ENV, hostname="box")
    assert unit is not None
    return unit, diags


def clean(name: str, text: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    unit, diags = load(name, text, env)
    assert not diags, [d.format() for d in diags]
    return unit


def service(body: str, name: str = "s.service"):  # type: ignore[no-untyped-def]
    return clean(name, f"[Service]\nExecStart=/bin/true\n{body}\n")


def sock(body: str, name: str = "s.socket"):  # type: ignore[no-untyped-def]
    return clean(name, f"[Socket]\n{body}\n")


# --- every [Unit] directive ---------------------------------------------------------------


def test_unit_section_directives() -> None:
    unit = clean(
        "a.service",
        "[Unit]\nDescription=The A service\nAfter=b.service c.socket\nBefore=d.service\n"
        "Requires=b.service\nWants=e.service\nOnFailure=fix.service\n"
        "StartLimitBurst=3\nStartLimitIntervalSec=1min 30s\n"
        "[Service]\nExecStart=/bin/true\n",
    )
    section = unit.unit
    assert section.description == "The A service"
    assert section.after == ("b.service", "c.socket")
    assert section.before == ("d.service",)
    assert section.requires == ("b.service",)
    assert section.wants == ("e.service",)
    assert section.on_failure == ("fix.service",)
    assert section.start_limit_burst == 3
    assert section.start_limit_interval_sec == 90.0
    assert unit.kind is UnitKind.SERVICE and unit.stem == "a"


def test_start_limits_are_also_accepted_in_service_section() -> None:
    unit = service("StartLimitBurst=7\nStartLimitIntervalSec=5s")
    assert (unit.unit.start_limit_burst, unit.unit.start_limit_interval_sec) == (7, 5.0)


def test_start_limit_defaults_are_systemds() -> None:
    unit = service("")
    assert (unit.unit.start_limit_burst, unit.unit.start_limit_interval_sec) == (5, 10.0)


def test_conditions_with_negation_in_file_order() -> None:
    unit = clean(
        "a.service",
        "[Unit]\nConditionPathExists=/etc/x\nConditionPathExists=!/etc/y\n"
        "ConditionPathExistsGlob=/etc/*.conf\nConditionEnvironment=!DEBUG\n"
        "ConditionEnvironment=MODE=prod\nConditionUser=root\nConditionUser=!1000\n"
        "[Service]\nExecStart=/bin/true\n",
    )
    assert unit.unit.conditions == (
        Condition(ConditionKind.PATH_EXISTS, "/etc/x"),
        Condition(ConditionKind.PATH_EXISTS, "/etc/y", negate=True),
        Condition(ConditionKind.PATH_EXISTS_GLOB, "/etc/*.conf"),
        Condition(ConditionKind.ENVIRONMENT, "DEBUG", negate=True),
        Condition(ConditionKind.ENVIRONMENT, "MODE=prod"),
        Condition(ConditionKind.USER, "root"),
        Condition(ConditionKind.USER, "1000", negate=True),
    )


def test_empty_condition_resets_all_conditions() -> None:
    unit = clean(
        "a.service",
        "[Unit]\nConditionPathExists=/x\nConditionUser=root\nConditionPathExists=\n"
        "ConditionUser=bob\n[Service]\nExecStart=/bin/true\n",
    )
    assert unit.unit.conditions == (Condition(ConditionKind.USER, "bob"),)


def test_condition_path_must_be_absolute() -> None:
    _, diags = load("a.service", "[Unit]\nConditionPathExists=rel\n[Service]\nExecStart=/x\n")
    assert [d.severity for d in diags] == [Severity.ERROR]


# --- every [Service] directive ------------------------------------------------------------


def test_service_scalars() -> None:
    unit = service(
        "Type=notify\nRestart=on-abnormal\nRestartSec=250ms\nTimeoutStartSec=5s\n"
        "TimeoutStopSec=infinity\nKillSignal=SIGINT\nWatchdogSec=3s\n"
        "SuccessExitStatus=3 SIGHUP\nUser=${APP_USER}\nGroup=${GROUP:-staff}\n"
        "WorkingDirectory=/srv\nStandardOutput=null\nStandardError=append:/var/log/s.log\n"
        "ExitContainerOnFailure=yes\nRemainAfterExit=no"
    )
    svc = unit.service
    assert svc.type is ServiceType.NOTIFY
    assert svc.restart is RestartPolicy.ON_ABNORMAL
    assert svc.restart_sec == 0.25
    assert svc.timeout_start_sec == 5.0
    assert math.isinf(svc.timeout_stop_sec)
    assert svc.kill_signal == signal.SIGINT
    assert svc.watchdog_sec == 3.0
    assert svc.success_exit_status.codes == {3}
    assert svc.success_exit_status.signals == {signal.SIGHUP}
    assert (svc.user, svc.group, svc.working_directory) == ("alice", "staff", "/srv")
    assert svc.standard_output == Output(OutputTarget.NULL)
    assert svc.standard_error == Output(OutputTarget.APPEND, "/var/log/s.log")
    assert svc.exit_container_on_failure is True
    assert svc.remain_after_exit is False


def test_service_defaults() -> None:
    svc = service("").service
    assert svc.type is ServiceType.SIMPLE and svc.restart is RestartPolicy.NO
    assert svc.restart_sec == 0.1 and svc.timeout_stop_sec == 10.0
    assert svc.kill_signal == signal.SIGTERM
    assert svc.standard_output == Output() and svc.user == ""


def test_oneshot_has_no_start_timeout_unless_set() -> None:
    assert math.isinf(service("Type=oneshot").service.timeout_start_sec)
    assert service("Type=oneshot\nTimeoutStartSec=60s").service.timeout_start_sec == 60.0
    assert service("Type=simple").service.timeout_start_sec == 90.0


def test_pidfile_for_forking() -> None:
    assert service("Type=forking\nPIDFile=/run/d.pid").service.pid_file == "/run/d.pid"


def test_exec_lines_accumulate_in_order_and_keep_prefixes() -> None:
    unit = clean(
        "o.service",
        "[Service]\nType=oneshot\nExecStartPre=-/bin/false\nExecStartPre=/bin/echo pre\n"
        "ExecStart=/bin/echo one\nExecStart=@/bin/sh sh -c 'echo two'\n"
        "ExecStartPost=:/bin/echo $HOME\nExecStop=/bin/echo stop\nExecStopPost=-/bin/rm -f /x\n",
    )
    svc = unit.service
    assert [c.words for c in svc.exec_start_pre] == [("/bin/false",), ("/bin/echo", "pre")]
    assert svc.exec_start_pre[0].ignore_failure and not svc.exec_start_pre[1].ignore_failure
    assert svc.exec_start[1].argv0_separate
    assert svc.exec_start[1].words == ("/bin/sh", "sh", "-c", "echo two")
    assert svc.exec_start_post[0].no_env_expansion
    assert svc.exec_start_post[0].words == ("/bin/echo", "$HOME")
    assert svc.exec_stop[0].words == ("/bin/echo", "stop")
    assert svc.exec_stop_post[0].ignore_failure


def test_empty_assignment_resets_a_list() -> None:
    unit = service("Environment=A=1\nEnvironment=\nEnvironment=B=2")
    assert unit.service.environment == (("B", "2"),)


def test_empty_assignment_resets_a_scalar_to_its_default() -> None:
    assert service("Restart=always\nRestart=").service.restart is RestartPolicy.NO


def test_later_scalar_assignment_wins() -> None:
    assert service("RestartSec=1\nRestartSec=2").service.restart_sec == 2.0


def test_environment_and_environment_files() -> None:
    unit = service(
        'Environment="A=1 2" B=3\nEnvironment=C=${NOT_EXPANDED}\n'
        "EnvironmentFile=/etc/app.env\nEnvironmentFile=-/etc/optional.env"
    )
    assert unit.service.environment == (("A", "1 2"), ("B", "3"), ("C", "${NOT_EXPANDED}"))
    assert unit.service.environment_files == (
        EnvironmentFileRef("/etc/app.env"),
        EnvironmentFileRef("/etc/optional.env", optional=True),
    )


def test_var_expansion_never_changes_how_an_exec_line_splits() -> None:
    env = {"ARGS": "a b", "X": "one two"}
    unit = clean("s.service", "[Service]\nExecStart=/bin/echo ${ARGS} $X\n", env)
    assert unit.service.exec_start[0].words == ("/bin/echo", "${ARGS}", "$X")


def test_var_expansion_with_defaults_in_non_exec_values() -> None:
    unit = service("User=${MISSING:-nobody}\nWorkingDirectory=${EMPTY:-/tmp}")
    assert (unit.service.user, unit.service.working_directory) == ("nobody", "/tmp")


def test_working_directory_tilde_and_optional_prefix() -> None:
    assert service("WorkingDirectory=~").service.working_directory == "~"
    assert service("WorkingDirectory=-/maybe").service.working_directory == "-/maybe"


def test_specifiers() -> None:
    unit = clean(
        "web.service",
        "[Unit]\nDescription=%n is %N on %H at 100%%\n[Service]\nExecStart=/bin/echo %N\n",
    )
    assert unit.unit.description == "web.service is web on box at 100%"
    assert unit.service.exec_start[0].words == ("/bin/echo", "web")


def test_unknown_specifier_is_a_warning() -> None:
    unit, diags = load("a.service", "[Unit]\nDescription=%z\n[Service]\nExecStart=/bin/true\n")
    assert [d.severity for d in diags] == [Severity.WARNING]
    assert diags[0].line == 2 and "%z" in diags[0].message
    assert unit.unit.description == "%z"


# --- every [Socket] directive -------------------------------------------------------------


def test_socket_directives() -> None:
    unit = sock(
        "ListenStream=8080\nListenStream=127.0.0.1:9090\nListenStream=[::1]:7070\n"
        "ListenStream=/run/app.sock\nListenDatagram=@abstract\nAccept=no\n"
        "Service=app.service\nSocketUser=root\nSocketGroup=${G:-adm}\nSocketMode=0600\n"
        "Backlog=128\nReusePort=yes\nBindIPv6Only=both\nFileDescriptorName=api\n"
        "RemoveOnStop=true\nTriggerLimitIntervalSec=5s\nTriggerLimitBurst=3\n"
        "MaxConnections=10",
    )
    s = unit.socket
    assert s.listen_stream == (
        ListenAddress(ListenKind.INET, "", 8080),
        ListenAddress(ListenKind.INET, "127.0.0.1", 9090),
        ListenAddress(ListenKind.INET, "::1", 7070),
        ListenAddress(ListenKind.UNIX, path="/run/app.sock"),
    )
    assert s.listen_datagram == (ListenAddress(ListenKind.ABSTRACT, path="abstract"),)
    assert s.service == "app.service" and s.accept is False
    assert (s.socket_user, s.socket_group, s.socket_mode) == ("root", "adm", 0o600)
    assert (s.backlog, s.reuse_port, s.bind_ipv6_only) == (128, True, "both")
    assert (s.file_descriptor_name, s.remove_on_stop) == ("api", True)
    assert (s.trigger_limit_interval_sec, s.trigger_limit_burst) == (5.0, 3)
    assert s.max_connections == 10
    assert s.activation_mode is ActivationMode.NATIVE


def test_socket_defaults_are_resolved() -> None:
    s = sock("ListenStream=8080", name="web.socket").socket
    assert s.service == "web.service" and s.file_descriptor_name == "web.socket"
    assert s.socket_mode == 0o666 and (s.trigger_limit_interval_sec, s.trigger_limit_burst) == (
        2.0,
        20,
    )


def test_proxy_socket() -> None:
    s = sock("ListenStream=8080\nActivationMode=proxy\nProxyTarget=127.0.0.1:18080").socket
    assert s.activation_mode is ActivationMode.PROXY
    assert s.proxy_target == ListenAddress(ListenKind.INET, "127.0.0.1", 18080)


def test_listen_address_expands_vars() -> None:
    unit = clean("s.socket", "[Socket]\nListenStream=${PORT:-7000}\n")
    assert unit.socket.listen_stream == (ListenAddress(ListenKind.INET, "", 7000),)


def test_install_wanted_by() -> None:
    unit = clean("s.socket", "[Socket]\nListenStream=1\n[Install]\nWantedBy=sockets.target\n")
    assert unit.install.wanted_by == ("sockets.target",)


# --- diagnostics -------------------------------------------------------------------------


def test_bad_value_error_names_file_line_directive_and_value() -> None:
    _, diags = load("a.service", "[Service]\nExecStart=/bin/true\nRestartSec=5x\n")
    [diag] = diags
    assert diag.severity is Severity.ERROR and diag.line == 3
    assert diag.directive == "RestartSec" and diag.path == "/u/a.service"
    assert diag.format().startswith("/u/a.service:3: error: [Service] RestartSec=5x: ")
    assert "'5x'" in diag.message


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("Type=daemon", "simple, exec, oneshot, forking, notify"),
        ("Restart=sometimes", "on-failure"),
        ("RemainAfterExit=maybe", "maybe"),
        ("KillSignal=SIGNOPE", "SIGNOPE"),
        ("StandardOutput=syslog-ish", "syslog-ish"),
        ("User=a b", "a b"),
        ("PIDFile=relative.pid", "absolute"),
        ("WorkingDirectory=srv", "absolute"),
        ("Environment=1BAD=x", "1BAD"),
        ("EnvironmentFile=rel.env", "absolute"),
    ],
)
def test_bad_service_values_are_errors(line: str, needle: str) -> None:
    _, diags = load("a.service", f"[Service]\nExecStart=/bin/true\n{line}\n")
    assert [d.severity for d in diags] == [Severity.ERROR], [d.format() for d in diags]
    assert needle in diags[0].message and diags[0].line == 3


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("ListenStream=host.example:80", "host.example"),
        ("ListenStream=99999", "99999"),
        ("ListenStream=relative/path", "relative/path"),
        ("SocketMode=0999", "0999"),
        ("Backlog=-1", "-1"),
        ("ActivationMode=magic", "native, proxy"),
        ("Service=other.socket", "other.socket"),
        ("BindIPv6Only=sometimes", "ipv6-only"),
    ],
)
def test_bad_socket_values_are_errors(line: str, needle: str) -> None:
    _, diags = load("a.socket", f"[Socket]\nListenStream=1234\n{line}\n")
    assert Severity.ERROR in [d.severity for d in diags], [d.format() for d in diags]
    assert any(needle in d.message and d.line == 3 for d in diags), [d.format() for d in diags]


def test_unknown_directive_warns_with_did_you_mean() -> None:
    _, diags = load("a.service", "[Service]\nExecStrat=/bin/true\nExecStart=/bin/true\n")
    [diag] = diags
    assert diag.severity is Severity.WARNING and diag.line == 2
    assert diag.section == "Service" and diag.directive == "ExecStrat"
    assert "did you mean ExecStart?" in diag.message


def test_directive_in_the_wrong_section_suggests_the_right_one() -> None:
    _, diags = load("a.service", "[Unit]\nRestart=always\n[Service]\nExecStart=/bin/true\n")
    assert "Restart (in [Service])" in diags[0].message


def test_unknown_directive_far_from_any_is_ignored_with_a_warning() -> None:
    _, diags = load("a.service", "[Service]\nExecStart=/bin/true\nFrobnicateWidgets=strict\n")
    assert diags[0].severity is Severity.WARNING and "unknown directive FrobnicateWidgets=" in (
        diags[0].message
    )


def test_unknown_section_warns_once() -> None:
    _, diags = load("a.service", "[Service]\nExecStart=/x\n[Timer]\nOnCalendar=daily\nA=b\n")
    [diag] = diags
    assert diag.line == 3 and "[Timer]" in diag.message


def test_socket_section_in_a_service_is_a_warning() -> None:
    _, diags = load("a.service", "[Service]\nExecStart=/x\n[Socket]\nListenStream=1\n")
    assert [d.severity for d in diags] == [Severity.WARNING] and "[Socket]" in diags[0].message


def test_x_prefixed_sections_and_keys_are_ignored_silently() -> None:
    clean("a.service", "[X-Custom]\nFoo=bar\n[Service]\nExecStart=/x\nX-Note=hi\n")


@pytest.mark.parametrize("prefix", ["+", "!", "!!"])
def test_privilege_prefixes_are_accepted_with_a_warning(prefix: str) -> None:
    unit, diags = load("a.service", f"[Service]\nExecStart={prefix}/bin/true\n")
    assert [d.severity for d in diags] == [Severity.WARNING]
    assert "runs as configured" in diags[0].message and diags[0].line == 2
    assert unit.service.exec_start[0].privilege_prefix == prefix


# --- rules across directives of one unit ---------------------------------------------------


def unit_errors(name: str, text: str) -> list[str]:
    _, diags = load(name, text)
    return [d.message for d in diags if d.severity is Severity.ERROR]


def test_service_without_exec_start_is_an_error() -> None:
    assert any("no ExecStart" in m for m in unit_errors("a.service", "[Service]\nType=simple\n"))


def test_several_exec_start_only_for_oneshot() -> None:
    text = "[Service]\nExecStart=/a\nExecStart=/b\n"
    assert any("exactly one ExecStart" in m for m in unit_errors("a.service", text))
    assert not unit_errors("a.service", text + "Type=oneshot\n")


@pytest.mark.parametrize("restart", ["always", "on-success"])
def test_oneshot_cannot_restart_always(restart: str) -> None:
    text = f"[Service]\nType=oneshot\nExecStart=/a\nRestart={restart}\n"
    assert any("not allowed for Type=oneshot" in m for m in unit_errors("a.service", text))


def test_socket_rules() -> None:
    assert any("nothing to bind" in m for m in unit_errors("a.socket", "[Socket]\nAccept=no\n"))
    proxy = "[Socket]\nListenStream=80\nActivationMode=proxy\n"
    assert any("requires ProxyTarget" in m for m in unit_errors("a.socket", proxy))
    native = "[Socket]\nListenStream=80\nProxyTarget=127.0.0.1:81\n"
    assert any("only valid with ActivationMode=proxy" in m for m in unit_errors("a.socket", native))
    accept = proxy + "ProxyTarget=127.0.0.1:81\nAccept=yes\n"
    assert any("Accept=yes" in m for m in unit_errors("a.socket", accept))
    dgram = proxy + "ProxyTarget=127.0.0.1:81\nListenDatagram=90\n"
    assert any("streams only" in m for m in unit_errors("a.socket", dgram))


def test_invalid_unit_names_are_rejected() -> None:
    unit, diags = parse_unit("bad name.service", "[Service]\nExecStart=/x\n")
    assert unit is None and "not a valid unit name" in diags[0].message


# --- directories, drop-ins, overrides ------------------------------------------------------


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


SIMPLE = "[Service]\nExecStart=/bin/true\n"


def test_drop_in_with_same_name_replaces_core_and_others_add(tmp_path: Path) -> None:
    core, drop = tmp_path / "units", tmp_path / "drop"
    core_web = write(core, "web.service", "[Unit]\nDescription=core\n" + SIMPLE)
    write(core, "db.service", SIMPLE)
    drop_web = write(drop, "web.service", "[Unit]\nDescription=drop-in\n" + SIMPLE)
    write(drop, "extra.service", SIMPLE)
    result = load_units(str(core), str(drop))
    assert result.ok and sorted(result.units) == ["db.service", "extra.service", "web.service"]
    web = result.units["web.service"]
    assert web.unit.description == "drop-in" and web.source is UnitSource.DROP_IN
    assert web.overrides == str(core_web) and web.path == str(drop_web)
    [override] = result.overrides
    assert override.log_line("cinit") == (
        f"cinit: drop-in override: web.service replaces {core_web} with {drop_web}"
    )
    assert override.to_event()["phase"] == "unit_overridden"
    assert result.units["extra.service"].source is UnitSource.DROP_IN
    assert result.units["db.service"].source is UnitSource.CORE


def test_missing_directories_contribute_nothing(tmp_path: Path) -> None:
    result = load_units(str(tmp_path / "nope"), str(tmp_path / "nope2"))
    assert result.ok and not result.units


def test_a_file_where_a_directory_should_be(tmp_path: Path) -> None:
    (tmp_path / "units").write_text("x")
    result = load_units(str(tmp_path / "units"), str(tmp_path / "d"))
    assert not result.ok and "not a directory" in result.errors[0].message


def test_non_unit_files_are_ignored_with_a_warning(tmp_path: Path) -> None:
    write(tmp_path / "u", "README.md", "hi")
    write(tmp_path / "u", "a.service", SIMPLE)
    result = load_units(str(tmp_path / "u"), str(tmp_path / "d"))
    assert result.ok and list(result.units) == ["a.service"]
    assert "not a .service, .socket, .target or .timer" in result.warnings[0].message
    assert result.ignored_files == (str(tmp_path / "u" / "README.md"),)
    assert not load_units(str(tmp_path / "u"), str(tmp_path / "d"), strict=True).ok


def test_every_bad_file_is_reported(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    write(drop, "a.service", "[Service]\nExecStart=/bin/true\nRestartSec=soon\n")
    write(drop, "b.service", "[Service]\nExecStart=/bin/true\nType=weird\n")
    (drop / "c.service").write_bytes(b"\x00\xff\xfe garbage")
    (drop / "d.service").mkdir()
    (drop / "e.service").write_bytes(b"[Unit]\nDescription=\xff\n")
    write(drop, "f.service", "[Service]\nExecStart=/bin/true\n" + "A" * 2_000_000 + "\n")
    write(drop, "ok.service", SIMPLE)
    result = load_units(str(tmp_path / "core"), str(drop))
    assert not result.ok
    paths = {os.path.basename(d.path) for d in result.errors}
    assert paths == {"a.service", "b.service", "c.service", "d.service", "e.service", "f.service"}
    assert "ok.service" in result.units


def test_strict_promotes_warnings_to_errors(tmp_path: Path) -> None:
    write(tmp_path / "u", "a.service", "[Service]\nExecStart=/bin/true\nNope=1\n")
    lax = load_units(str(tmp_path / "u"), str(tmp_path / "d"))
    assert lax.ok and len(lax.warnings) == 1
    strict = load_units(str(tmp_path / "u"), str(tmp_path / "d"), strict=True)
    assert not strict.ok and strict.errors[0].message.endswith("[--strict-units]")
    with pytest.raises(UnitError) as info:
        strict.raise_for_errors()
    assert "Nope" in str(info.value)


def test_cross_unit_errors_come_through_the_loader(tmp_path: Path) -> None:
    write(tmp_path / "u", "a.service", "[Unit]\nRequires=ghost.service\n" + SIMPLE)
    result = load_units(str(tmp_path / "u"), str(tmp_path / "d"))
    assert not result.ok
    [error] = result.errors
    assert "ghost.service" in error.message and error.line == 2


def test_start_and_stop_order(tmp_path: Path) -> None:
    write(tmp_path / "u", "a.service", "[Unit]\nAfter=b.service\n" + SIMPLE)
    write(tmp_path / "u", "b.service", "[Unit]\nAfter=c.service\n" + SIMPLE)
    write(tmp_path / "u", "c.service", SIMPLE)
    result = load_units(str(tmp_path / "u"), str(tmp_path / "d"))
    assert result.start_order() == ["c.service", "b.service", "a.service"]
    assert result.stop_order() == ["a.service", "b.service", "c.service"]


def test_render_keeps_the_order_of_mixed_conditions() -> None:
    text = (
        "[Unit]\nConditionUser=root\nConditionPathExists=!/x\nConditionUser=!bob\n"
        "ConditionEnvironment=A=1\n[Service]\nExecStart=/bin/echo 100%%\n"
    )
    unit = clean("a.service", text)
    again = clean("a.service", render_unit(unit))
    assert again == unit
    assert [c.kind for c in again.unit.conditions] == [
        ConditionKind.USER,
        ConditionKind.PATH_EXISTS,
        ConditionKind.USER,
        ConditionKind.ENVIRONMENT,
    ]


@pytest.mark.parametrize("value", ["journal", "kmsg", "journal+console", "syslog", "tty"])
def test_log_system_outputs_fall_back_to_inherit_with_a_warning(value: str) -> None:
    unit, diags = load("a.service", f"[Service]\nExecStart=/bin/true\nStandardOutput={value}\n")
    assert [d.severity for d in diags] == [Severity.WARNING] and diags[0].line == 3
    assert "using inherit" in diags[0].message
    assert unit.service.standard_output == Output(OutputTarget.INHERIT)


def test_unknown_escape_in_exec_line_is_a_warning() -> None:
    unit, diags = load("a.service", "[Service]\nExecStart=/bin/echo a\\db\n")
    assert [d.severity for d in diags] == [Severity.WARNING] and diags[0].line == 2
    assert unit.service.exec_start[0].words == ("/bin/echo", "a\\db")


def test_a_variable_that_expands_to_nothing_leaves_no_whitespace_at_the_ends() -> None:
    # Found by the render round-trip property: "x ${EMPTY}" must not keep its space.
    text = "[Service]\nType=forking\nPIDFile=/run/x.pid ${EMPTY}\nExecStart=/bin/true\n"
    unit, _ = load("f.service", text)
    assert unit.service is not None and unit.service.pid_file == "/run/x.pid"


# --- one load reads a repeated value once: every place still gets its own findings --------


def test_a_repeated_bad_value_is_reported_at_each_place(tmp_path: Path) -> None:
    write(tmp_path / "u", "a.service", SIMPLE + "RestartSec=soon\n")
    write(tmp_path / "u", "b.service", "[Unit]\nDescription=b\n\n" + SIMPLE + "RestartSec=soon\n")
    write(tmp_path / "u", "c.service", SIMPLE + "Restartsec=1\nRestartSec=soon\nRestartsec=1\n")
    result = load_units(str(tmp_path / "u"), str(tmp_path / "d"))
    found = [(os.path.basename(d.path), d.line, d.severity, d.section, d.directive)
             for d in result.diagnostics]  # fmt: skip
    assert found == [
        ("a.service", 3, Severity.ERROR, "Service", "RestartSec"),
        ("b.service", 6, Severity.ERROR, "Service", "RestartSec"),
        ("c.service", 3, Severity.WARNING, "Service", "Restartsec"),
        ("c.service", 4, Severity.ERROR, "Service", "RestartSec"),
        ("c.service", 5, Severity.WARNING, "Service", "Restartsec"),
    ]
    assert len({d.message for d in result.errors}) == 1
    assert result.units["b.service"].line_of("RestartSec") == 6


def test_a_repeated_warning_is_reported_for_each_unit(tmp_path: Path) -> None:
    for name in ("a.service", "b.service"):
        write(tmp_path / "u", name, SIMPLE + "StandardOutput=journal\n")
    result = load_units(str(tmp_path / "u"), str(tmp_path / "d"))
    assert [os.path.basename(d.path) for d in result.warnings] == ["a.service", "b.service"]
    assert all(d.line == 3 and d.directive == "StandardOutput" for d in result.warnings)


def test_a_specifier_value_is_read_for_each_unit(tmp_path: Path) -> None:
    body = "[Service]\nExecStart=/bin/run %n\nPIDFile=/run/%N.pid\nType=forking\n"
    for name in ("a.service", "b.service"):
        write(tmp_path / "u", name, body)
    result = load_units(str(tmp_path / "u"), str(tmp_path / "d"))
    assert result.ok
    for stem in ("a", "b"):
        service = result.units[f"{stem}.service"].service
        assert service is not None and service.pid_file == f"/run/{stem}.pid"
        assert service.exec_start[0].words == ("/bin/run", f"{stem}.service")


def test_shared_values_do_not_leak_between_units(tmp_path: Path) -> None:
    # Both units read "After=x.service" once; a reset in one must not empty the other's.
    write(tmp_path / "u", "x.service", SIMPLE)
    write(tmp_path / "u", "a.service", "[Unit]\nAfter=x.service\nAfter=\n" + SIMPLE)
    write(tmp_path / "u", "b.service", "[Unit]\nAfter=x.service\nAfter=x.service\n" + SIMPLE)
    result = load_units(str(tmp_path / "u"), str(tmp_path / "d"))
    assert result.units["a.service"].unit.after == ()
    assert result.units["b.service"].unit.after == ("x.service", "x.service")
    assert result.units["x.service"].unit.after == ()


def test_a_variable_is_expanded_against_the_loads_own_environment(tmp_path: Path) -> None:
    write(tmp_path / "u", "a.service", SIMPLE + "User=${WHO}\n")
    first = load_units(str(tmp_path / "u"), str(tmp_path / "d"), environ={"WHO": "ann"})
    second = load_units(str(tmp_path / "u"), str(tmp_path / "d"), environ={"WHO": "bob"})
    assert first.units["a.service"].service.user == "ann"  # type: ignore[union-attr]
    assert second.units["a.service"].service.user == "bob"  # type: ignore[union-attr]


def test_list_fields_accumulate_reset_and_accumulate_again() -> None:
    text = "[Unit]\nAfter=a.service\nAfter=b.service c.service\nAfter=\nAfter=d.service\n"
    assert service_unit(text + "After=e.service\n").after == ("d.service", "e.service")
    assert service_unit(text).after == ("d.service",)
    assert service_unit("[Unit]\nAfter=a.service\nAfter=b.service\nAfter=\n").after == ()


def service_unit(text: str):  # type: ignore[no-untyped-def]
    return clean("s.service", text + SIMPLE).unit


def test_a_load_past_its_shared_readings_bound_reads_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cinit.units import loader

    for index in range(6):
        body = f"[Unit]\nDescription=unit {index}\nAfter=x.service\n{SIMPLE}RestartSec=soon\n"
        write(tmp_path / "u", f"s{index}.service", body)
    write(tmp_path / "u", "x.service", SIMPLE)
    unbounded = load_units(str(tmp_path / "u"), str(tmp_path / "d"))
    monkeypatch.setattr(loader, "MAX_SHARED_READINGS", 2)
    bounded = load_units(str(tmp_path / "u"), str(tmp_path / "d"))
    assert bounded.units == unbounded.units and bounded.diagnostics == unbounded.diagnostics
    assert [d.line for d in bounded.errors] == [6] * 6


def test_directive_lines_use_the_directive_names_as_the_table_spells_them() -> None:
    unit = clean("a.service", "[Unit]\nAfter=b.service\n" + SIMPLE)
    assert unit.directive_lines == {"After": 2, "ExecStart": 4}


# --- numbers past int()'s digit limit; bugs in a parser (issue 13) ------------------------

HUGE = "9" * 4301  # one digit past what int() converts (sys.get_int_max_str_digits)


@pytest.mark.parametrize(
    ("name", "section", "key"),
    [
        ("a.service", "Unit", "StartLimitBurst"),
        ("a.service", "Service", "StartLimitBurst"),
        ("a.socket", "Socket", "Backlog"),
        ("a.socket", "Socket", "MaxConnections"),
        ("a.socket", "Socket", "TriggerLimitBurst"),
        ("a.socket", "Socket", "SocketMode"),  # octal: sevens
    ],
)
def test_a_number_of_4301_digits_is_an_error_at_its_line(name: str, section: str, key: str) -> None:
    body = SIMPLE if name.endswith(".service") else "[Socket]\nListenStream=80\n"
    value = HUGE.replace("9", "7") if key == "SocketMode" else HUGE
    _unit, diags = load(name, f"{body}[{section}]\n{key}={value}\n")
    [error] = [d for d in diags if d.severity is Severity.ERROR]
    assert (error.path, error.line, error.directive) == (f"/u/{name}", 4, key)
    assert "too large" in error.message or "larger than" in error.message
    assert len(error.format()) < 400  # the value is quoted cut short, not 4,301 digits


def test_leading_zeros_do_not_count_against_a_number() -> None:
    unit = service("StartLimitBurst=" + "0" * 5000 + "7")
    assert unit.unit.start_limit_burst == 7
    assert sock("ListenStream=80\nSocketMode=" + "0" * 5000 + "640").socket.socket_mode == 0o640


def test_a_huge_number_in_one_file_hides_nothing_of_the_others(tmp_path: Path) -> None:
    core = tmp_path / "core"
    write(core, "a.service", f"[Unit]\nStartLimitBurst={HUGE}\n" + SIMPLE)
    write(core, "b.service", "[Service]\nExecStart=/bin/true\nRestartSec=soon\n")
    write(core, "c.socket", f"[Socket]\nListenStream=80\nBacklog={HUGE}\nService=b.service\n")
    result = load_units(str(core), str(tmp_path / "drop"))
    found = {(os.path.basename(d.path), d.line) for d in result.errors}
    assert found == {("a.service", 2), ("b.service", 3), ("c.socket", 3)}


def test_a_parser_bug_is_reported_at_its_line_and_the_load_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cinit.units import loader, schema

    def broken(text: str) -> float:
        raise RuntimeError("parser bug\nsecond line")

    row = schema.DIRECTIVES[("Service", "RestartSec")]
    monkeypatch.setitem(schema.DIRECTIVES, ("Service", "RestartSec"), row.replace(parse=broken))
    core = tmp_path / "core"
    write(core, "a.service", SIMPLE + "RestartSec=1\n")
    write(core, "b.service", "[Service]\nExecStart=/bin/true\nType=weird\n")
    result = load_units(str(core), str(tmp_path / "drop"))
    by_file = {os.path.basename(d.path): d for d in result.errors}
    assert by_file.keys() == {"a.service", "b.service"}
    assert by_file["a.service"].line == 3
    assert "internal error: RuntimeError: parser bug second line" in by_file["a.service"].message

    # A bug outside any one value: that file is named, the others are still read.
    def broken_check(*args: object) -> None:
        raise RuntimeError("check bug")

    monkeypatch.setattr(loader, "check_service", broken_check)
    write(core, "a.service", SIMPLE)
    write(core, "c.socket", "[Socket]\nListenStream=80\nBacklog=x\n")
    result = load_units(str(core), str(tmp_path / "drop"))
    messages = sorted(d.format() for d in result.errors)
    assert any("a.service: error: cannot load this unit file" in m for m in messages), messages
    assert any("c.socket:3: error: " in m for m in messages), messages


# --- unit paths that are not regular files (issue 13) ---------------------------------------


@pytest.mark.timeout(30)  # before the fix, open() of the FIFO waited for a writer forever
def test_a_fifo_socket_device_or_directory_named_as_a_unit_is_an_error(tmp_path: Path) -> None:
    import socket

    core, drop = tmp_path / "core", tmp_path / "drop"
    write(core, "ok.service", SIMPLE)
    os.mkfifo(core / "fifo.service")
    drop.mkdir()
    os.mkfifo(drop / "fifo.socket")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(core / "sock.service"))
    (core / "dev.service").symlink_to("/dev/zero")
    (core / "masked.service").symlink_to("/dev/null")  # systemd's mask, not a unit file
    (core / "dir.service").mkdir()
    target = write(tmp_path / "elsewhere", "linked.txt", SIMPLE)
    (core / "linked.service").symlink_to(target)  # a symlink to a regular file is fine
    try:
        result = load_units(str(core), str(drop))
    finally:
        listener.close()
    found = {os.path.basename(d.path): d.message for d in result.errors}
    assert result.masked == {"masked.service": str(core / "masked.service")}
    assert found == {
        "fifo.service": "is a FIFO (named pipe), not a unit file (a unit file is a regular file)",
        "fifo.socket": "is a FIFO (named pipe), not a unit file (a unit file is a regular file)",
        "sock.service": "is a socket, not a unit file (a unit file is a regular file)",
        "dev.service": "is a character device, not a unit file (a unit file is a regular file)",
        "dir.service": "is a directory, not a unit file (a unit file is a regular file)",
    }
    assert all(d.path.startswith(str(tmp_path)) for d in result.errors)
    assert sorted(result.units) == ["linked.service", "ok.service"]


def test_exit_status_lines_merge_and_an_empty_one_resets() -> None:
    # systemd.service(5): "may appear more than once, in which case the lists are merged".
    unit = clean(
        "app.service",
        "[Service]\nExecStart=/x\nSuccessExitStatus=42\nSuccessExitStatus=43 SIGUSR1\n"
        "RestartPreventExitStatus=1\nRestartPreventExitStatus=\nRestartPreventExitStatus=2\n"
        "RestartForceExitStatus=SIGHUP\nRestartForceExitStatus=7\n",
    )
    service = unit.service
    assert service.success_exit_status.codes == {42, 43}
    assert service.success_exit_status.signals == {signal.SIGUSR1}
    assert service.restart_prevent_exit_status.codes == {2}  # the empty line reset it
    assert service.restart_force_exit_status.codes == {7}
    assert service.restart_force_exit_status.signals == {signal.SIGHUP}
