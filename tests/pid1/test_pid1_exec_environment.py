"""The execution environment a unit's command gets (issue 15, systemd.exec(5)), seen from
inside the command: Limit*=, UMask=, Nice=, OOMScoreAdjust=, IgnoreSIGPIPE=, the exec
directories (RuntimeDirectory=, StateDirectory=, ...) and SyslogIdentifier=.

Each test boots cinit as PID 1 (`unshare --pid --fork --mount-proc`, which also gives it a
mount namespace of its own) behind a small shell that mounts a private tmpfs on /run and
binds temporary directories over /var/lib, /var/cache, /var/log: nothing of the host's is
created or removed. The service prints what the kernel says (/proc/self/limits,
/proc/self/status, /proc/self/oom_score_adj, `nice`, `stat`); the main command waits for
its report and then ends the boot, so cinit stops the service (and removes its runtime
directory) before it exits.
"""

from __future__ import annotations

import json
import pwd
import re
import resource
import shlex
import shutil
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Starter = Callable[..., Any]  # the pid1 fixture (tests/pid1/conftest.py)

pytestmark = [pytest.mark.pid1, pytest.mark.cinit_only("unit files"), pytest.mark.timeout(60)]

SIGPIPE_BIT = 1 << (13 - 1)  # SigIgn is a mask with bit N-1 for signal N


def _nobody() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' on this machine")


def _boot(
    pid1: Starter,
    tmp_path: Path,
    units: dict[str, str],
    wait_for: str,
    then: str = "",
    blocker: str = "",
    wrap: tuple[str, ...] = (),
) -> tuple[int, str, str, Path]:
    """Boot `units` as PID 1 with private /run (a directory of the test's, bound there) and
    /var/lib, /var/cache, /var/log; the main command waits until `wait_for` exists (a
    path inside the namespace), runs `then`, and exits, which stops every unit. Returns
    the exit status, stdout, stderr and the directory that was /run. `blocker`: a file
    put in /run first (where a unit wants a directory). `wrap`: programs that exec the
    rest (setpriv, prlimit), run as the namespace's PID 1 before the init."""
    unit_dir = tmp_path / "units"
    unit_dir.mkdir()
    for name, text in units.items():
        (unit_dir / name).write_text(text)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    if blocker:
        (run_dir / blocker).write_text("not a directory\n")
    mounts = [f"mount --bind {shlex.quote(str(run_dir))} /run"]
    for target in ("/var/lib", "/var/cache", "/var/log"):
        source = tmp_path / target.strip("/").replace("/", "-")
        source.mkdir()
        mounts.append(f"mount --bind {shlex.quote(str(source))} {target}")
    setup = " && ".join(mounts) + ' && exec "$@"'
    main = (
        f"i=0; while [ ! -e {shlex.quote(wait_for)} ] && [ $i -lt 300 ]; do "
        f"sleep 0.05; i=$((i+1)); done; {then}"
    )
    run = pid1(
        ["/bin/sh", "-c", main],
        options=["--units", str(unit_dir)],
        before_init=[*wrap, "/bin/sh", "-c", setup, "sh"],
    )
    code = run.wait(40)
    return code, run.out.text(), run.err.text(), run_dir


def _key(line: str) -> str:
    """`Max open files` of a /proc/self/limits line, `Umask` of a status line."""
    if line.startswith("Max "):
        return re.split(r"\s{2,}", line)[0]
    return line.split(":")[0]


def _lines(out: str, prefix: str) -> list[str]:
    return [line[len(prefix) :] for line in out.splitlines() if line.startswith(prefix)]


