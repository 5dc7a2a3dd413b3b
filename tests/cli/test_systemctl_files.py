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
from collections.abc import Callable
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
    # other unit types: enable reads [Install] alone, whatever the type
    "backup.timer": "[Timer]\nOnCalendar=daily\n[Install]\nWantedBy=timers.target\n",
    "backup.service": "[Service]\nType=oneshot\nExecStart=/bin/true\n",
    "srv.mount": "[Mount]\nWhat=tmpfs\nWhere=/srv\n[Install]\nRequiredBy=local-fs.target\n",
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
    "a timer and a mount": [["enable", "backup.timer", "srv.mount"], ["disable", "srv.mount"]],
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
    "preset static units": [["preset", "dbus", "helper"]],
    "preset an unknown unit": [["preset", "nosuch"]],
    "preset a masked unit": [["mask", "nginx"], ["preset", "nginx"]],
    "is-enabled stops at an unknown unit": [["is-enabled", "nginx", "nosuch", "cron"]],
    "enable with an existing link elsewhere": [
        ["enable", "rsyslog"],
        ["enable", "web"],
        ["mask", "web"],
        ["enable", "ssh", "cron"],
    ],
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
        ["list-unit-files", "zz*"],
        ["list-unit-files", "--no-legend", "-t", "swap"],
    ],
}


def _link(root: Path, path: str, target: str) -> None:
    (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, root / path.lstrip("/"))


