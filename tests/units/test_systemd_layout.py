"""`cinit --systemd`'s reading of an image laid out for systemd, against fake roots.

The unit files in tests/data/systemd are Debian 12's, unchanged (nginx, ssh, dbus, cron,
memcached and systemd's own targets). The links are made by the real `systemctl --root
DIR enable|mask|set-default` (the oracle for where `systemctl enable` puts them), never
by hand, and no test reads the host's /etc/systemd/system.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cinit.units import Severity, UnitKind, UnitSource
from cinit.units.loader import load_systemd_units
from cinit.units.systemd_layout import FALLBACK_TARGET, read_layout

DATA = Path(__file__).resolve().parent.parent / "data" / "systemd"
SYSTEMCTL = shutil.which("systemctl")
needs_systemctl = pytest.mark.skipif(
    SYSTEMCTL is None, reason="systemctl (the oracle for the link layout) is not installed"
)


def make_root(tmp_path: Path, merged_usr: bool = True) -> Path:
    """A root with Debian's unit files in /usr/lib/systemd/system (and /lib a link to
    /usr/lib on a merged-/usr layout, as Debian 12 has it), an empty /etc/systemd/system."""
    root = tmp_path / "root"
    lib = root / "usr/lib/systemd/system"
    lib.mkdir(parents=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    for source in DATA.iterdir():
        shutil.copyfile(source, lib / source.name)
    os.symlink("graphical.target", lib / "default.target")  # as the systemd package ships it
    if merged_usr:
        os.symlink("usr/lib", root / "lib")
    return root


def systemctl(root: Path, *args: str) -> None:
    assert SYSTEMCTL is not None
    subprocess.run([SYSTEMCTL, f"--root={root}", *args], check=True, capture_output=True)


def load(root: Path, tmp_path: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    none = str(tmp_path / "none")
    return load_systemd_units(str(root), none, none, environ={}, hostname="h", **kwargs)  # type: ignore[arg-type]


@needs_systemctl
def test_enabled_units_form_the_boot_set_through_wants_links(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    systemctl(root, "enable", "nginx.service", "ssh.socket", "cron.service")
    systemctl(root, "set-default", "multi-user.target")
    layout = read_layout(str(root), [])
    assert layout.default_target == "multi-user.target"
    assert layout.wants == {
        "multi-user.target": ("cron.service", "nginx.service"),
        "sockets.target": ("ssh.socket",),
    }
    # /lib and /usr/lib are one directory: read once, each unit from it.
    assert layout.dirs == (f"{root}/etc/systemd/system", f"{root}/lib/systemd/system")
    units = load(root, tmp_path)
    assert units.units["nginx.service"].path == f"{root}/lib/systemd/system/nginx.service"
    assert units.ok, [d.format() for d in units.errors]
    boot = set(units.graph.boot_units())
    assert {"nginx.service", "cron.service", "ssh.socket", "multi-user.target"} <= boot
    assert {"sockets.target", "timers.target", "basic.target"} <= boot
    # Loaded, startable by name, but not started: not enabled, or only socket-activated.
    for name in ("dbus.service", "dbus.socket", "ssh.service", "graphical.target"):
        assert name in units.units and name not in boot
    assert "memcached.service" in units.units and "memcached.service" not in boot
    # multi-user.target is reached once what it wants was dealt with.
    assert {"nginx.service", "cron.service", "basic.target"} <= units.graph.ordered_after(
        "multi-user.target"
    )
    assert units.units["nginx.service"].source is UnitSource.SYSTEMD


@needs_systemctl
def test_targets_named_but_not_defined_are_empty_implicit_targets(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    systemctl(root, "enable", "nginx.service")
    units = load(root, tmp_path)
    # nginx: After=network-online.target remote-fs.target nss-lookup.target; no file for
    # the last two (nor for basic.target, which multi-user.target requires).
    for name in ("remote-fs.target", "nss-lookup.target", "basic.target"):
        unit = units.units[name]
        assert unit.kind is UnitKind.TARGET and unit.source is UnitSource.IMPLICIT
        assert unit.path == ""
    assert units.units["network-online.target"].source is UnitSource.SYSTEMD
    assert "remote-fs.target" in units.graph.ordered_after("nginx.service")
    # ssh's After=auditd.service names a unit that is not there: a note, never a warning.
    notes = [d for d in units.diagnostics if "auditd.service" in d.message]
    assert notes and all(d.severity is Severity.HINT for d in notes)


@needs_systemctl
def test_the_default_target_link_is_followed_else_multi_user(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    # The package's own link: default.target -> graphical.target (in /usr/lib).
    assert read_layout(str(root), []).default_target == "graphical.target"
    units = load(root, tmp_path)
    boot = set(units.graph.boot_units())
    assert {"graphical.target", "multi-user.target"} <= boot  # graphical requires multi-user
    # The link is an alias of graphical.target, never an empty target of its own.
    assert "default.target" not in units.units
    assert units.resolve("default.target") == "graphical.target"
    systemctl(root, "set-default", "multi-user.target")  # /etc wins over /usr/lib
    assert read_layout(str(root), []).default_target == "multi-user.target"
    os.unlink(root / "etc/systemd/system/default.target")
    os.unlink(root / "usr/lib/systemd/system/default.target")
    assert read_layout(str(root), []).default_target == FALLBACK_TARGET


@needs_systemctl
def test_masked_units_are_not_loaded_even_when_enabled(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    systemctl(root, "enable", "memcached.service", "cron.service")
    systemctl(root, "mask", "memcached.service")
    assert os.readlink(root / "etc/systemd/system/memcached.service") == "/dev/null"
    (root / "etc/systemd/system/cron.service").write_text("")  # an empty file masks too
    layout = read_layout(str(root), [])
    assert layout.masked == {"memcached.service", "cron.service"}
    units = load(root, tmp_path)
    assert units.ok
    assert "memcached.service" not in units.units and "cron.service" not in units.units
    assert "memcached.service" not in units.units["multi-user.target"].unit.wants


@needs_systemctl
def test_a_higher_directory_hides_the_same_name_below(tmp_path: Path) -> None:
    root = make_root(tmp_path, merged_usr=False)
    lib = root / "lib/systemd/system"
    lib.mkdir(parents=True)
    (lib / "cron.service").write_text("[Service]\nExecStart=/bin/true from-lib\n")
    etc = root / "etc/systemd/system"
    (etc / "nginx.service").write_text("[Service]\nExecStart=/bin/true from-etc\n")
    units = load(root, tmp_path)
    # /lib/systemd/system comes before /usr/lib/systemd/system; /etc before both.
    assert units.units["cron.service"].path == str(lib / "cron.service")
    assert units.units["nginx.service"].path == str(etc / "nginx.service")
    assert units.units["ssh.service"].path == str(root / "usr/lib/systemd/system/ssh.service")


def test_other_unit_types_are_skipped_with_one_hint(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    lib = root / "usr/lib/systemd/system"
    (lib / "apt-daily.path").write_text("[Path]\nPathExists=/x\n")
    (lib / "tmp.mount").write_text("[Mount]\nWhat=tmpfs\n")
    (lib / "nginx.service.d").mkdir()  # snippets: not a unit, not a warning
    units = load(root, tmp_path)
    assert not any("nginx.service.d" in d.path for d in units.diagnostics)
    hints = [d for d in units.diagnostics if "types cinit does not run" in d.message]
    assert len(hints) == 1 and hints[0].message.startswith("2 unit files")


@needs_systemctl
def test_an_enabled_timer_boots_through_timers_target_and_its_service_does_not(
    tmp_path: Path,
) -> None:
    root = make_root(tmp_path)
    lib = root / "usr/lib/systemd/system"
    (lib / "clean.timer").write_text(
        "[Timer]\nOnCalendar=daily\n\n[Install]\nWantedBy=timers.target\n"
    )
    (lib / "clean.service").write_text("[Service]\nType=oneshot\nExecStart=/bin/true\n")
    (lib / "idle.timer").write_text("[Timer]\nOnBootSec=1s\nUnit=clean.service\n")
    systemctl(root, "enable", "clean.timer")  # the oracle makes timers.target.wants/
    assert (root / "etc/systemd/system/timers.target.wants/clean.timer").is_symlink()
    units = load(root, tmp_path)
    assert units.ok, [d.format() for d in units.errors]
    boot = set(units.graph.boot_units())
    assert "clean.timer" in boot and "clean.service" not in boot
    assert "idle.timer" in units.units and "idle.timer" not in boot  # not enabled
    assert units.units["clean.timer"].kind is UnitKind.TIMER
    assert units.graph.timer_starts("clean.timer") == "clean.service"
    assert units.graph.timed_by("clean.service") == ("clean.timer", "idle.timer")


def test_a_broken_unit_outside_the_boot_set_does_not_stop_the_boot(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    lib = root / "usr/lib/systemd/system"
    (lib / "broken.service").write_text("[Service]\nType=nonsense\n")
    # emergency.target's shape: a target outside the boot set requiring a unit left out.
    (lib / "rescue-ish.target").write_text("[Unit]\nRequires=broken.service\n")
    units = load(root, tmp_path)
    assert units.ok and "broken.service" not in units.units
    found = [d for d in units.diagnostics if d.path.endswith("broken.service")]
    assert found and all(d.severity is Severity.WARNING for d in found)
    assert any("unit not loaded" in d.message for d in found)
    (required,) = [d for d in units.diagnostics if d.path.endswith("rescue-ish.target")]
    assert required.severity is Severity.WARNING and "not started at boot" in required.message
    # In the boot set, the same Requires= refuses the boot, as in the ordinary mode.
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir()
    os.symlink("/usr/lib/systemd/system/rescue-ish.target", wants / "rescue-ish.target")
    units = load(root, tmp_path)
    assert not units.ok and "rescue-ish.target" in units.graph.boot_units()
    assert [e.path for e in units.errors] == [f"{root}/lib/systemd/system/rescue-ish.target"]


def test_container_init_units_apply_on_top_and_start_at_boot(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    units_dir = tmp_path / "ci-units"
    units_dir.mkdir()
    (units_dir / "nginx.service").write_text("[Service]\nExecStart=/bin/sleep 1\n")
    # extra.service pulls in a unit of the search path that nothing enabled.
    extra = "[Unit]\nWants=cron.service\n[Service]\nExecStart=/bin/sleep 1\n"
    (units_dir / "extra.service").write_text(extra)
    (units_dir / "lazy.socket").write_text("[Socket]\nListenStream=/run/lazy.sock\n")
    (units_dir / "lazy.service").write_text("[Service]\nExecStart=/bin/sleep 1\n")
    units = load_systemd_units(
        str(root), str(units_dir), str(tmp_path / "none"), environ={}, hostname="h"
    )
    assert units.ok
    assert units.units["nginx.service"].path == str(units_dir / "nginx.service")
    boot = set(units.graph.boot_units())
    assert {"nginx.service", "extra.service", "cron.service", "lazy.socket"} <= boot
    assert "lazy.service" not in boot  # socket-activated, as in the ordinary mode


def test_alias_links_and_instances_in_systemd_directories(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    lib, etc = root / "usr/lib/systemd/system", root / "etc/systemd/system"
    # What `systemctl enable` makes for ssh (Alias=sshd.service) and for a cluster of a
    # template (no generator runs: the instance is enabled by hand).
    os.symlink("/lib/systemd/system/ssh.service", etc / "sshd.service")
    (lib / "pg@.service").write_text("[Service]\nExecStart=/bin/echo %i\n")
    wants = etc / "multi-user.target.wants"
    wants.mkdir()
    os.symlink("/lib/systemd/system/pg@.service", wants / "pg@15-main.service")
    units = load(root, tmp_path)
    assert units.ok, [d.format() for d in units.errors]
    assert "sshd.service" not in units.units and units.resolve("sshd.service") == "ssh.service"
    instance = units.units["pg@15-main.service"]
    assert instance.service is not None and instance.service.exec_start[0].words[1] == "15-main"
    assert "pg@15-main.service" in units.graph.boot_units()


def test_a_root_without_systemd_directories_is_a_warning(tmp_path: Path) -> None:
    units = load(tmp_path / "empty", tmp_path)
    (warning,) = units.warnings
    assert "none of systemd's unit directories exists" in warning.message
    # Still the boot's targets: empty, always reached, nothing else.
    assert set(units.graph.boot_units()) == {"multi-user.target", "sockets.target", "timers.target"}


def test_a_symlink_loop_leaves_that_unit_out_with_a_warning(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    etc, run = root / "etc/systemd/system", root / "run/systemd/system"
    run.mkdir(parents=True)
    os.symlink("../../../run/systemd/system/a.service", etc / "a.service")
    os.symlink("../../../etc/systemd/system/a.service", run / "a.service")
    units = load(root, tmp_path)
    assert units.ok and "a.service" not in units.units
    (loop,) = [d for d in units.warnings if d.path == str(etc / "a.service")]
    assert "symbolic links" in loop.message and "unit not loaded" in loop.message


@needs_systemctl
def test_systemds_own_units_get_the_booted_check_and_others_do_not(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    lib = root / "usr/lib/systemd/system"
    (lib / "systemd-update-utmp.service").write_text(
        "[Unit]\nDescription=utmp\n\n[Service]\nType=oneshot\nExecStart=/bin/true\n"
        "\n[Install]\nWantedBy=multi-user.target\n"
    )
    systemctl(root, "enable", "systemd-update-utmp.service", "nginx.service")
    units = load(root, tmp_path)
    assert units.ok, [d.format() for d in units.errors]
    utmp = units.units["systemd-update-utmp.service"]
    assert utmp.unit.conditions[0].describe() == "ConditionPathExists=/run/systemd/system"
    assert "systemd-update-utmp.service" in units.graph.boot_units()  # it skips, not vanishes
    nginx = units.units["nginx.service"].unit.conditions
    assert all(c.value != "/run/systemd/system" for c in nginx)
    hints = [d for d in units.diagnostics if "systemd's own units" in d.message]
    assert len(hints) == 1 and hints[0].severity is Severity.HINT


def test_an_instance_asked_for_by_name_under_systemd_directories(tmp_path: Path) -> None:
    # `systemctl start openvpn@work`: the template's instance is loaded, not a boot unit.
    root = make_root(tmp_path)
    (root / "usr/lib/systemd/system" / "openvpn@.service").write_text(
        "[Service]\nExecStart=/bin/echo %i\n"
    )
    units = load(root, tmp_path, instances=["openvpn@work.service"])
    instance = units.units["openvpn@work.service"]
    assert instance.service is not None and instance.service.exec_start[0].words[1] == "work"
    assert "openvpn@work.service" not in units.graph.boot_units()