def test_limits_umask_nice_oom_score_and_sigpipe_reach_the_command(
    pid1: Starter, tmp_path: Path
) -> None:
    nobody = _nobody()
    # As User=nobody: a lower nice level needs root, so it proves cinit set it before it
    # dropped privileges (a lower OOM score needs CAP_SYS_RESOURCE: see the next test).
    probe = (
        "grep -E '^Max (open files|core file size|cpu time|processes) ' /proc/self/limits; "
        "grep -E '^(Umask|SigIgn|Uid):' /proc/self/status; "
        'echo "oom $(cat /proc/self/oom_score_adj)"; echo "nice $(nice)"; touch /run/probe/done'
    )
    unit = f"""[Service]
Type=oneshot
User=nobody
LimitNOFILE=1000:2000
LimitCORE=infinity
LimitCPU=1h
LimitNPROC=500
UMask=0027
Nice=-5
OOMScoreAdjust=300
RuntimeDirectory=probe
ExecStart=/bin/sh -c {shlex.quote(probe)}
"""
    code, out, err, _ = _boot(pid1, tmp_path, {"probe.service": unit}, "/run/probe/done")
    assert code == 0, err
    lines = {_key(line): line for line in _lines(out, "probe.service: ")}
    assert "Max open files" in lines, out + err
    assert re.search(r"Max open files\s+1000\s+2000\s", lines["Max open files"]), out
    assert re.search(r"Max core file size\s+unlimited\s+unlimited\s", lines["Max core file size"])
    assert re.search(r"Max cpu time\s+3600\s+3600\s", lines["Max cpu time"]), out
    assert re.search(r"Max processes\s+500\s+500\s", lines["Max processes"]), out
    assert lines["Umask"].split()[-1] == "0027", out
    assert int(lines["SigIgn"].split()[-1], 16) & SIGPIPE_BIT, out  # IgnoreSIGPIPE=yes
    assert lines["Uid"].split()[1] == str(nobody.pw_uid), out
    assert "probe.service: oom 300" in out.splitlines(), out
    assert "probe.service: nice -5" in out.splitlines(), out


def test_a_lower_oom_score_without_cap_sys_resource_is_ignored_as_systemd_does(
    pid1: Starter, tmp_path: Path
) -> None:
    # dbus and postgresql ship OOMScoreAdjust=-900; Docker drops CAP_SYS_RESOURCE. With the
    # capability the score is set, without it the command still runs with its old score.
    capable = _has_capability(24)  # CAP_SYS_RESOURCE
    unit = """[Service]
Type=oneshot
OOMScoreAdjust=-900
ExecStart=/bin/sh -c 'echo "oom $(cat /proc/self/oom_score_adj)"; touch /run/done'
"""
    code, out, err, _ = _boot(pid1, tmp_path, {"probe.service": unit}, "/run/done")
    assert code == 0, err
    [line] = _lines(out, "probe.service: oom ")
    if capable:
        assert line == "-900", out
    else:
        assert line != "-900", out
    assert "failed" not in out + err, out + err


def _has_capability(bit: int) -> bool:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> bit & 1)
    return False


def test_a_lower_nice_level_without_cap_sys_nice_goes_as_low_as_rlimit_nice_allows(
    pid1: Starter, tmp_path: Path
) -> None:
    # Docker drops CAP_SYS_NICE: systemd's setpriority_closest() then sets the lowest level
    # RLIMIT_NICE allows instead of failing the unit. cinit here runs at nice 5 without
    # CAP_SYS_NICE (taken from the bounding set before it starts); RLIMIT_NICE is raised to
    # 25 (levels down to -5) where the test may (CAP_SYS_RESOURCE or a hard limit that
    # high), else it allows nothing below 5 and the command stays at 5.
    if shutil.which("setpriv") is None or shutil.which("prlimit") is None:
        pytest.skip("needs setpriv and prlimit (util-linux)")
    unit = """[Service]
Type=oneshot
Nice=-10
ExecStart=/bin/sh -c 'echo "nice $(nice)"; touch /run/done'
"""
    hard = resource.getrlimit(resource.RLIMIT_NICE)[1]
    raisable = hard == resource.RLIM_INFINITY or hard >= 25 or _has_capability(24)
    wrap = ("setpriv", "--bounding-set=-sys_nice", "nice", "-n", "5")
    if raisable:
        wrap = ("prlimit", "--nice=25:25", *wrap)
    code, out, err, _ = _boot(pid1, tmp_path, {"probe.service": unit}, "/run/done", wrap=wrap)
    assert code == 0, err
    expected = "-5" if raisable else "5"
    assert f"probe.service: nice {expected}" in out.splitlines(), out + err
    assert "failed" not in out + err, out + err


