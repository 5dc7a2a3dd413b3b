"""The unit language of issue 15 part 1: Alias= and alias links, templates and instances,
specifiers, `NAME.d/*.conf` snippets, masks."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cinit.units import Severity, load_units
from cinit.units.loader import load_unit_dirs
from cinit.units.snippets import snippet_stems
from cinit.units.specifiers import HostFacts

SIMPLE = "[Service]\nExecStart=/bin/sleep 30\n"
FACTS = HostFacts(
    hostname="box.example.org",
    machine_id="0123456789abcdef0123456789abcdef",
    boot_id="fedcba9876543210fedcba9876543210",
    kernel_release="6.1.0-test",
    architecture="x86-64",
)


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


def load(tmp_path: Path, strict: bool = False):  # type: ignore[no-untyped-def]
    return load_units(str(tmp_path / "u"), str(tmp_path / "d"), strict=strict, facts=lambda: FACTS)


def messages(result, severity: Severity | None = None) -> list[str]:  # type: ignore[no-untyped-def]
    return [d.format() for d in result.diagnostics if severity in (None, d.severity)]


# --- Alias= and alias links ---------------------------------------------------------------

RSYSLOG = """[Unit]
Description=System Logging Service
Requires=syslog.socket

[Service]
Type=notify
ExecStart=/usr/sbin/rsyslogd -n -iNONE

