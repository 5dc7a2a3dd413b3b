"""Value forms of the execution environment and socket options (`cinit.units.exec_values`),
and what a unit file with a bad one gets: an error at its file and line, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cinit.units import exec_values, parse_unit
from cinit.units.diagnostics import Severity, ValueFormError
from cinit.units.model import RLIMIT_INFINITY, Preserve, ResourceLimit

INF = RLIMIT_INFINITY


@pytest.mark.parametrize(
    ("text", "size"),
    [("0", 0), ("65536", 65536), ("64K", 65536), ("8M", 8 << 20), ("1.5K", 1536), ("2G", 2 << 30),
     ("1E", 1 << 60), (" 4K ", 4096), ("10B", 10)],
)  # fmt: skip
def test_sizes_are_powers_of_1024(text: str, size: int) -> None:
    assert exec_values.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "K", "8Q", "-1", "1..5K", "8 M", "17E", "1e3", "٣"])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(ValueFormError, match="invalid size"):
        exec_values.parse_size(text)


@pytest.mark.parametrize(
    ("resource", "text", "limit"),
    [
        ("NOFILE", "65535", (65535, 65535)),
        ("NOFILE", "1000:2000", (1000, 2000)),
        ("NOFILE", "1024:infinity", (1024, INF)),
        ("NOFILE", "infinity", (INF, INF)),
        ("CORE", "infinity", (INF, INF)),
        ("CORE", "0", (0, 0)),
        ("AS", "1G:2G", (1 << 30, 2 << 30)),
        ("CPU", "1h", (3600, 3600)),
        ("CPU", "1.5", (2, 2)),  # whole seconds, rounded up as systemd does
        ("RTTIME", "100", (100, 100)),  # a bare number is microseconds here
        ("RTTIME", "1s", (1_000_000, 1_000_000)),
        ("NICE", "-5", (25, 25)),  # a nice level, stored as the kernel's 20 - N
        ("NICE", "+19", (1, 1)),
        ("NICE", "40", (40, 40)),  # raw
        ("NPROC", "500:1000", (500, 1000)),
    ],
)
def test_limits_read_as_systemd_exec_says(resource: str, text: str, limit: tuple[int, int]) -> None:
    assert exec_values.parse_limit(resource, text) == ResourceLimit(*limit)


@pytest.mark.parametrize(
    ("resource", "text", "why"),
    [
        ("NOFILE", "2000:1000", "soft limit exceeds"),
        ("NOFILE", "infinity:10", "soft limit exceeds"),
        ("NOFILE", "many", "expected a number"),
        ("NOFILE", "1K", "expected a number"),  # counts take no suffix
        ("NICE", "-21", "not in -20..19"),
        ("NICE", "41", "at most 40"),
        ("AS", "lots", "invalid size"),
    ],
)
def test_bad_limits_say_why(resource: str, text: str, why: str) -> None:
    with pytest.raises(ValueFormError, match=why):
        exec_values.parse_limit(resource, text)


def test_directory_names_are_relative_without_dot_segments() -> None:
    assert exec_values.parse_directory_names("nginx php/fpm") == ["nginx", "php/fpm"]
    for bad in ("/run/x", "../x", "a/../b", "a//b", "./a", "a:b"):
        with pytest.raises(ValueFormError):
            exec_values.parse_directory_names(bad)


def test_nice_and_oom_score_ranges() -> None:
    assert exec_values.parse_nice("-20") == -20 and exec_values.parse_nice("+19") == 19
    assert exec_values.parse_oom_score_adjust("-1000") == -1000
    for parse, bad in (
        (exec_values.parse_nice, "20"),
        (exec_values.parse_oom_score_adjust, "1001"),
    ):
        with pytest.raises(ValueFormError):
            parse(bad)


def test_a_service_reads_every_exec_environment_directive() -> None:
    text = """[Service]
ExecStart=/bin/true
RuntimeDirectory=a b/c
RuntimeDirectory=d
RuntimeDirectoryMode=2755
RuntimeDirectoryPreserve=restart
StateDirectory=s
LogsDirectoryMode=0700
LimitNOFILE=65535
LimitMEMLOCK=infinity
UMask=007
Nice=5
OOMScoreAdjust=-900
IgnoreSIGPIPE=no
SyslogIdentifier=web
"""
    unit, diags = parse_unit("a.service", text, environ={}, hostname="h")
    assert diags == []
    assert unit is not None and unit.service is not None
    svc = unit.service
    assert svc.runtime_directory == ("a", "b/c", "d")
    assert svc.runtime_directory_mode == 0o2755
    assert svc.runtime_directory_preserve is Preserve.RESTART
    assert svc.state_directory == ("s",) and svc.logs_directory_mode == 0o700
    assert svc.limits() == {
        "NOFILE": ResourceLimit(65535, 65535),
        "MEMLOCK": ResourceLimit(INF, INF),
    }
    assert (svc.umask, svc.nice, svc.oom_score_adjust) == (0o007, 5, -900)
    assert svc.ignore_sigpipe is False and svc.syslog_identifier == "web"


def test_the_defaults_are_systemds() -> None:
    unit, _ = parse_unit("a.service", "[Service]\nExecStart=/bin/true\n", environ={})
    assert unit is not None and unit.service is not None
    svc = unit.service
    assert svc.umask == 0o022 and svc.ignore_sigpipe is True
    assert svc.nice is None and svc.oom_score_adjust is None and svc.limits() == {}


def test_an_empty_assignment_resets_the_directory_list() -> None:
    text = (
        "[Service]\nExecStart=/bin/true\nRuntimeDirectory=a\nRuntimeDirectory=\n"
        "RuntimeDirectory=b\n"
    )
    unit, _ = parse_unit("a.service", text, environ={})
    assert unit is not None and unit.service is not None
    assert unit.service.runtime_directory == ("b",)


def test_socket_options_are_read() -> None:
    text = """[Socket]
