"""`cinit validate`: a hint (never a warning) for a socket-activated dbus-daemon that lacks
`--address=systemd:`; `--strict-units` still accepts the seed's examples."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
SEED = ROOT / "tests" / "data" / "seed"

pytestmark = pytest.mark.timeout(30)


def validate(
    cinit_cmd: list[str], units: Path, drop_in: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    # cinit_cmd: the shared fixture of tests/conftest.py (honours CINIT_BIN)
    # --no-host-checks: the seed's programs and users belong to its image, not to this host.
    argv = [*cinit_cmd, "validate", "--units", str(units), "--drop-in", str(drop_in), *extra]
    argv.append("--no-host-checks")
    return subprocess.run(argv, capture_output=True, text=True, timeout=20)


def test_seed_examples_pass_strict_units_with_a_dbus_hint(cinit_cmd: list[str]) -> None:
    result = validate(cinit_cmd, SEED / "units", SEED / "container-init.d", "--strict-units")
    assert result.returncode == 0, result.stderr
    hints = [line for line in result.stderr.splitlines() if ": hint: " in line]
    assert hints == [
        f"{SEED / 'container-init.d' / 'dbus-system.service'}:10: hint: dbus-system.service: "
        "dbus-daemon is socket-activated by dbus-system.socket but has no --address=systemd: "
        "argument: without it, it ignores the listener cinit passes, unlinks the socket and "
        "binds its own; write ExecStart=/usr/bin/dbus-daemon --system --address=systemd: "
        "--nofork --nopidfile --syslog-only"
    ], result.stderr
    assert ": warning: " not in result.stderr
    assert "0 warnings, 0 errors, 1 hints" in result.stdout


def test_the_corrected_form_gets_no_hint(tmp_path: Path, cinit_cmd: list[str]) -> None:
    drop_in = tmp_path / "d"
    shutil.copytree(SEED / "container-init.d", drop_in)
    service = drop_in / "dbus-system.service"
    service.write_text(service.read_text().replace("--system ", "--system --address=systemd: "))
    result = validate(cinit_cmd, SEED / "units", drop_in, "--strict-units")
    assert result.returncode == 0, result.stderr
    assert ": hint: " not in result.stderr
    assert "0 warnings, 0 errors\n" in result.stdout