def test_ignore_sigpipe_no_leaves_sigpipe_at_its_default(pid1: Starter, tmp_path: Path) -> None:
    unit = """[Service]
Type=oneshot
IgnoreSIGPIPE=no
ExecStart=/bin/sh -c 'grep ^SigIgn: /proc/self/status; touch /run/done'
"""
    code, out, err, _ = _boot(pid1, tmp_path, {"probe.service": unit}, "/run/done")
    assert code == 0, err
    [line] = _lines(out, "probe.service: SigIgn:")
    assert int(line.split()[-1], 16) & SIGPIPE_BIT == 0, out


def test_runtime_directory_is_the_users_and_goes_when_the_unit_stops(
    pid1: Starter, tmp_path: Path
) -> None:
    nobody = _nobody()
    unit = """[Service]
User=nobody
RuntimeDirectory=web web-extra/sockets
RuntimeDirectoryMode=0750
StateDirectory=web
CacheDirectory=web
LogsDirectory=web
ExecStart=/bin/sh -c 'echo "env $RUNTIME_DIRECTORY $STATE_DIRECTORY $CACHE_DIRECTORY \
$LOGS_DIRECTORY"; touch /run/web/ready; exec sleep 30'
"""
    keep = """[Service]
RuntimeDirectory=kept
RuntimeDirectoryPreserve=yes
ExecStart=/bin/sh -c 'touch /run/kept/ready; exec sleep 30'
"""
    # The main command looks at the directories while the services run, from outside them.
    look = (
        "while [ ! -e /run/kept/ready ]; do sleep 0.05; done; "
        "stat -c 'stat %n %U %G %a' /run/web /run/web-extra /run/web-extra/sockets "
        "/var/lib/web /var/cache/web /var/log/web"
    )
    code, out, err, run_dir = _boot(
        pid1, tmp_path, {"web.service": unit, "keep.service": keep}, "/run/web/ready", look
    )
    assert code == 0, err
    assert (
        "web.service: env /run/web:/run/web-extra/sockets /var/lib/web /var/cache/web /var/log/web"
        in out.splitlines()
    ), out
    stats = {
        line.split()[1]: line.split()[2:] for line in _lines(out, "") if line.startswith("stat ")
    }
    assert stats["/run/web"] == ["nobody", _group_name(nobody.pw_gid), "750"], out
    assert stats["/run/web-extra"] == ["root", "root", "755"], out  # a parent: root's
    assert stats["/run/web-extra/sockets"][:1] == ["nobody"], out
    for path in ("/var/lib/web", "/var/cache/web", "/var/log/web"):
        assert stats[path] == ["nobody", _group_name(nobody.pw_gid), "755"], out
    # Stopped: the runtime directory is gone, its parent stays; Preserve=yes keeps its own.
    assert not (run_dir / "web").exists()
    assert not (run_dir / "web-extra" / "sockets").exists()
    assert (run_dir / "web-extra").is_dir()
    assert (run_dir / "kept" / "ready").exists()


