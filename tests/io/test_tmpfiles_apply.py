"""tmpfiles.d carried out (cinit.io.tmpfiles), with systemd-tmpfiles as the oracle.

Each case builds two identical trees, runs the real `systemd-tmpfiles --root=A` and
`cinit tmpfiles --root=B` (the command, as a user runs it) with the same configuration
and operations, and compares the resulting trees: paths, node types, modes, owners,
symlink targets, file contents, device numbers; and the exit statuses. Everything happens
below pytest's temporary directory: no line ever reaches the host's /etc, /run or /tmp.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import struct
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from cinit.io.tmpfiles import apply

pytestmark = pytest.mark.timeout(120)

SYSTEMD_TMPFILES = shutil.which("systemd-tmpfiles")
needs_oracle = pytest.mark.skipif(
    SYSTEMD_TMPFILES is None, reason="systemd-tmpfiles (the oracle) is not installed"
)
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="owners, device nodes and chown need root"
)

PASSWD = "root:x:0:0:root:/root:/bin/sh\nsvc:x:123:456::/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nsvcg:x:456:\nadm:x:4:\n"
Node = tuple[int, str | None, int, int, object, object]


def snapshot(root: Path) -> dict[str, Node]:
    """Every node below `root`: type, mode, owner, group, and what it holds."""
    nodes: dict[str, Node] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            kind = stat.S_IFMT(st.st_mode)
            held: object = None
            if stat.S_ISLNK(st.st_mode):
                held = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                held = Path(path).read_bytes()
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                held = (os.major(st.st_rdev), os.minor(st.st_rdev))
            mode = None if stat.S_ISLNK(st.st_mode) else oct(stat.S_IMODE(st.st_mode))
            extra = _xattrs_and_flags(path) if kind in (stat.S_IFREG, stat.S_IFDIR) else None
            nodes[os.path.relpath(path, root)] = (kind, mode, st.st_uid, st.st_gid, held, extra)
    return nodes


def _xattrs_and_flags(path: str) -> tuple[dict[str, bytes], int]:
    """A file's or directory's extended attributes and chattr flags (FS_IOC_GETFLAGS)."""
    xattrs = {name: os.getxattr(path, name) for name in os.listxattr(path)}
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        buffer = bytearray(8)
        try:
            fcntl.ioctl(fd, (2 << 30) | (struct.calcsize("l") << 16) | (ord("f") << 8) | 1, buffer)
        except OSError:
            return xattrs, -1
        return xattrs, struct.unpack_from("i", buffer)[0]
    finally:
        os.close(fd)


def base_tree(root: Path) -> None:
    """What every case starts from: users, a machine id, os-release."""
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/group").write_text(GROUP)
    (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')


def cinit_tmpfiles(cinit_cmd: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cinit_cmd, "tmpfiles", *args], capture_output=True, text=True, timeout=60
    )


def compare(
    tmp_path: Path,
    cinit_cmd: list[str],
    config: str | None,
    setup: Callable[[Path], None],
    operations: list[str],
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """Run both tools on identical trees; assert same trees and statuses; both results."""
    conf_args = []
    if config is not None:
        conf = tmp_path / "test.conf"
        conf.write_text(textwrap.dedent(config).lstrip())
        conf_args = [str(conf)]
    trees = {}
    for side in ("systemd", "cinit"):
        root = tmp_path / side
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir()
        base_tree(root)
        setup(root)
        trees[side] = root
    assert SYSTEMD_TMPFILES is not None
    oracle = subprocess.run(
        [SYSTEMD_TMPFILES, f"--root={trees['systemd']}", *operations, *conf_args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    ours = cinit_tmpfiles(cinit_cmd, f"--root={trees['cinit']}", *operations, *conf_args)
    expected, found = snapshot(trees["systemd"]), snapshot(trees["cinit"])
    differences = {
        path: (expected.get(path), found.get(path))
        for path in sorted(set(expected) | set(found))
        if expected.get(path) != found.get(path)
    }
    assert differences == {}, f"systemd-tmpfiles: {oracle.stderr}\ncinit: {ours.stderr}"
    assert ours.returncode == oracle.returncode, f"{oracle.stderr}\n---\n{ours.stderr}"
    assert "Traceback" not in ours.stderr
    return oracle, ours


# Every line type cinit carries out, with every modifier, over a tree that already holds
# nodes of the right and of the wrong types.
EVERY_TYPE = r"""
    f /a/f1 - - - - hello\x20world
    f /a/f2 0600 svc svcg - -
    f+ /a/f3 - - - - a\nb
    F /a/f5 - - - - old-spelling
    w /a/f1 - - - - AB
    w+ /app - - - - more
    w /nofile - - - - x
    f /a/f4 - - - - "quoted arg"
    f /a/bytes - - - - \xe9\303\251\u00e9|\t|
    f~ /a/b64 - - - - aGVsbG8K
    f /a/spec - - - - %m|%H|%l|%v|%u|%U|%g|%G|%h|%o|%w|%a|%T|%V|%%
    d /a/d1 2775 svc - -
    d "/a/sp ace" - - - -
    e /a/d1 0750
    e /edir 0711
    e /enot 0711
    e! /ebang 0700
    v /a/v1
    q /a/q1 0700
    Q /a/Q1
    L /a/l1 - - - - ../x
    L /a/l2
    L /lwrong - - - - /new
    L+ /lwrong2 - - - - /new
    L+ /ldir - - - - /target
    p /a/p1 0600
    p /pfile
    p+ /pfile2
    c /a/null 0666 - - - 1:3
    b! /a/loop0 0660 - adm - 7:0
    C /cdst - - - - /src
    C /cnew - - - - /src
    C /cfull - - - - /src
    z /a/nonexist 0700
    z /ex ~0777
    z /zg/* 0600
    z /hid/* 0600
    Z /zz 0711 svc
    Z /real 0700
    h /a/d1 - - - - +d
    h /a/d1 - - - - +A
    H /zz - - - - +d
    h /a/f1 - - - - =
    h /a/f3 - - - - +C
    t /a/f2 - - - - user.k=v "user.spaced=x y"
    T /real - - - - user.r=1
    a /a/f4 - - - - group:adm:r--
    a+ /a/f5 - - - - u:root:rw,g:adm:r-x
    a+ /a/d1 - - - - d:group::r-x,d:group:adm:r-x,group::r-x,group:adm:r-x
    A /real - - - - u:123:r-x
    A+ /zz - - - - g:adm:rwx
    a /ex - - - - user::rw,group::r,other::-,mask::r,g:4:rw
    d /par/sub1
    d /par2/sub2
    d /ex2 :0700 :svc
    d /dfile
    d= /dfile2
    f /fdir
    f- /fdir2
    f= /ffifo
    D /D1 0700 - - -
    f /D1/new
    x /D1/keep
    X /D1/keepdir
    r /rfile
    r /rdir
    r /glob/*.tmp
    R /gl*b/sub
    R /R*
    r! /stale.lock
    d /deep=/a/b
    d= /retype/sub/dir 0700
    L= /retype2/link - - - - /t
    d /var/run/legacy
    d /dup 0700
    d /dup 0750
"""


def every_type_tree(root: Path) -> None:
    def make(path: str, text: str | None = None) -> None:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if text is None:
            target.mkdir(exist_ok=True)
        else:
            target.write_text(text)

    make("real")
    os.symlink("/real", root / "par")
    os.symlink("real", root / "par2")
    make("D1/sub/f", "x")
    make("D1/keep/k", "k")
    make("D1/keepdir/d", "d")
    make("D1/.hidden", "h")
    make("ex", "e")
    (root / "ex").chmod(0o644)
    make("src/sub/f", "s")
    make("src/top", "t")
    os.symlink("top", root / "src/link")
    os.mkfifo(root / "src/fifo")
    make("cdst")
    make("cfull/mine", "m")
    make("R1/a/b", "r")
    make("R2")
    make("rfile", "r")
    make("rdir/x/y", "y")
    make("edir")
    make("ebang")
    make("ldir/in")
    make("fdir")
    make("fdir2")
    make("dfile", "1")
    make("dfile2", "2")
    make("pfile", "p")
    make("pfile2", "p")
    os.symlink("/old", root / "lwrong")
    os.symlink("/old", root / "lwrong2")
    make("glob/a.tmp", "")
    make("glob/.b.tmp", "")
    make("glob/c.keep", "")
    make("glob/sub/deep")
    make("gloob/sub")
    make("zg/d")
    make("zg/f", "")
    make("zz/a/b/c", "")
    os.symlink("/etc", root / "zz/lnk")
    make("hid/v", "")
    make("hid/.h", "")
    make("app", "start")
    make("stale.lock", "")
    make("deep=", "not a directory")
    make("retype", "a file where a directory is needed")
    make("retype2/link/inner", "a directory where a symlink is wanted")
    make("run")
    make("var")
    os.symlink("../run", root / "var/run")
    os.mkfifo(root / "ffifo")


@needs_oracle
@needs_root
@pytest.mark.parametrize(
    "operations",
    [
        ["--create"],
        ["--remove"],
        ["--create", "--remove"],
        ["--create", "--remove", "--boot"],
        ["--create", "--boot", "--prefix=/a", "--prefix=/D1"],
        ["--create", "--remove", "--exclude-prefix=/a"],
        ["--create", "-E"],
    ],
    ids=lambda ops: " ".join(ops),
)
def test_every_line_type_as_systemd_tmpfiles(
    tmp_path: Path, cinit_cmd: list[str], operations: list[str]
) -> None:
    compare(tmp_path, cinit_cmd, EVERY_TYPE, every_type_tree, operations)
    tree = tmp_path / "cinit"
    if "--create" in operations and "--prefix=/a" in operations:  # the runs did something
        assert (tree / "a/f1").read_bytes() == b"ABllo world"
        assert not (tree / "lwrong2").is_symlink() or os.readlink(tree / "lwrong2") == "/old"
    elif "--create" in operations:
        assert os.readlink(tree / "lwrong2") == "/new"
    if "--remove" in operations:
        assert not (tree / "rfile").exists() and not (tree / "D1/sub").exists()
    if "--create" in operations and "--exclude-prefix=/a" not in operations:
        assert os.getxattr(tree / "a/f2", "user.spaced") == b"x y"  # t
        assert _xattrs_and_flags(str(tree / "a/d1"))[1] & 0x40  # h +d: FS_NODUMP_FL


@needs_oracle
@needs_root
def test_the_same_failures_are_reported_with_file_and_line(
    tmp_path: Path, cinit_cmd: list[str]
) -> None:
    _, ours = compare(tmp_path, cinit_cmd, EVERY_TYPE, every_type_tree, ["--create", "--remove"])
    conf = tmp_path / "test.conf"
    lines = EVERY_TYPE.strip().splitlines()
    fdir = next(n for n, text in enumerate(lines, 1) if text.strip() == "f /fdir")
    rdir = next(n for n, text in enumerate(lines, 1) if text.strip() == "r /rdir")
    assert f"{conf}:{fdir}: error: {tmp_path}/cinit/fdir exists and is not a regular file" in (
        ours.stderr
    )
    assert f"{conf}:{rdir}: error: cannot remove {tmp_path}/cinit/rdir" in ours.stderr
    assert ours.returncode == 73  # EX_CANTCREAT, as systemd-tmpfiles


@needs_oracle
@needs_root
def test_unusable_lines_exit_65_and_the_rest_is_applied(
    tmp_path: Path, cinit_cmd: list[str]
) -> None:
    config = """
        d /ok1
        Y /bad-type
        d relative
        d /nouser 0755 nosuchuser
        d /ok2 0700
    """
    _, ours = compare(tmp_path, cinit_cmd, config, lambda root: None, ["--create"])
    assert ours.returncode == 65
    conf = tmp_path / "test.conf"
    assert f"{conf}:2: error: unknown line type 'Y'" in ours.stderr
    assert f"{conf}:4: error: unknown user 'nosuchuser'" in ours.stderr
    assert (tmp_path / "cinit/ok2").is_dir()


@needs_oracle
@needs_root
def test_no_machine_id_skips_the_lines_that_name_it(tmp_path: Path, cinit_cmd: list[str]) -> None:
    def no_machine_id(root: Path) -> None:
        (root / "etc/machine-id").unlink()

    config = "d /journal/%m\nz /journal/%m/x 0640\nd /ok\n"
    _, ours = compare(tmp_path, cinit_cmd, config, no_machine_id, ["--create"])
    assert ours.returncode == 0 and (tmp_path / "cinit/ok").is_dir()
    assert "hint: skipped: specifier %m has no value here" in ours.stderr


def config_dirs_tree(root: Path) -> None:
    for directory in ("etc", "run", "usr/lib", "usr/local/lib"):
        (root / directory / "tmpfiles.d").mkdir(parents=True, exist_ok=True)
    (root / "lib").symlink_to("usr/lib")
    files = {
        "usr/lib/tmpfiles.d/a.conf": "d /from-usr-a\n",
        "etc/tmpfiles.d/a.conf": "d /from-etc-a\n",
        "usr/lib/tmpfiles.d/b.conf": "d /shared 0700\nd /from-usr-b\n",
        "run/tmpfiles.d/b.conf": "d /shared 0711\nd /from-run-b\n",
        "usr/local/lib/tmpfiles.d/c.conf": "d /shared 0750\nd /from-local-c\n",
        "usr/lib/tmpfiles.d/c.conf": "d /from-usr-c\n",
        "usr/lib/tmpfiles.d/d.conf": "d /masked\n",
        "usr/lib/tmpfiles.d/e.conf.disabled": "d /not-conf\n",
    }
    for path, text in files.items():
        (root / path).write_text(text)
    (root / "etc/tmpfiles.d/d.conf").symlink_to("/dev/null")


@needs_oracle
@needs_root
def test_configuration_directories_override_and_mask_as_systemd(
    tmp_path: Path, cinit_cmd: list[str]
) -> None:
    compare(tmp_path, cinit_cmd, None, config_dirs_tree, ["--create"])
    tree = tmp_path / "cinit"
    assert (tree / "from-etc-a").is_dir() and not (tree / "from-usr-a").exists()
    assert (tree / "from-run-b").is_dir() and not (tree / "masked").exists()
    assert stat.S_IMODE((tree / "shared").stat().st_mode) == 0o711  # b.conf: first name


@needs_oracle
@needs_root
def test_a_config_named_without_a_path_is_looked_up(tmp_path: Path, cinit_cmd: list[str]) -> None:
    for side in ("systemd", "cinit"):
        root = tmp_path / side
        root.mkdir()
        base_tree(root)
        config_dirs_tree(root)
    oracle = subprocess.run(
        [SYSTEMD_TMPFILES or "", f"--root={tmp_path / 'systemd'}", "--create", "b.conf"],
        capture_output=True,
        timeout=60,
    )
    ours = cinit_tmpfiles(cinit_cmd, f"--root={tmp_path / 'cinit'}", "--create", "b.conf")
    assert (oracle.returncode, ours.returncode) == (0, 0)
    assert snapshot(tmp_path / "systemd") == snapshot(tmp_path / "cinit")
    assert (tmp_path / "cinit/from-run-b").is_dir()
    assert not (tmp_path / "cinit/from-etc-a").exists()


def test_symlinks_never_lead_out_of_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "inside").mkdir(parents=True)
    canary = f"/cinit-tmpfiles-canary-{os.getpid()}"
    (root / "abs").symlink_to(canary)  # absolute: means <root>/<canary>
    (root / "up").symlink_to("../../../../../../../../..")  # `..` stops at the root
    conf = tmp_path / "escape.conf"
    lines = ["d /abs/made", f"f /up{canary}-file", "f /abs/made/f", "w /abs/made/f - - - - x"]
    conf.write_text("\n".join([*lines, "R /up/inside", ""]))
    try:
        run = apply(str(root), [str(conf)], create=True, remove=True)
        assert not os.path.lexists(canary) and not os.path.lexists(f"{canary}-file")
    finally:
        for leaked in (canary, f"{canary}-file"):
            if os.path.isdir(leaked) and not os.path.islink(leaked):
                shutil.rmtree(leaked)
            elif os.path.lexists(leaked):
                os.unlink(leaked)
    assert (root / canary.lstrip("/") / "made/f").read_text() == "x"
    assert (root / f"{canary.lstrip('/')}-file").is_file()
    assert not (root / "inside").exists()  # R /up/inside is <root>/inside
    assert run.failed == 0 and run.bad_lines == 0


def test_acl_names_come_from_the_roots_group_file(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/group").write_text("staff:x:777:\n")
    (root / "d").mkdir()
    conf = tmp_path / "acl.conf"
    conf.write_text("a /d - - - - group:staff:r-x\na /d - - - - group:nosuch:r-x\nd /e\n")
    run = apply(str(root), [str(conf)], create=True)
    access = os.getxattr(root / "d", "system.posix_acl_access")
    entries = [struct.unpack_from("<HHI", access, 4 + 8 * n) for n in range(len(access) // 8)]
    assert (0x08, 5, 777) in entries  # a named group entry for gid 777, r-x
    assert run.bad_lines == 1 and run.exit_status == 65
    assert "unknown group 'nosuch'" in run.diagnostics[-1].message


def test_a_missing_config_name_and_usage(tmp_path: Path, cinit_cmd: list[str]) -> None:
    root = tmp_path / "root"
    root.mkdir()
    missing = cinit_tmpfiles(cinit_cmd, f"--root={root}", "--create", "nope.conf")
    assert missing.returncode == 65
    assert "nope.conf: error: no such configuration file" in missing.stderr
    usage = cinit_tmpfiles(cinit_cmd, f"--root={root}")
    assert usage.returncode == 2 and "give --create, --remove or both" in usage.stderr
    no_root = cinit_tmpfiles(cinit_cmd, f"--root={tmp_path}/absent", "--create")
    assert no_root.returncode == 1 and "not a directory" in no_root.stderr


@pytest.mark.parametrize(
    ("tmpfiles", "systemd", "fresh_run", "units", "pid1", "wanted"),
    [
        (None, False, True, True, True, True),  # a container's empty /run, units to boot
        (None, False, True, False, True, False),  # `cinit -- CMD` stays tini-like
        (None, False, False, True, True, False),  # a /run with content: maybe a host's
        (None, True, False, True, True, True),  # an image laid out for systemd
        (True, False, False, False, True, True),  # --tmpfiles forces it
        (True, True, True, True, False, False),  # never when not PID 1
        (False, True, True, True, True, False),  # --no-tmpfiles wins
    ],
)
def test_when_boot_applies_tmpfiles(
    tmpfiles: bool | None, systemd: bool, fresh_run: bool, units: bool, pid1: bool, wanted: bool
) -> None:
    from cinit.boot import BootConfig, _tmpfiles_wanted

    config = BootConfig(tmpfiles=tmpfiles, systemd=systemd)
    assert _tmpfiles_wanted(config, fresh_run, units, pid1=pid1) is wanted


@needs_oracle
@needs_root
def test_this_machines_own_tmpfiles_d_as_systemd_tmpfiles_at_boot(
    tmp_path: Path, cinit_cmd: list[str]
) -> None:
    # The package files of the machine the tests run on (Debian's systemd, dbus, and the
    # daemons' own: postgresql, php-fpm, haproxy, ... when installed), copied into both
    # roots with its users, carried out as at boot.
    shipped = sorted(Path("/usr/lib/tmpfiles.d").glob("*.conf"))
    if not shipped:
        pytest.skip("this machine ships no /usr/lib/tmpfiles.d/*.conf")

    def setup(root: Path) -> None:
        (root / "usr/lib/tmpfiles.d").mkdir(parents=True)
        for conf in shipped:
            shutil.copy(conf, root / "usr/lib/tmpfiles.d" / conf.name)
        for name in ("passwd", "group"):
            if Path(f"/etc/{name}").exists():
                shutil.copy(f"/etc/{name}", root / "etc" / name)
        (root / "tmp/left-over").mkdir(parents=True)
        (root / "tmp/left-over/file").write_text("x")
        (root / "var").mkdir()

    _, ours = compare(tmp_path, cinit_cmd, None, setup, ["--create", "--remove", "--boot"])
    assert "entries applied from" in ours.stderr


def test_a_line_the_kernel_cannot_take_fails_alone(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    conf = tmp_path / "big.conf"
    conf.write_text("c /dev/huge 0600 - - - 99999999999999:1\nd /after\n")
    run = apply(str(root), [str(conf)], create=True)
    if not run.diagnostics:
        pytest.skip("this machine has no CAP_MKNOD: device lines are skipped")
    assert run.failed == 1 and run.applied == 1 and (root / "after").is_dir()
    assert run.diagnostics[0].format().startswith(f"{conf}:1: error: c {root}/dev/huge: ")


def test_what_counts_as_a_fresh_run(tmp_path: Path) -> None:
    from cinit.boot import _run_is_fresh

    run = tmp_path / "run"
    assert _run_is_fresh(str(run))  # none at all
    run.mkdir()
    (run / ".containerenv").write_text("")
    (run / "secrets").mkdir()
    (run / "lock").mkdir()
    assert _run_is_fresh(str(run))  # what runtimes and Debian's images put there
    (run / "lock/held").write_text("")
    assert not _run_is_fresh(str(run))  # a lock in use: a running system's /run
    (run / "lock/held").unlink()
    (run / "user").mkdir()
    assert not _run_is_fresh(str(run))


@needs_root
def test_removal_never_enters_a_mount_point(tmp_path: Path, cinit_cmd: list[str]) -> None:
    # A bind mount of the same file system (st_dev alone cannot tell it) inside what D, R
    # and Z act on, as `docker run -v /data:/tmp/data` makes: its contents are not theirs.
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    kept = tmp_path / "kept"
    (kept / "sub").mkdir(parents=True)
    (kept / "sub/precious").write_text("host data")
    root = tmp_path / "root"
    for directory in ("D1/bound", "R1/bound", "Z1/bound"):
        (root / directory).mkdir(parents=True)
    (root / "D1/mine").write_text("goes")
    conf = tmp_path / "mounts.conf"
    conf.write_text("D /D1\nR /R1\nZ /Z1 0700\n")
    binds = "; ".join(f"mount --bind {kept} {root}/{d}/bound" for d in ("D1", "R1", "Z1"))
    cinit = " ".join(cinit_cmd)
    command = f"set -e; {binds}; exec {cinit} tmpfiles --root={root} --remove --create {conf}"
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (kept / "sub/precious").read_text() == "host data", done.stderr
    assert stat.S_IMODE((kept / "sub").stat().st_mode) == 0o755  # Z did not enter it
    assert not (root / "D1/mine").exists()  # the rest was removed
    assert "Traceback" not in done.stderr


def test_lines_from_standard_input(tmp_path: Path, cinit_cmd: list[str]) -> None:
    root = tmp_path / "root"
    root.mkdir()
    done = subprocess.run(
        [*cinit_cmd, "tmpfiles", "--create", f"--root={root}", "-"],
        input="d /from-stdin 0700\nbad\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 65
    assert "<stdin>:2: error: a line needs at least a type and a path" in done.stderr
    assert stat.S_IMODE((root / "from-stdin").stat().st_mode) == 0o700


def test_a_fake_systemd_root_is_where_tmpfiles_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    # `cinit --systemd --systemd-root DIR` (tests, layout checks) must never apply the
    # host's tmpfiles.d to the host: DIR is the root for tmpfiles.d as for the unit files.
    from cinit.boot import BootConfig, _tmpfiles_root

    monkeypatch.delenv("CINIT_SYSTEMD_ROOT", raising=False)
    assert _tmpfiles_root(BootConfig()) == "/"
    assert _tmpfiles_root(BootConfig(systemd=True)) == "/"
    assert _tmpfiles_root(BootConfig(systemd=True, systemd_root="/srv/img")) == "/srv/img"
    monkeypatch.setenv("CINIT_SYSTEMD_ROOT", "/srv/other")
    assert _tmpfiles_root(BootConfig(systemd=True)) == "/srv/other"
    assert _tmpfiles_root(BootConfig(tmpfiles=True)) == "/"
