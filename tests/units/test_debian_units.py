"""The unit files Debian 12 packages ship (issue 15), read unchanged from tests/data/debian/
(nginx, apache2, redis-server, openssh-server, cron, rsyslog + systemd's syslog.socket,
memcached, haproxy, php8.2-fpm, postgresql, dbus; taken with `apt-get download` and
`dpkg-deb -x`, not edited).

What this part of issue 15 owes them: the execution environment and socket options they set
are read as typed values, the sandboxing and resource-control directives are accepted and
listed once per unit as a `note` (never a warning), and nothing they say about those is a
warning. The whole set passes --strict-units.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from cinit.units import load_units, schema
from cinit.units.diagnostics import Severity
from cinit.units.loader import UnitSet
from cinit.units.model import Preserve, ResourceLimit

DEBIAN = Path(__file__).resolve().parents[1] / "data" / "debian"

# Directives this part of the issue answers for: a warning or error about one is a failure.
OWN = {name for _section, name in schema.NOT_APPLIED} | {
    name
    for (_section, name), row in schema.DIRECTIVES.items()
    if row.field.startswith(("limit_", "runtime_directory", "state_directory"))
    or name
    in {
        "UMask",
        "Nice",
        "OOMScoreAdjust",
        "IgnoreSIGPIPE",
        "SyslogIdentifier",
        "PassCredentials",
        "PassSecurity",
        "ReceiveBuffer",
        "SendBuffer",
        "SocketProtocol",
        "DirectoryMode",
        "Symlinks",
        "Documentation",
    }
}


@pytest.fixture(scope="module")
def debian(tmp_path_factory: pytest.TempPathFactory) -> UnitSet:
    empty = tmp_path_factory.mktemp("no-drop-ins")
    return load_units(str(DEBIAN), str(empty))


def _assignments(path: Path) -> list[tuple[str, int]]:
    """(directive, line) of every assignment in a unit file (comments and sections skipped)."""
    found = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = re.match(r"([A-Za-z]+)=", line)
        if match:
            found.append((match.group(1), number))
    return found


def test_nothing_said_about_the_exec_environment_is_a_warning(debian: UnitSet) -> None:
    about_own = [
        d.format()
        for d in debian.diagnostics
        if d.severity in (Severity.WARNING, Severity.ERROR)
        and (d.directive in OWN or any(f" {name}=" in d.message for name in OWN))
        and "unsupported specifier" not in d.message  # %i: the loader's part (templates)
    ]
    assert about_own == []


@pytest.mark.parametrize("path", sorted(DEBIAN.iterdir()), ids=lambda p: p.name)
def test_each_unit_lists_its_not_applied_directives_in_one_note(
    debian: UnitSet, path: Path
) -> None:
    expected = []
    for name, _line in _assignments(path):
        not_applied = schema.not_applied("Service", name) or schema.not_applied("Unit", name)
        if not_applied and name not in expected:
            expected.append(name)
    notes = [d for d in debian.diagnostics if d.path == str(path) and d.severity is Severity.NOTE]
    if not expected:
        assert notes == []
        return
    [note] = notes
    listed = note.message.split(": ", 1)[1].split(", ")
    assert listed == [f"{name}=" for name in expected]
    assert note.line == min(line for name, line in _assignments(path) if name in expected)


def test_the_values_they_set_are_read(debian: UnitSet) -> None:
    redis = debian.units["redis-server.service"].service
    assert redis is not None
    assert redis.runtime_directory == ("redis",)
    assert redis.runtime_directory_mode == 0o2755
    assert redis.runtime_directory_preserve is Preserve.NO
    assert redis.umask == 0o007
    assert redis.limit_nofile == ResourceLimit(65535, 65535)
    dbus = debian.units["dbus.service"].service
    assert dbus is not None and dbus.oom_score_adjust == -900
    ssh = debian.units["ssh.service"].service
    assert ssh is not None and ssh.runtime_directory == ("sshd",)
    rsyslog = debian.units["rsyslog.service"].service
    assert rsyslog is not None and rsyslog.limit_nofile == ResourceLimit(16384, 16384)
    syslog = debian.units["syslog.socket"].socket
    assert syslog is not None
    assert (syslog.pass_credentials, syslog.pass_security) == (True, True)
    assert syslog.receive_buffer == 8 * 1024 * 1024
    assert debian.units["syslog.socket"].unit.documentation == (
        "man:systemd.special(7)",
        "https://www.freedesktop.org/wiki/Software/systemd/syslog",
    )


def test_the_unchanged_units_pass_strict_units(tmp_path: Path) -> None:
    argv = [
        sys.executable, "-m", "cinit", "validate", "--units", str(DEBIAN),
        "--drop-in", str(tmp_path / "none"), "--no-host-checks", "--strict-units",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert "Traceback" not in done.stderr
    assert done.returncode == 0, done.stderr
