"""`RUN systemctl enable web` at image build time, then `cinit --systemd` boots the image:
the links cinit's own `systemctl` makes are the ones the boot follows.

A fake root laid out as Debian 12's (/lib a link to usr/lib); `cinit systemctl --root=ROOT`
enables, masks and sets the default target; cinit as PID 1 (`--systemd --systemd-root`)
then boots it. Observations come from files the services write.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from e2e_support import TESTS, Boot, cinit_line, wait_until, write_units

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(90)]

Booter = Callable[..., Boot]
DEBIAN = TESTS / "data" / "systemd"  # Debian 12's unit files, unchanged


def _systemctl(cinit_cmd: list[str], root: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINIT_")}
    done = subprocess.run([*cinit_cmd, "systemctl", f"--root={root}", *args],
                          capture_output=True, text=True, timeout=30, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_units_enabled_by_cinit_systemctl_boot(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    root = tmp_path / "root"
    lib = root / "usr/lib/systemd/system"
    lib.mkdir(parents=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    os.symlink("usr/lib", root / "lib")
    for name in ("multi-user.target", "graphical.target", "sockets.target"):
        shutil.copyfile(DEBIAN / name, lib / name)
    out = tmp_path / "out"
    out.mkdir()

    def service(name: str, install: str) -> str:
        return f"""
            [Service]
            ExecStart=/bin/sh -c 'touch {out}/{name}; exec sleep 120'
            [Install]
            {install}
            """

    write_units(
        lib,
        {
            "web.service": service("web", "WantedBy=multi-user.target\nAlias=www.service"),
            "worker@.service": service("worker-%i", "WantedBy=multi-user.target"),
            "extra.service": service("extra", "WantedBy=multi-user.target\nAlso=web.service"),
            "idle.service": service("idle", "WantedBy=multi-user.target"),
            "masked.service": service("masked", "WantedBy=multi-user.target"),
            "gone.service": service("gone", "WantedBy=multi-user.target"),
        },
    )
    _systemctl(cinit_cmd, root, "enable", "extra", "worker@a.service", "masked", "gone")
    _systemctl(cinit_cmd, root, "mask", "masked")
    _systemctl(cinit_cmd, root, "disable", "gone")
    _systemctl(cinit_cmd, root, "set-default", "multi-user")
    assert _systemctl(cinit_cmd, root, "is-enabled", "web", "www", "idle") == (
        "enabled\nalias\ndisabled\n"
    )

    run = boot({}, options=["--systemd", "--systemd-root", str(root)])
    run.wait_err(cinit_line("multi-user.target", "ready"), timeout=30)
    for name in ("web", "worker-a", "extra"):
        wait_until(lambda name=name: (out / name).exists(), 10, f"{name}'s file")
    assert sorted(p.name for p in out.iterdir()) == ["extra", "web", "worker-a"], run.report()
    assert run.terminate() == 0, run.report()