def _group_name(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def test_a_runtime_directory_that_cannot_be_made_fails_the_unit_with_233(
    pid1: Starter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    unit = """[Service]
Type=oneshot
RuntimeDirectory=blocked
ExecStart=/bin/true
"""
    after = """[Unit]
After=bad.service
[Service]
Type=oneshot
ExecStart=/bin/touch /run/done
"""
    code, out, err, _ = _boot(
        pid1,
        tmp_path,
        {"bad.service": unit, "after.service": after},
        "/run/done",
        # systemd's status for it (EXIT_RUNTIME_DIRECTORY), as `cinit status` tells it.
        then=(
            "i=0; until [ -S /run/cinit/control ] || [ $i -ge 100 ]; do sleep 0.05; "
            f"i=$((i+1)); done; echo STATUS $({shlex.join(cinit_cmd)} status --json)"
        ),
        blocker="blocked",
    )
    assert code == 0, err
    [status] = _lines(out, "STATUS ")
    assert json.loads(status)["units"]["bad.service"]["last_exit"]["code"] == 233, status
    log = out + err
    assert "bad.service: cannot set up RuntimeDirectory=blocked (/run/blocked)" in log, log
    assert "bad.service: failed" in log, log
    assert "after.service: exited (status=0)" in log, log
    assert "cannot remove" not in log, log  # the file was never the unit's directory
    assert "Traceback" not in log


def test_syslog_identifier_prefixes_the_output_lines(pid1: Starter, tmp_path: Path) -> None:
    unit = """[Service]
Type=oneshot
SyslogIdentifier=nginx-main
ExecStart=/bin/sh -c 'echo hello from the unit; touch /run/done'
"""
    code, out, err, _ = _boot(pid1, tmp_path, {"web.service": unit}, "/run/done")
    assert code == 0, err
    assert "nginx-main: hello from the unit" in out.splitlines(), out
    assert "web.service: hello from the unit" not in out
    # cinit's own lines still name the unit.
    assert "web.service: exited (status=0)" in out + err, out + err


def test_a_hard_limit_above_cinits_is_capped_at_it_as_systemd_does(
    pid1: Starter, tmp_path: Path
) -> None:
    # Raising a hard limit needs CAP_SYS_RESOURCE (containers seldom have it: redis ships
    # LimitNOFILE=65535), and nobody may pass fs.nr_open: systemd's setrlimit_closest()
    # then sets both limits to the hard limit it has. cinit's is the test's own.
    nr_open = int(Path("/proc/sys/fs/nr_open").read_text())
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    unit = f"""[Service]
Type=oneshot
LimitNOFILE={nr_open + 1}
ExecStart=/bin/sh -c 'grep "^Max open files" /proc/self/limits; touch /run/done'
"""
    code, out, err, _ = _boot(pid1, tmp_path, {"capped.service": unit}, "/run/done")
    assert code == 0, err
    [line] = _lines(out, "capped.service: Max open files")
    assert line.split()[:2] == [str(hard), str(hard)], out
    assert "failed" not in out + err, out + err


def test_socket_options_are_set_on_the_fds_the_service_gets(
    pid1: Starter, prog: Callable[..., list[str]], tmp_path: Path
) -> None:
    report = " ".join(shlex.quote(w) for w in prog("socket_options_report.py", "/run/done"))
    python = shlex.quote(sys.executable)
    sock = """[Socket]
ListenStream=/run/opts/deep/stream.sock
ListenDatagram=/run/opts/dgram/d.sock
PassCredentials=yes
PassSecurity=yes
ReceiveBuffer=1M
SendBuffer=256K
DirectoryMode=0700
Symlinks=/run/links/stream-link
"""
    service = f"""[Service]
Type=oneshot
ExecStart={report}
"""
    # The main command connects once (that starts the service), then waits for its report.
    connect = (
        f"{python} -c 'import socket; s = socket.socket(socket.AF_UNIX); "
        's.connect("/run/links/stream-link")\' ; '
        "stat -c 'stat %n %a' /run/opts /run/opts/deep /run/opts/dgram; "
        "readlink /run/links/stream-link | sed 's/^/link /'"
    )
    code, out, err, _ = _boot(
        pid1,
        tmp_path,
        {"opts.socket": sock, "opts.service": service},
        "/run/opts/deep/stream.sock",
        connect + "; i=0; while [ ! -e /run/done ] && [ $i -lt 200 ]; do sleep 0.05; "
        "i=$((i+1)); done",
    )
    assert code == 0, err
    # One line per fd and run. The service never accepts the connection, which stays
    # queued: the socket may trigger it again before the main command ends (as systemd
    # would), so runs come in pairs; each run's pair is checked.
    reports = _lines(out, "opts.service: fd ")
    assert reports and len(reports) % 2 == 0, out + err
    for line in reports:
        fields = dict(word.split("=") for word in line.split()[1:])
        assert fields["passcred"] == "1", line
        assert fields["passsec"] == "1", line
        # The kernel doubles what it is given (socket(7)); FORCE lets root pass rmem_max.
        assert int(fields["rcvbuf"]) == 2 * 1024 * 1024, line
        assert int(fields["sndbuf"]) == 2 * 256 * 1024, line
    types = sorted(dict(w.split("=") for w in line.split()[1:])["type"] for line in reports[:2])
    assert types == [str(int(socket.SOCK_STREAM)), str(int(socket.SOCK_DGRAM))], out
    stats = {line.split()[0]: line.split()[1] for line in _lines(out, "stat ")}
    assert stats == {"/run/opts": "700", "/run/opts/deep": "700", "/run/opts/dgram": "700"}
    assert "link /run/opts/deep/stream.sock" in out.splitlines(), out