def _write(root: Path, path: str, text: str) -> None:
    (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
    (root / path.lstrip("/")).write_text(text)


WANTED = "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"
# Trees made before a sequence (in both roots): what the verbs alone do not make.
SETUPS: dict[str, Callable[[Path], None]] = {
    "runtime links": lambda root: (
        _link(root, "/run/systemd/system/multi-user.target.wants/cron.service",
              "/lib/systemd/system/cron.service"),
        _link(root, "/run/systemd/system/nginx.service", "/dev/null"),
    ),
    "a linked unit file": lambda root: (
        _write(root, "/opt/ext.service", WANTED),
        _link(root, "/etc/systemd/system/ext.service", "/opt/ext.service"),
    ),
    "a unit file in /etc": lambda root: _write(root, "/etc/systemd/system/local.service", WANTED),
    "an empty file masks": lambda root: _write(root, "/etc/systemd/system/cron.service", ""),
    "vendor wants links": lambda root: _link(
        root, "/lib/systemd/system/multi-user.target.wants/dbus.service", "../dbus.service"
    ),
    "generated and transient": lambda root: (
        _write(root, "/run/systemd/generator/gen.service", WANTED),
        _write(root, "/run/systemd/transient/run-x.service", "[Service]\nExecStart=/bin/true\n"),
    ),
    "an empty assignment resets": lambda root: _write(
        root, "/lib/systemd/system/reset.service",
        "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=graphical.target\n"
        "WantedBy=\nWantedBy=multi-user.target\nAlias=r1.service r2.service\nAlias=\n",
    ),
    "a relative alias link": lambda root: _link(
        root, "/etc/systemd/system/multi-user.target.wants/ssh.service",
        "../../../../lib/systemd/system/ssh.service",
    ),
}  # fmt: skip
SEQUENCES.update(
    {
        "runtime links": [
            ["is-enabled", "cron", "nginx"],
            ["disable", "cron"],
            ["unmask", "nginx"],
        ],
        "a linked unit file": [["is-enabled", "ext"], ["enable", "ext"], ["disable", "ext"]],
        "a unit file in /etc": [["enable", "local"], ["is-enabled", "local"], ["disable", "local"]],
        "an empty file masks": [["is-enabled", "cron"], ["enable", "cron"], ["unmask", "cron"]],
        "vendor wants links": [["is-enabled", "dbus"], ["disable", "dbus"]],
        "generated and transient": [["is-enabled", "gen", "run-x"], ["list-unit-files"]],
        "an empty assignment resets": [["enable", "reset"], ["is-enabled", "reset"]],
        "a relative alias link": [["is-enabled", "ssh"], ["enable", "ssh"], ["disable", "ssh"]],
    }
)


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


def _make_root(root: Path, merged: bool = False) -> None:
    """The unit files in /lib/systemd/system; `merged`: in /usr/lib, /lib a link to usr/lib
    (Debian 12's merged /usr)."""
    lib = root / ("usr/lib" if merged else "lib") / "systemd/system"
    lib.mkdir(parents=True)
    if merged:
        os.symlink("usr/lib", root / "lib")
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
    if sequence in SETUPS:
        SETUPS[sequence](real)
        SETUPS[sequence](ours)
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


@pytest.mark.parametrize(
    "steps",
    [[["enable", "nginx", "ssh", "getty@.service"], ["disable", "ssh"]], [["mask", "cron"]]],
    ids=["enable-disable", "mask"],
)
def test_merged_usr_same_as_systemctl(
    steps: list[list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which("systemctl") is None:
        pytest.skip("the oracle, systemctl, is not installed")
    real, ours = tmp_path / "real", tmp_path / "ours"
    _make_root(real, merged=True)
    _make_root(ours, merged=True)
    for args in [*steps, ["list-unit-files"], ["is-enabled", "nginx", "ssh", "sshd", "cron"]]:
        want, got = _real(real, args), _ours(ours, args, capsys)
        assert got[:2] == (want[0], want[1].replace(str(real), str(ours))), args
        assert _lines(got[2], ours) == _lines(want[2], real), args
        assert _tree(ours) == _tree(real), args


# -- what the oracle cannot say (systemd 252 has no UpheldBy=, no `cat` with --root) -------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    made = tmp_path / "root"
    _make_root(made)
    return made


def test_upheld_by_links_into_upholds(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lib = root / "lib/systemd/system"
    (lib / "keeper.service").write_text(
        "[Service]\nExecStart=/bin/true\n[Install]\nUpheldBy=multi-user.target\n"
    )
    status, _out, err = _ours(root, ["enable", "keeper"], capsys)
    assert status == 0, err
    link = root / "etc/systemd/system/multi-user.target.upholds/keeper.service"
    assert os.readlink(link) == "/lib/systemd/system/keeper.service"
    assert _ours(root, ["is-enabled", "keeper"], capsys)[:2] == (0, "enabled\n")
    assert _ours(root, ["disable", "keeper"], capsys)[0] == 0
    assert not link.parent.exists()


def test_cat_prints_the_file_then_its_drop_ins(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lib = root / "lib/systemd/system"
    (lib / "nginx.service.d").mkdir()
    (lib / "nginx.service.d/50-limits.conf").write_text("[Service]\nLimitNOFILE=4096\n")
    etc = root / "etc/systemd/system/nginx.service.d"
    etc.mkdir(parents=True)
    (etc / "10-env.conf").write_text("[Service]\nEnvironment=A=1")  # no final newline
    (etc / "50-limits.conf").write_text("[Service]\nLimitNOFILE=8192\n")  # hides /lib's
    status, out, _err = _ours(root, ["cat", "nginx"], capsys)
    assert status == 0
    nginx = (DATA / "debian/nginx.service").read_text()
    assert out == (
        f"# /lib/systemd/system/nginx.service\n{nginx}\n"
        "# /etc/systemd/system/nginx.service.d/10-env.conf\n[Service]\nEnvironment=A=1\n\n"
        "# /etc/systemd/system/nginx.service.d/50-limits.conf\n[Service]\nLimitNOFILE=8192\n"
    )


def test_cat_several_an_unknown_and_a_masked_unit(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _ours(root, ["mask", "cron"], capsys)
    status, out, err = _ours(root, ["cat", "helper", "nosuch", "cron", "getty@tty3"], capsys)
    assert status == 1
    assert out == (
        f"# /lib/systemd/system/helper.service\n{MADE_UNITS['helper.service']}\n"
        f"# /lib/systemd/system/getty@.service\n{MADE_UNITS['getty@.service']}"
    )
    assert err.splitlines() == [
        "No files found for nosuch.service.",
        "Unit cron.service is masked.",
    ]


def test_units_in_cinits_own_directories_always_start(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    own = root / "etc/container-init/units"
    own.mkdir(parents=True)
    (own / "app.service").write_text("[Service]\nExecStart=/bin/true\n")
    assert _ours(root, ["is-enabled", "app"], capsys)[:2] == (0, "enabled\n")
    status, _out, err = _ours(root, ["enable", "app", "nginx"], capsys)
    assert status == 0
    assert "cinit starts every unit there at boot (nothing to enable)" in err
    assert (root / "etc/systemd/system/multi-user.target.wants/nginx.service").is_symlink()
    status, _out, err = _ours(root, ["disable", "app"], capsys)
    assert status == 1
    assert "remove /etc/container-init/units/app.service instead" in err.replace(str(root), "")
    assert _ours(root, ["mask", "app"], capsys)[0] == 1
    assert not (root / "etc/systemd/system/app.service").exists()
    listed = _ours(root, ["list-unit-files", "--no-legend", "a*"], capsys)[1]
    assert listed == "app.service enabled -\n"


def test_links_are_never_written_outside_the_root(
    tmp_path: Path, root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    # a .wants directory that is a symlink out of the root (absolute, as an attacker's)
    os.symlink(outside, root / "etc/systemd/system/multi-user.target.wants")
    status, _out, err = _ours(root, ["enable", "nginx"], capsys)
    assert status == 1
    assert "multi-user.target.wants/nginx.service" in err and "symlink" in err
    assert list(outside.iterdir()) == []
    # /etc/systemd/system itself a link out of the root
    shutil.rmtree(root / "etc/systemd")
    (root / "etc/systemd").mkdir()
    os.symlink(outside, root / "etc/systemd/system")
    assert _ours(root, ["mask", "cron"], capsys)[0] == 1
    assert _ours(root, ["set-default", "multi-user.target"], capsys)[0] == 1
    assert list(outside.iterdir()) == []


def test_a_missing_root_and_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _out, err = _ours(tmp_path / "nothing", ["enable", "nginx"], capsys)
    assert (status, err) == (1, f"--root={tmp_path}/nothing: no such directory\n")
    assert _ours(tmp_path, ["set-default"], capsys)[0] == 1  # the front end: too few words
    assert _ours(tmp_path, ["get-default", "x"], capsys)[0] == 1
    status, _out, err = _ours(tmp_path, ["enable", "/opt/x.service"], capsys)
    assert status == 1 and "given by path (systemctl link) are not supported" in err


def test_cinit_systemctl_as_a_command(root: Path, cinit_cmd: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINIT_")}
    done = subprocess.run([*cinit_cmd, "systemctl", f"--root={root}", "enable", "ssh"],
                          capture_output=True, text=True, timeout=30, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert f"Created symlink {root}/etc/systemd/system/sshd.service → " in done.stderr
    assert (
        os.readlink(root / "etc/systemd/system/sshd.service") == "/lib/systemd/system/ssh.service"
    )
    done = subprocess.run([*cinit_cmd, "systemctl", f"--root={root}", "is-enabled", "sshd"],
                          capture_output=True, text=True, timeout=30, env=env)  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "alias\n")


UNSHARE = shutil.which("unshare")


@pytest.mark.skipif(
    os.geteuid() != 0 or UNSHARE is None or not os.path.isdir("/etc/systemd/system"),
    reason="needs root, unshare and an /etc/systemd/system to cover",
)
def test_without_root_it_works_on_slash_in_a_private_mount_namespace(
    tmp_path: Path, cinit_cmd: list[str]
) -> None:
    """`RUN systemctl enable nginx` at image build time: no --root, the files of `/`. The
    host's /etc/systemd/system is covered by a tmpfs in a private mount namespace; the
    unit comes from /run/systemd/system, in a private /run (a tmpfs too)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINIT_")}
    cinit = " ".join(f"'{word}'" for word in cinit_cmd)
    script = f"""
        set -e
        mount -t tmpfs tmpfs /etc/systemd/system
        mount -t tmpfs tmpfs /run
        mkdir -p /run/systemd/system
        printf '[Service]\\nExecStart=/bin/true\\n[Install]\\nWantedBy=multi-user.target\\n' \
            > /run/systemd/system/cinit-test-x.service
        {cinit} systemctl enable cinit-test-x
        {cinit} systemctl is-enabled cinit-test-x
        readlink /etc/systemd/system/multi-user.target.wants/cinit-test-x.service
        {cinit} systemctl disable -q cinit-test-x
        {cinit} systemctl is-enabled cinit-test-x || echo "exit $?"
    """
    done = subprocess.run([UNSHARE, "--mount", "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True, timeout=60, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "enabled",
        "/run/systemd/system/cinit-test-x.service",
        "disabled",
        "exit 1",
    ]
    assert "Created symlink /etc/systemd/system/multi-user.target.wants/" in done.stderr
    assert not os.path.lexists("/etc/systemd/system/multi-user.target.wants/cinit-test-x.service")