ListenDatagram=/run/x.sock
PassCredentials=yes
PassSecurity=true
ReceiveBuffer=8M
SendBuffer=64K
DirectoryMode=0700
Symlinks=/run/a /run/b
"""
    unit, diags = parse_unit("x.socket", text, environ={})
    assert diags == []
    assert unit is not None and unit.socket is not None
    sock = unit.socket
    assert (sock.pass_credentials, sock.pass_security) == (True, True)
    assert (sock.receive_buffer, sock.send_buffer) == (8 << 20, 64 << 10)
    assert sock.directory_mode == 0o700 and sock.symlinks == ("/run/a", "/run/b")


def test_socket_option_combinations_systemd_refuses_are_diagnosed() -> None:
    text = "[Socket]\nListenStream=80\nListenStream=/run/a\nListenStream=/run/b\nSymlinks=/run/l\n"
    _, diags = parse_unit("x.socket", text, path="/u/x.socket", environ={})
    [diag] = diags
    assert diag.severity is Severity.WARNING and diag.line == 5
    assert "Symlinks= needs exactly one unix socket path" in diag.message
    text = "[Socket]\nListenStream=80\nSocketProtocol=udplite\n"
    _, diags = parse_unit("x.socket", text, path="/u/x.socket", environ={})
    assert [(d.severity, d.line) for d in diags] == [(Severity.ERROR, 3)]


def test_not_applied_directives_are_one_note_at_the_first_of_them() -> None:
    text = (
        "[Service]\nExecStart=/bin/true\nPrivateTmp=yes\nProtectSystem=full\n"
        "PrivateTmp=no\nTasksMax=10\n"
    )
    _, diags = parse_unit("a.service", text, path="/u/a.service", environ={})
    [note] = diags
    assert note.severity is Severity.NOTE and note.line == 3
    assert note.format() == (
        "/u/a.service:3: note: not applied in a container (accepted, see docs/directives.md): "
        "PrivateTmp=, ProtectSystem=, TasksMax="
    )


def test_validate_names_file_line_and_directive_of_a_bad_value(tmp_path: Path) -> None:
    units = tmp_path / "units"
    units.mkdir()
    (units / "web.service").write_text(
        "[Service]\nExecStart=/bin/true\nLimitNOFILE=lots\nRuntimeDirectory=/abs\n"
        "ProtectSystem=strict\n"
    )
    argv = [
        sys.executable, "-m", "cinit", "validate", "--units", str(units),
        "--drop-in", str(tmp_path / "none"), "--no-host-checks",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    assert (
        f"{units}/web.service:3: error: [Service] LimitNOFILE=lots: invalid limit 'lots': "
        "expected a number or infinity"
    ) in lines, lines
    assert any(
        line.startswith(f"{units}/web.service:4: error: [Service] RuntimeDirectory=/abs")
        for line in lines
    ), lines
    assert f"{units}/web.service:5: note: not applied" in done.stderr
    assert "1 notes" in done.stdout and "Traceback" not in done.stderr


def test_a_runtime_directory_inside_cinits_own_is_an_error() -> None:
    text = "[Service]\nExecStart=/bin/true\nRuntimeDirectory=app cinit/sub\n"
    _, diags = parse_unit("a.service", text, path="/u/a.service", environ={})
    [diag] = diags
    assert (diag.severity, diag.line) == (Severity.ERROR, 3)
    assert "inside cinit's own runtime directory /run/cinit" in diag.message


def test_a_snippet_resets_and_adds_exec_directories_and_its_not_applied_note_names_it() -> None:
    text = "[Service]\nExecStart=/bin/true\nRuntimeDirectory=a b\nLimitNOFILE=100\n"
    snippet = ("/u/a.service.d/10-local.conf", "[Service]\nRuntimeDirectory=\nRuntimeDirectory=c\n"
               "PrivateTmp=yes\nLimitNOFILE=200:300\n")  # fmt: skip
    unit, diags = parse_unit("a.service", text, path="/u/a.service", environ={}, snippets=[snippet])
    assert unit is not None and unit.service is not None
    assert unit.service.runtime_directory == ("c",)
    assert unit.service.limit_nofile == ResourceLimit(200, 300)
    [note] = diags
    assert (note.severity, note.path, note.line) == (Severity.NOTE, snippet[0], 4)