[Install]
WantedBy=multi-user.target
Alias=syslog.service
"""
SYSLOG_SOCKET = "[Socket]\nListenDatagram=/run/systemd/journal/syslog\n"


def test_syslog_socket_activates_rsyslog_through_its_alias(tmp_path: Path) -> None:
    write(tmp_path / "u", "rsyslog.service", RSYSLOG)
    write(tmp_path / "u", "syslog.socket", SYSLOG_SOCKET)
    write(tmp_path / "u", "web.service", "[Unit]\nAfter=syslog.service\n" + SIMPLE)
    result = load(tmp_path, strict=True)
    assert result.ok, messages(result)
    assert sorted(result.units) == ["rsyslog.service", "syslog.socket", "web.service"]
    assert result.graph.activates("syslog.socket") == "rsyslog.service"
    assert result.units["syslog.socket"].socket.service == "rsyslog.service"
    assert result.units["web.service"].unit.after == ("rsyslog.service",)
    assert "rsyslog.service" in result.graph.ordered_after("web.service")
    assert result.aliases == {"syslog.service": "rsyslog.service"}
    assert result.units["rsyslog.service"].aliases == ("syslog.service",)
    assert result.resolve("syslog.service") == "rsyslog.service"
    assert result.resolve("nothing.service") is None


def test_an_alias_link_is_the_unit_it_links_to_not_a_second_unit(tmp_path: Path) -> None:
    write(tmp_path / "u", "x.service", SIMPLE)
    os.symlink("x.service", tmp_path / "u" / "y.service")
    write(tmp_path / "d", "z.service", "[Unit]\nRequires=y.service\nAfter=y.service\n" + SIMPLE)
    result = load(tmp_path, strict=True)
    assert result.ok, messages(result)
    assert sorted(result.units) == ["x.service", "z.service"]
    assert result.units["z.service"].unit.requires == ("x.service",)
    assert result.graph.requires("z.service") == {"x.service"}
    assert result.units["x.service"].aliases == ("y.service",)


def test_a_link_to_a_file_elsewhere_loads_it_under_the_target_name(tmp_path: Path) -> None:
    # /etc/systemd/system/syslog.service -> /lib/systemd/system/rsyslog.service, copied alone.
    target = write(tmp_path / "lib", "rsyslog.service", RSYSLOG)
    write(tmp_path / "u", "syslog.socket", SYSLOG_SOCKET)
    os.symlink(target, tmp_path / "u" / "syslog.service")
    result = load(tmp_path)
    assert result.ok, messages(result)
    assert sorted(result.units) == ["rsyslog.service", "syslog.socket"]
    assert result.units["rsyslog.service"].path == str(tmp_path / "u" / "syslog.service")


def test_aliases_that_cannot_be_used_are_warnings_at_their_line(tmp_path: Path) -> None:
    write(tmp_path / "u", "a.service", SIMPLE + "[Install]\nAlias=b.service\n")
    write(tmp_path / "u", "b.service", SIMPLE + "[Install]\nAlias=a.socket\n")
    write(tmp_path / "u", "c.service", SIMPLE + "[Install]\nAlias=shared.service\n")
    write(tmp_path / "u", "d.service", SIMPLE + "[Install]\nAlias=shared.service\n")
    result = load(tmp_path)
    found = messages(result, Severity.WARNING)
    assert any("a.service:4: warning: Alias=b.service: a unit of that name" in m for m in found)
    assert any("b.service:4: warning: Alias=a.socket is not a .service name" in m for m in found)
    assert any(
        "d.service:4: warning: Alias=shared.service is already an alias of c.service" in m
        for m in found
    ), found
    assert result.resolve("shared.service") == "c.service"
    assert not load(tmp_path, strict=True).ok


# --- templates and instances --------------------------------------------------------------

TEMPLATE = """[Unit]
Description=cluster %i
[Service]
ExecStart=/bin/echo %i %I %p %P %n %N %j %J %f
"""


def test_a_template_is_never_a_unit_and_an_instance_link_makes_one(tmp_path: Path) -> None:
    write(tmp_path / "u", "pg@.service", TEMPLATE)
    os.symlink("pg@.service", tmp_path / "u" / "pg@15-main.service")
    result = load(tmp_path, strict=True)
    assert result.ok, messages(result)
    assert list(result.units) == ["pg@15-main.service"]
    unit = result.units["pg@15-main.service"]
    assert unit.template == "pg@.service" and unit.path == str(tmp_path / "u" / "pg@.service")
    assert unit.unit.description == "cluster 15-main"
    assert unit.service.exec_start[0].words == (
        "/bin/echo",
        "15-main",
        "15/main",
        "pg",
        "pg",
        "pg@15-main.service",
        "pg@15-main",
        "pg",
        "pg",
        "/15/main",
    )
    assert result.templates == {"pg@.service": str(tmp_path / "u" / "pg@.service")}


def test_instances_come_from_dependencies_not_from_ordering_alone(tmp_path: Path) -> None:
    write(tmp_path / "u", "getty@.service", "[Unit]\nWants=child@%i.service\n" + SIMPLE)
    write(tmp_path / "u", "child@.service", "[Service]\nExecStart=/bin/echo child %i\n")
    write(tmp_path / "u", "order@.service", SIMPLE)
    write(
        tmp_path / "u",
        "main.service",
        "[Unit]\nRequires=getty@tty1.service\nAfter=getty@tty1.service order@x.service\n" + SIMPLE,
    )
    result = load(tmp_path)
    assert sorted(result.units) == [
        "child@tty1.service",
        "getty@tty1.service",
        "main.service",
    ], messages(result)
    assert result.units["child@tty1.service"].service.exec_start[0].words[-1] == "tty1"
    assert result.graph.ordered_after("main.service") == {"getty@tty1.service"}
    assert any("order@x.service, which is not loaded" in m for m in messages(result))


def test_a_socket_service_instance_and_an_instance_file_of_its_own(tmp_path: Path) -> None:
    write(tmp_path / "u", "app@.service", TEMPLATE)
    write(tmp_path / "u", "app.socket", "[Socket]\nListenStream=9999\nService=app@one.service\n")
    write(tmp_path / "u", "app@two.service", "[Service]\nExecStart=/bin/echo own file %i\n")
    result = load(tmp_path, strict=True)
    assert result.ok, messages(result)
    assert result.graph.activates("app.socket") == "app@one.service"
    own = result.units["app@two.service"]
    assert own.template == "" and own.service.exec_start[0].words[-1] == "two"


def test_links_to_files_that_do_not_exist_are_warnings(tmp_path: Path) -> None:
    # systemd: units that are not found; a package removed, its enable links left behind.
    (tmp_path / "u").mkdir()
    os.symlink("/nowhere/pg@.service", tmp_path / "u" / "pg@15-main.service")
    os.symlink("/nowhere/rsyslog.service", tmp_path / "u" / "syslog.service")
    result = load(tmp_path)
    assert result.ok and not result.units
    found = messages(result, Severity.WARNING)
    assert (
        f"{tmp_path}/u/pg@15-main.service: warning: pg@15-main.service links to "
        "pg@.service, which does not exist: ignored" in found
    ), found
    assert any(
        "syslog.service links to rsyslog.service, which does not exist" in m for m in found
    ), found


def test_an_instance_link_to_a_template_outside_the_directories(tmp_path: Path) -> None:
    template = write(tmp_path / "elsewhere", "pg@.service", TEMPLATE)
    (tmp_path / "u").mkdir()
    os.symlink(template, tmp_path / "u" / "pg@15-main.service")
    result = load(tmp_path, strict=True)
    assert result.ok, messages(result)
    assert result.units["pg@15-main.service"].unit.description == "cluster 15-main"


def test_a_template_without_instances_is_still_checked(tmp_path: Path) -> None:
    write(tmp_path / "u", "x@.service", "[Service]\nExecStart=/bin/true\nTyp=simple\n")
    write(tmp_path / "u", "y@.service", "[Service]\nExecStart=/bin/true\nTyp=simple\n")
    os.symlink("y@.service", tmp_path / "u" / "y@a.service")
    os.symlink("y@.service", tmp_path / "u" / "y@b.service")
    result = load(tmp_path)
    found = messages(result, Severity.WARNING)
    assert sum("x@.service:3: warning: [Service] unknown directive Typ=" in m for m in found) == 1
    # Two instances of one template: its findings once.
    assert sum("y@.service:3: warning:" in m for m in found) == 1, found


# --- specifiers ---------------------------------------------------------------------------


def test_every_specifier_for_a_system_unit(tmp_path: Path) -> None:
    letters = "t S C L E T V H l m b v a u U g G h s y Y %"
    body = (
        "[Service]\nExecStart=/bin/echo "
        + " ".join("%%" if c == "%" else f"%{c}" for c in letters.split())
        + "\n"
    )
    path = write(tmp_path / "u", "web.service", body)
    result = load(tmp_path, strict=True)
    assert result.ok, messages(result)
    words = result.units["web.service"].service.exec_start[0].words[1:]
    assert dict(zip(letters.split(), words, strict=True)) == {
        "t": "/run",
        "S": "/var/lib",
        "C": "/var/cache",
        "L": "/var/log",
        "E": "/etc",
        "T": "/tmp",
        "V": "/var/tmp",
        "H": "box.example.org",
        "l": "box",
        "m": "0123456789abcdef0123456789abcdef",
        "b": "fedcba9876543210fedcba9876543210",
        "v": "6.1.0-test",
        "a": "x86-64",
        "u": "root",
        "U": "0",
        "g": "root",
        "G": "0",
        "h": "/root",
        "s": "/bin/sh",
        "y": str(path),
        "Y": str(tmp_path / "u"),
        "%": "%",
    }


def test_specifiers_expand_in_each_word_of_a_command_and_of_environment(tmp_path: Path) -> None:
    name = "t@a\\x20b.service"
    write(tmp_path / "u", name, '[Service]\nExecStart=/bin/echo %I "x %I"\nEnvironment=V=%I\n')
    service = load(tmp_path, strict=True).units[name].service
    assert service.exec_start[0].words == ("/bin/echo", "a b", "x a b")
    assert service.environment == (("V", "a b"),)


def test_specifiers_that_cannot_be_expanded_are_warnings_left_as_is(tmp_path: Path) -> None:
    write(tmp_path / "u", "a.service", "[Service]\nExecStart=/bin/echo %m %z\n")
    write(tmp_path / "u", "b@x\\xzz.service", "[Service]\nExecStart=/bin/echo %I\n")
    result = load_units(
        str(tmp_path / "u"), str(tmp_path / "d"), facts=lambda: HostFacts(hostname="h")
    )
    found = messages(result, Severity.WARNING)
    assert any(
        "a.service:2: warning: [Service] ExecStart=/bin/echo %m %z: no value for '%m' "
        "(/etc/machine-id) left as is" in m
        for m in found
    ), found
    assert any("unsupported specifier '%z' left as is" in m for m in found), found
    assert any("b@x\\xzz.service:2: warning:" in m and "%I" in m for m in found), found
    assert result.units["a.service"].service.exec_start[0].words == ("/bin/echo", "%m", "%z")


ESCAPED = ["foo-bar", "a\\x2db-c", "15-main", "x\\x20y", "-", "dev-disk-by\\x2duuid-1"]


@pytest.mark.skipif(shutil.which("systemd-escape") is None, reason="no systemd-escape here")
@pytest.mark.parametrize("instance", ESCAPED)
def test_unescaping_agrees_with_systemd_escape(tmp_path: Path, instance: str) -> None:
    name = f"t@{instance}.service"
    write(tmp_path / "u", name, "[Service]\nExecStart=/bin/echo %I\nExecStartPre=/bin/echo %f\n")
    result = load(tmp_path)
    service = result.units[name].service

    def oracle(*args: str) -> str:
        done = subprocess.run(
            ["systemd-escape", "-u", *args, "--", instance],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return done.stdout.rstrip("\n")

    # Expanded in each word once split, as systemd does: one argument, spaces and all.
    assert service.exec_start[0].words[1:] == (oracle(),)
    assert service.exec_start_pre[0].words[1:] == (oracle("-p"),)


# --- snippets -----------------------------------------------------------------------------


def test_snippets_merge_in_file_name_order_across_directories(tmp_path: Path) -> None:
    write(tmp_path / "u", "web.service", "[Service]\nEnvironment=A=1\nExecStart=/bin/old\n")
    write(tmp_path / "u" / "web.service.d", "20-env.conf", "[Service]\nEnvironment=C=3\n")
    write(tmp_path / "u" / "web.service.d", "30-low.conf", "[Service]\nEnvironment=LOW=1\n")
    write(
        tmp_path / "d" / "web.service.d",
        "10-exec.conf",
        "[Service]\nEnvironment=B=2\nExecStart=\nExecStart=/bin/new --flag\n",
    )
    write(tmp_path / "d" / "web.service.d", "30-low.conf", "[Service]\nEnvironment=HIGH=1\n")
    result = load(tmp_path, strict=True)
    assert result.ok, messages(result)
    unit = result.units["web.service"]
    assert unit.service.environment == (("A", "1"), ("B", "2"), ("C", "3"), ("HIGH", "1"))
    assert [c.words for c in unit.service.exec_start] == [("/bin/new", "--flag")]
    assert unit.snippets == (
        str(tmp_path / "d/web.service.d/10-exec.conf"),
        str(tmp_path / "u/web.service.d/20-env.conf"),
        str(tmp_path / "d/web.service.d/30-low.conf"),
    )
    assert unit.path_of("ExecStart") == str(tmp_path / "d/web.service.d/10-exec.conf")
    assert result.snippet_lines("cinit")[0] == (
        f"cinit: unit web.service: applied snippet {tmp_path}/d/web.service.d/10-exec.conf"
    )


def test_a_snippet_finding_names_the_snippet_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "u", "web.service", SIMPLE)
    write(
        tmp_path / "u" / "web.service.d",
        "x.conf",
        "[Unit]\nRequires=gone.service\n[Service]\nRestart=sometimes\n",
    )
    result = load(tmp_path)
    found = messages(result, Severity.ERROR)
    snippet = tmp_path / "u/web.service.d/x.conf"
    assert any(m.startswith(f"{snippet}:4: error: [Service] Restart=sometimes") for m in found)
    assert (
        f"{snippet}:2: error: web.service: Requires= names gone.service, which is not loaded"
        in found
    ), found


def test_template_prefix_and_type_snippets_apply_most_specific_first(tmp_path: Path) -> None:
    write(tmp_path / "u", "pg-db@.service", SIMPLE)
    os.symlink("pg-db@.service", tmp_path / "u" / "pg-db@main.service")
    os.symlink("pg-db@.service", tmp_path / "u" / "pg-db@other.service")
    write(tmp_path / "u" / "pg-db@.service.d", "a.conf", "[Service]\nEnvironment=T=%i\n")
    write(tmp_path / "u" / "pg-db@main.service.d", "a.conf", "[Service]\nEnvironment=I=%i\n")
    write(tmp_path / "u" / "pg-.service.d", "b.conf", "[Service]\nEnvironment=P=1\n")
    write(tmp_path / "u" / "service.d", "c.conf", "[Service]\nEnvironment=S=1\n")
    result = load(tmp_path, strict=True)
    assert result.ok, messages(result)
    main = result.units["pg-db@main.service"].service
    other = result.units["pg-db@other.service"].service
    assert main.environment == (("I", "main"), ("P", "1"), ("S", "1"))
    assert other.environment == (("T", "other"), ("P", "1"), ("S", "1"))


def test_snippets_of_an_alias_name_apply_to_the_unit(tmp_path: Path) -> None:
    write(tmp_path / "u", "rsyslog.service", RSYSLOG)
    write(tmp_path / "u", "syslog.socket", SYSLOG_SOCKET)
    write(tmp_path / "d" / "syslog.service.d", "x.conf", "[Service]\nEnvironment=VIA=alias\n")
    os.symlink("rsyslog.service", tmp_path / "u" / "rlog.service")
    write(tmp_path / "u" / "rlog.service.d", "y.conf", "[Service]\nEnvironment=VIA2=link\n")
    result = load(tmp_path, strict=True)
    assert result.ok, messages(result)
    unit = result.units["rsyslog.service"]
    assert unit.service.environment == (("VIA", "alias"), ("VIA2", "link"))
    assert not messages(result, Severity.HINT)


def test_snippet_stems() -> None:
    assert snippet_stems("a-b-c@i.service", ["x.service"]) == [
        "a-b-c@i.service",
        "x.service",
        "a-b-c@.service",
        "a-b-.service",
        "a-.service",
        "service",
    ]
    assert snippet_stems("web.socket") == ["web.socket", "socket"]


def test_snippet_directories_are_not_unit_files_and_strays_are_hints(tmp_path: Path) -> None:
    write(tmp_path / "u", "web.service", SIMPLE)
    write(tmp_path / "u" / "web.service.d", "README", "notes\n")
    write(tmp_path / "u" / "gone.service.d", "x.conf", "[Service]\nEnvironment=A=1\n")
    result = load(tmp_path, strict=True)
    assert result.ok, messages(result)
    hints = messages(result, Severity.HINT)
    assert f"{tmp_path}/u/web.service.d/README: hint: ignored: not a .conf snippet" in hints
    assert any(
        "gone.service.d: hint: snippets for gone.service, which is not loaded" in m for m in hints
    ), hints
    assert not any("not a .service or .socket" in m for m in messages(result))


def test_a_unit_in_a_higher_directory_keeps_the_lower_directorys_snippets(tmp_path: Path) -> None:
    # /etc/systemd/system/x.service replaces /lib's; /lib's x.service.d/ still applies.
    write(tmp_path / "lib", "x.service", "[Service]\nExecStart=/bin/lib\n")
    write(tmp_path / "lib" / "x.service.d", "a.conf", "[Service]\nEnvironment=LIB=1\n")
    write(tmp_path / "etc", "x.service", "[Service]\nExecStart=/bin/etc\n")
    result = load_unit_dirs([str(tmp_path / "etc"), str(tmp_path / "lib")], facts=lambda: FACTS)
    assert result.ok, messages(result)
    unit = result.units["x.service"]
    assert unit.service.exec_start[0].words == ("/bin/etc",)
    assert unit.service.environment == (("LIB", "1"),)
    assert [o.name for o in result.overrides] == ["x.service"]


def test_a_mask_in_a_higher_directory_hides_the_unit(tmp_path: Path) -> None:
    write(tmp_path / "lib", "x.service", SIMPLE)
    write(tmp_path / "lib", "y.service", SIMPLE)
    (tmp_path / "etc").mkdir()
    os.symlink("/dev/null", tmp_path / "etc" / "x.service")
    result = load_unit_dirs([str(tmp_path / "etc"), str(tmp_path / "lib")], facts=lambda: FACTS)
    assert sorted(result.units) == ["y.service"]
    assert result.masked == {"x.service": str(tmp_path / "etc" / "x.service")}
    assert any("x.service is masked" in m for m in messages(result, Severity.HINT))


def test_instances_asked_for_by_name_come_from_their_templates(tmp_path: Path) -> None:
    # `systemctl start greet@work` of an instance no link names (issue 16): made on demand,
    # with the instances its file names in turn; no template: nothing is made.
    write(tmp_path / "u", "greet@.service", "[Unit]\nWants=child@%i.service\n" + SIMPLE)
    write(tmp_path / "u", "child@.service", "[Service]\nExecStart=/bin/echo child %i\n")
    write(tmp_path / "u", "echo@.socket", "[Socket]\nListenStream=/run/echo-%i.sock\n")
    write(tmp_path / "u", "echo@.service", SIMPLE)
    write(tmp_path / "u", "tick@.timer", "[Timer]\nOnActiveSec=1h\n")
    write(tmp_path / "u", "tick@.service", "[Service]\nExecStart=/bin/echo tick %i\n")
    assert not load(tmp_path).units
    result = load_units(
        str(tmp_path / "u"),
        str(tmp_path / "d"),
        facts=lambda: FACTS,
        instances=["greet@work.service", "echo@a.socket", "tick@b.timer", "nosuch@x.service"],
    )
    assert result.ok, messages(result)
    assert sorted(result.units) == [
        "child@work.service",
        "echo@a.service",  # what the socket activates, and the timer: their instances too
        "echo@a.socket",
        "greet@work.service",
        "tick@b.service",
        "tick@b.timer",
    ]
    assert result.units["greet@work.service"].template == "greet@.service"
    assert result.units["child@work.service"].service.exec_start[0].words[-1] == "work"
