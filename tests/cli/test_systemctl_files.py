"""systemctl's unit-file verbs (`cinit.cli.systemctl_files`) against the real systemctl.

The ORACLE: two identical temporary roots with Debian's unit files (nginx, ssh with
Alias=sshd.service, cron, rsyslog with Alias=syslog.service, dbus) and a few made for the
cases ([Install] with DefaultInstance=, Also=, RequiredBy=/UpheldBy=, a static unit, a
template Alias=, presets); the same verb sequence runs with the real `systemctl --root=A`
and with cinit's `systemctl --root=B`; then both trees (every link and directory below
/etc and /run: path -> target), every command's exit status and output must be the same.
The real systemctl is only ever run with --root (see `_real`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cinit.cli.systemctl import main as systemctl_main

pytestmark = pytest.mark.timeout(120)

DATA = Path(__file__).resolve().parent.parent / "data"
DEBIAN_UNITS = ("nginx.service", "ssh.service", "cron.service", "rsyslog.service",
                "dbus.service", "dbus.socket", "ssh.socket")  # fmt: skip
SYSTEMD_UNITS = ("multi-user.target", "graphical.target", "sockets.target")
MADE_UNITS = {
    # a template with DefaultInstance=, and an alias that is a template too
    "getty@.service": "[Service]\nExecStart=/bin/true %i\n[Install]\nWantedBy=getty.target\n"
    "DefaultInstance=tty1\nAlias=vt@.service\n",
    "getty.target": "[Unit]\nDescription=Login Prompts\n",
    # Also= only: "indirect"
    "withalso.service": "[Service]\nExecStart=/bin/true\n[Install]\nAlso=cron.service\n",
    # RequiredBy=, and WantedBy= with a specifier (to a target that does not exist); UpheldBy=
    # is not in systemd 252 (the oracle): tested on its own below
    "req.service": "[Service]\nExecStart=/bin/true\n[Install]\nRequiredBy=multi-user.target\n"
    "WantedBy=%N-extra.target\n",
    # a template without DefaultInstance=
    "worker@.service": "[Service]\nExecStart=/bin/true %i\n[Install]\nWantedBy=multi-user.target\n",
    # static: no [Install]
    "helper.service": "[Service]\nType=oneshot\nExecStart=/bin/true\n",
    # several aliases, and both kinds of links
    "web.service": "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target "
    "graphical.target\nAlias=www.service httpd.service\n",
}
PRESET = "disable rsyslog.service\ndisable web.*\nenable *\n"
# Every unit name the checks ask is-enabled about after each sequence.
ASKED = ("nginx", "ssh", "sshd.service", "cron", "rsyslog", "syslog.service", "dbus",
         "dbus.socket", "getty@.service", "getty@tty1.service", "getty@tty2.service",
         "vt@tty2.service", "withalso", "req", "worker@.service", "worker@a.service", "helper",
         "web", "www.service", "multi-user.target", "graphical.target")  # fmt: skip

SEQUENCES: dict[str, list[list[str]]] = {
    "enable nginx": [["enable", "nginx"]],
    "enable several": [["enable", "nginx", "cron", "rsyslog"]],
    "enable an alias-carrying unit": [["enable", "ssh"]],
    "enable twice": [["enable", "ssh"], ["enable", "ssh"]],
    "enable then disable": [["enable", "ssh"], ["disable", "ssh"]],
    "disable by the unit, aliases go": [["enable", "rsyslog", "web"], ["disable", "web"]],
    "enable refuses an alias name": [["enable", "sshd.service"]],
    "template with DefaultInstance": [["enable", "getty@.service"]],
    "an instance": [["enable", "getty@tty2.service"]],
    "instances, disable one": [
        ["enable", "getty@tty2.service", "getty@.service"],
        ["disable", "getty@tty2.service"],
    ],
    "disable the template": [
        ["enable", "getty@tty2.service", "getty@tty3.service"],
        ["disable", "getty@.service"],
    ],
    "template without DefaultInstance": [["enable", "worker@.service"]],
    "template instance": [["enable", "worker@a.service"], ["is-enabled", "worker@b.service"]],
    "Also=": [["enable", "withalso"], ["disable", "withalso"]],
    "RequiredBy=": [["enable", "req"]],
    "RequiredBy= then disable": [["enable", "req"], ["disable", "req"]],
    "static unit": [["enable", "dbus"]],
    "static and others": [["enable", "helper", "nginx"]],
    "mask": [["mask", "cron"]],
    "mask then enable fails": [["mask", "cron"], ["enable", "cron"]],
    "mask then disable": [["enable", "cron"], ["mask", "cron"], ["disable", "cron"]],
    "mask unmask": [["mask", "cron", "nginx"], ["unmask", "cron"]],
    "mask an unknown unit": [["mask", "nosuch"], ["is-enabled", "nosuch"], ["unmask", "nosuch"]],
    "enable an unknown unit": [["enable", "nosuch"]],
    "disable an unknown unit": [["disable", "nosuch"]],
    "is-enabled an unknown unit": [["is-enabled", "nosuch"]],
    "is-enabled several": [["enable", "nginx"], ["is-enabled", "nginx", "cron"]],
    "is-enabled quiet": [["enable", "nginx"], ["is-enabled", "-q", "nginx"]],
    "get-default none": [["get-default"]],
    "set-default": [["set-default", "multi-user.target"], ["get-default"]],
    "set-default twice": [
        ["set-default", "multi-user.target"],
        ["set-default", "graphical"],
        ["get-default"],
    ],
    "set-default unknown": [["set-default", "nosuch.target"]],
    "disable the default target": [["set-default", "graphical"], ["disable", "graphical.target"]],
    "reenable": [["enable", "nginx", "ssh"], ["reenable", "ssh"]],
    "preset": [["preset", "nginx", "rsyslog", "web", "cron"]],
    "preset disables": [["enable", "rsyslog", "web"], ["preset", "rsyslog", "web", "nginx"]],
    "quiet": [["enable", "-q", "nginx", "ssh"], ["disable", "--quiet", "ssh"]],
    "mask, enable --force": [["mask", "cron"], ["enable", "cron"]],
    "list-unit-files filters": [
        ["enable", "nginx", "ssh"],
        ["list-unit-files", "*.service"],
        ["list-unit-files", "--state=enabled"],
        ["list-unit-files", "-t", "target"],
        ["list-unit-files", "--no-legend", "n*"],
        ["list-unit-files", "--state=alias,masked"],
    ],
}


def _real(root: Path, args: list[str]) -> tuple[int, str, str]:
    argv = ["systemctl", f"--root={root}", *args]
    assert argv[1].startswith("--root=/")  # never against the host
    env = {**os.environ, "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0", "LC_ALL": "C.UTF-8"}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env,
                          stdin=subprocess.DEVNULL)  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def _ours(root: Path, args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    status = systemctl_main([f"--root={root}", *args])
    out, err = capsys.readouterr()
    return status, out, err


def _make_root(root: Path) -> None:
    lib = root / "lib/systemd/system"
    lib.mkdir(parents=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    for name in DEBIAN_UNITS:
        shutil.copy(DATA / "debian" / name, lib / name)
    for name in SYSTEMD_UNITS:
        shutil.copy(DATA / "systemd" / name, lib / name)
    for name, text in MADE_UNITS.items():
        (lib / name).write_text(text)
    presets = root / "lib/systemd/system-preset"
    presets.mkdir(parents=True)
    (presets / "90-test.preset").write_text(PRESET)


def _tree(root: Path) -> list[str]:
    """Every entry below /etc and /run: links with their targets, directories."""
    found = []
    for top in ("etc", "run"):
        for path in sorted((root / top).rglob("*")):
            inner = "/" + str(path.relative_to(root))
            if path.is_symlink():
                found.append(f"{inner} -> {os.readlink(path)}")
            elif path.is_dir():
                found.append(f"{inner}/")
    return found


def _lines(text: str, root: Path) -> list[str]:
    """Output lines with the root's path taken out; the order of removals is the order of
    a directory walk in systemctl (readdir's): compared sorted."""
    return sorted(line.replace(str(root), "ROOT") for line in text.splitlines())


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("systemctl") is None:
        pytest.skip("the oracle, systemctl, is not installed")
    real, ours = tmp_path / "real", tmp_path / "ours"
    _make_root(real)
    _make_root(ours)
    return real, ours


@pytest.mark.parametrize("sequence", list(SEQUENCES), ids=list(SEQUENCES))
def test_same_links_and_answers_as_systemctl(
    sequence: str, roots: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    real, ours = roots
    steps = SEQUENCES[sequence]
    if sequence == "mask, enable --force":
        steps = [*steps, ["enable", "--force", "cron"]]
    for args in steps:
        want, got = _real(real, args), _ours(ours, args, capsys)
        assert got[0] == want[0], (args, want, got)
        assert got[1].replace(str(ours), "ROOT") == want[1].replace(str(real), "ROOT"), args
        assert _lines(got[2], ours) == _lines(want[2], real), args
        assert _tree(ours) == _tree(real), args
    for name in ASKED:
        want, got = _real(real, ["is-enabled", name]), _ours(ours, ["is-enabled", name], capsys)
        assert (got[0], got[1]) == (want[0], want[1]), name
    want, got = _real(real, ["list-unit-files"]), _ours(ours, ["list-unit-files"], capsys)
    assert (got[0], got[1]) == (want[0], want[1])
