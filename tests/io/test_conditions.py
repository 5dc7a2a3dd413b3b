"""`cinit.io.conditions` and the Condition*=/Assert*= checks of issue 15, on the real machine.

Each check against files this test makes (and the kernel's own /proc), `|` triggering
checks, and Assert*= through `failed_assertion`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cinit.io import conditions
from cinit.io.environ import failed_assertion, unmet_condition
from cinit.units import Unit, parse_unit

pytestmark = pytest.mark.timeout(30)


def unit_with(*lines: str) -> Unit:
    text = "[Unit]\n" + "\n".join(lines) + "\n[Service]\nExecStart=/bin/true\n"
    unit, diagnostics = parse_unit("web.service", text, environ={})
    assert unit is not None
    assert not [d for d in diagnostics if d.severity.value == "error"], diagnostics
    return unit


def unmet(*lines: str, environ: dict[str, str] | None = None) -> str | None:
    return unmet_condition(unit_with(*lines), environ or {})


def test_file_and_directory_checks(tmp_path: Path) -> None:
    empty, full, tool = tmp_path / "empty", tmp_path / "full", tmp_path / "tool"
    empty.write_text("")
    full.write_text("x")
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    hidden_only, listed = tmp_path / "hidden", tmp_path / "listed"
    hidden_only.mkdir()
    (hidden_only / ".keep").write_text("")
    listed.mkdir()
    (listed / "entry").write_text("")
    link = tmp_path / "link"
    link.symlink_to(full)
    assert unmet(f"ConditionFileNotEmpty={full}") is None
    assert unmet(f"ConditionFileNotEmpty={empty}") == f"ConditionFileNotEmpty={empty}"
    assert unmet(f"ConditionFileNotEmpty={listed}") is not None  # a directory is no file
    assert unmet(f"ConditionFileIsExecutable={tool}") is None
    assert unmet(f"ConditionFileIsExecutable={full}") is not None
    assert unmet(f"ConditionDirectoryNotEmpty={listed}") is None
    assert unmet(f"ConditionDirectoryNotEmpty={hidden_only}") is not None  # as systemd
    assert unmet(f"ConditionPathIsDirectory={listed}") is None
    assert unmet(f"ConditionPathIsDirectory={full}") is not None
    assert unmet(f"ConditionPathIsSymbolicLink={link}") is None
    assert unmet(f"ConditionPathIsSymbolicLink=!{full}") is None
    assert unmet(f"ConditionPathIsReadWrite={tmp_path}") is None
    assert unmet("ConditionPathIsMountPoint=/proc") is None
    assert unmet(f"ConditionPathIsMountPoint={listed}") is not None


def test_virtualization_is_a_container_never_a_vm() -> None:
    assert unmet("ConditionVirtualization=container") is None
    assert unmet("ConditionVirtualization=yes") is None
    assert unmet("ConditionVirtualization=!container") == "ConditionVirtualization=!container"
    assert unmet("ConditionVirtualization=vm") is not None
    assert unmet("ConditionVirtualization=kvm") is not None
    assert unmet("ConditionVirtualization=no") is not None
    docker = {"container": "docker"}
    assert unmet("ConditionVirtualization=docker", environ=docker) is None
    assert unmet("ConditionVirtualization=podman", environ=docker) is not None


def test_container_kind_from_the_files_container_managers_leave(tmp_path: Path) -> None:
    assert conditions.container_kind({}, str(tmp_path)) == "container-other"
    (tmp_path / ".dockerenv").write_text("")
    assert conditions.container_kind({}, str(tmp_path)) == "docker"
    (tmp_path / "run").mkdir()
    (tmp_path / "run/.containerenv").write_text("")
    assert conditions.container_kind({}, str(tmp_path)) == "podman"
    assert conditions.container_kind({"container": "lxc"}, str(tmp_path)) == "lxc"


def test_capability_reads_the_bounding_set() -> None:
    with open("/proc/self/status") as f:
        bounding = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    for name, number in (("CAP_CHOWN", 0), ("CAP_SYS_ADMIN", 21)):
        held = bool(bounding >> number & 1)
        assert (unmet(f"ConditionCapability={name}") is None) is held
    assert unmet("ConditionCapability=CAP_NOT_A_THING") is not None


def test_kernel_command_line_words() -> None:
    line = "BOOT_IMAGE=/vmlinuz root=/dev/sda1 quiet"
    assert conditions.kernel_command_line_holds("quiet", line)
    assert conditions.kernel_command_line_holds("root", line)
    assert conditions.kernel_command_line_holds("root=/dev/sda1", line)
    assert not conditions.kernel_command_line_holds("root=/dev/sda2", line)
    assert not conditions.kernel_command_line_holds("splash", line)


def test_security_audit_and_boot_measurements_never_hold_in_a_container() -> None:
    for name in ("audit", "tpm2", "uefi-secureboot", "cvm", "measured-uki"):
        assert unmet(f"ConditionSecurity={name}") is not None
        assert unmet(f"ConditionSecurity=!{name}") is None


def test_first_boot_and_host(tmp_path: Path) -> None:
    assert conditions.first_boot_holds(True, str(tmp_path))  # no /etc/machine-id
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/machine-id").write_text("uninitialized\n")
    assert conditions.first_boot_holds(True, str(tmp_path))
    (tmp_path / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    assert conditions.first_boot_holds(False, str(tmp_path))
    host = os.uname().nodename
    assert unmet(f"ConditionHost={host}") is None
    assert unmet(f"ConditionHost={host[:1]}*") is None
    assert unmet("ConditionHost=surely-not-this-host-name") is not None


def test_needs_update_compares_usr_with_the_stamp(tmp_path: Path) -> None:
    assert conditions.needs_update_holds(str(tmp_path))  # no .updated stamp: needed
    stamp = tmp_path / ".updated"
    stamp.write_text("")
    usr = os.stat("/usr").st_mtime_ns
    os.utime(stamp, ns=(usr + 10**9, usr + 10**9))
    assert not conditions.needs_update_holds(str(tmp_path))
    os.utime(stamp, ns=(usr - 10**9, usr - 10**9))
    assert conditions.needs_update_holds(str(tmp_path))


def test_ac_power_and_credentials(tmp_path: Path) -> None:
    supplies = tmp_path / "sys/class/power_supply"
    assert conditions.on_ac_power(str(tmp_path))  # nothing known: on AC power
    battery = supplies / "BAT0"
    battery.mkdir(parents=True)
    (battery / "type").write_text("Battery\n")
    assert conditions.on_ac_power(str(tmp_path))
    adapter = supplies / "AC"
    adapter.mkdir()
    (adapter / "type").write_text("Mains\n")
    (adapter / "online").write_text("0\n")
    assert not conditions.on_ac_power(str(tmp_path))
    (adapter / "online").write_text("1\n")
    assert conditions.on_ac_power(str(tmp_path))
    (tmp_path / "secret").write_text("x")
    given = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    assert unmet("ConditionCredential=secret", environ=given) is None
    assert unmet("ConditionCredential=other", environ=given) is not None
    assert unmet("ConditionCredential=secret") is not None


def test_group_and_architecture() -> None:
    assert unmet(f"ConditionGroup={os.getgid()}") is None
    assert unmet("ConditionArchitecture=native") is None
    assert unmet("ConditionArchitecture=surely-not-an-arch") is not None


def test_triggering_checks_need_one_of_them(tmp_path: Path) -> None:
    present = tmp_path / "present"
    present.write_text("")
    missing = tmp_path / "missing"
    assert unmet(f"ConditionPathExists=|{missing}", f"ConditionPathExists=|{present}") is None
    both_missing = unmet(f"ConditionPathExists=|{missing}", f"ConditionPathExists=|!{present}")
    assert both_missing == (
        f"ConditionPathExists=|{missing}, ConditionPathExists=|!{present}"
    )
    # A plain check still has to hold, whatever the triggering ones say.
    plain = unmet(f"ConditionPathExists=|{present}", f"ConditionPathExists={missing}")
    assert plain == f"ConditionPathExists={missing}"


def test_asserts_are_checked_apart_from_conditions(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    unit = unit_with(f"AssertPathExists={missing}", "ConditionVirtualization=container")
    assert unmet_condition(unit, {}) is None
    assert failed_assertion(unit, {}) == f"AssertPathExists={missing}"
    assert failed_assertion(unit_with(f"AssertPathExists=!{missing}"), {}) is None


def test_a_socket_whose_assertion_fails_is_not_bound(tmp_path: Path) -> None:
    from cinit.io.socket_binding import bind_socket

    missing = tmp_path / "missing"
    path = tmp_path / "web.sock"
    text = f"[Unit]\nAssertPathExists={missing}\n[Socket]\nListenStream={path}\n"
    unit, diagnostics = parse_unit("web.socket", text, environ={})
    assert unit is not None, diagnostics
    binding = bind_socket(unit, {})
    assert binding.error == f"web.socket: AssertPathExists={missing} failed"
    assert binding.listeners == [] and not path.exists()
