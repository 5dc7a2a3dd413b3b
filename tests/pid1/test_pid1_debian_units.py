"""Debian 12's redis-server.service and ssh.service, byte for byte (tests/data/debian/), booted
by cinit as PID 1: the issue's "Missing privilege separation directory: /run/sshd" is gone
(RuntimeDirectory=), redis gets /run/redis as redis:redis 2755, UMask=007 and its
LimitNOFILE= (capped at cinit's hard limit where it cannot be raised, as systemd does), and
both answer their own clients (redis-cli ping, ssh-keyscan). Their sandboxing directives
are accepted, not applied. rsyslog.service takes systemd's syslog.socket (PassCredentials=,
PassSecurity=, ReceiveBuffer=) and `logger` reaches /var/log/syslog.

Isolation: a PID, mount and network namespace (`unshare ... --net`, loopback brought up),
a directory of the test's bound on /run (so the test sees what is left there after the
stop), a private tmpfs on /tmp, and directories of the test's bound over /var/lib/redis and
/var/log/redis: nothing of the host's is written. Needs the packages installed (the .ci
image has them); skipped, saying which is missing, otherwise.
"""

from __future__ import annotations

import os
import pwd
import resource
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Starter = Callable[..., Any]  # the pid1 fixture (tests/pid1/conftest.py)

pytestmark = [pytest.mark.pid1, pytest.mark.cinit_only("unit files"), pytest.mark.timeout(90)]

DEBIAN = Path(__file__).resolve().parents[1] / "data" / "debian"
NEEDED = [
    "/usr/bin/redis-server", "/usr/bin/redis-cli", "/usr/sbin/sshd", "/etc/redis/redis.conf",
    "/etc/ssh/ssh_host_ed25519_key", "/var/lib/redis", "/var/log/redis",
]  # fmt: skip


def _missing() -> str | None:
    for path in NEEDED:
        if not os.path.exists(path):
            return f"{path} is missing (apt-get install redis-server openssh-server)"
    for program in ("ssh-keyscan", "ip"):
        if shutil.which(program) is None:
            return f"{program} is not installed"
    try:
        pwd.getpwnam("redis")
    except KeyError:
        return "no user redis"
    return None


def test_redis_and_ssh_serve_from_their_unchanged_units(pid1: Starter, tmp_path: Path) -> None:
    missing = _missing()
    if missing:
        pytest.skip(missing)
    redis = pwd.getpwnam("redis")
    units = tmp_path / "units"
    units.mkdir()
    for name in ("redis-server.service", "ssh.service"):
        shutil.copyfile(DEBIAN / name, units / name)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    binds = {"run": "/run", "redis-lib": "/var/lib/redis", "redis-log": "/var/log/redis"}
    for source in binds:
        (tmp_path / source).mkdir(exist_ok=True)
        if source.startswith("redis"):
            os.chown(tmp_path / source, redis.pw_uid, redis.pw_gid)
    # The test's directory lives under /tmp: kept reachable through a mount point outside
    # it while a private tmpfs covers /tmp, then bound back at its own path.
    keep = next((d for d in ("/mnt", "/srv", "/media") if os.path.isdir(d)), None)
    if keep is None:
        pytest.skip("no /mnt, /srv or /media to keep the test's directory reachable")
    here = shlex.quote(str(tmp_path))
    setup = " && ".join(
        ["ip link set lo up"]
        + [f"mount --bind {shlex.quote(str(tmp_path / s))} {t}" for s, t in binds.items()]
        + [f"mount --bind {here} {keep}", "mount -t tmpfs tmpfs /tmp"]
        + [f"mkdir -p {here}", f"mount --bind {keep} {here}"]
    )
    main = """
for i in $(seq 1 200); do
  redis-cli -h 127.0.0.1 ping 2>/dev/null | grep -q PONG && break; sleep 0.05
done
echo "redis: $(redis-cli -h 127.0.0.1 ping)"
for i in $(seq 1 200); do [ -e /run/sshd.pid ] && break; sleep 0.05; done
echo "ssh: $(ssh-keyscan -T 5 -t ed25519 127.0.0.1 2>/dev/null | cut -d' ' -f2)"
stat -c 'stat %n %U %G %a' /run/redis /run/sshd
pid=$(cat /run/redis/redis-server.pid)
grep '^Max open files' /proc/$pid/limits | sed 's/^/limits /'
grep '^Umask' /proc/$pid/status
"""
    run = pid1(
        ["/bin/sh", "-c", main],
        options=["--units", str(units)],
        before_init=["--net", "/bin/sh", "-c", setup + ' && exec "$@"', "sh"],
    )
    assert run.wait(60) == 0, run.err.text()
    out, err = run.out.text(), run.err.text()
    lines = out.splitlines()
    assert "redis: PONG" in lines, out + err
    assert "ssh: ssh-ed25519" in lines, out + err
    assert "Missing privilege separation directory" not in err
    assert "stat /run/redis redis redis 2755" in lines, out
    assert "stat /run/sshd root root 755" in lines, out
    [limits] = [line.split()[4:6] for line in lines if line.startswith("limits ")]
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    expected = str(min(65535, hard))  # LimitNOFILE=65535, capped where it cannot be raised
    assert limits == [expected, expected], out
    assert "Umask:\t0007" in lines, out
    # Stopped: both runtime directories went with their units.
    assert not (run_dir / "redis").exists() and not (run_dir / "sshd").exists()
    for unit in ("redis-server.service", "ssh.service"):
        assert f"cinit: {unit}: stopped" in err, err


def test_rsyslog_takes_syslog_socket_with_its_options(pid1: Starter, tmp_path: Path) -> None:
    # rsyslog.service (Alias=syslog.service, LimitNOFILE=16384) and systemd's syslog.socket
    # (PassCredentials=, PassSecurity=, ReceiveBuffer=8M on /run/systemd/journal/syslog):
    # `logger` reaches /var/log/syslog through the socket cinit bound.
    for path in ("/usr/sbin/rsyslogd", "/etc/rsyslog.conf"):
        if not os.path.exists(path):
            pytest.skip(f"{path} is missing (apt-get install rsyslog)")
    if shutil.which("logger") is None or shutil.which("pgrep") is None:
        pytest.skip("needs logger and pgrep")
    units = tmp_path / "units"
    units.mkdir()
    for name in ("rsyslog.service", "syslog.socket"):
        shutil.copyfile(DEBIAN / name, units / name)
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    keep = next((d for d in ("/mnt", "/srv", "/media") if os.path.isdir(d)), None)
    if keep is None:
        pytest.skip("no /mnt, /srv or /media to keep the test's directory reachable")
    here = shlex.quote(str(tmp_path))
    setup = " && ".join(
        [
            "mount -t tmpfs tmpfs /run",
            f"mount --bind {shlex.quote(str(log_dir))} /var/log",
            f"mount --bind {here} {keep}",
            "mount -t tmpfs tmpfs /tmp",
            f"mkdir -p {here}",
            f"mount --bind {keep} {here}",
        ]
    )
    main = """
for i in $(seq 1 100); do
  logger -t cinit-probe "hello through syslog.socket" 2>/dev/null
  grep -q "hello through" /var/log/syslog 2>/dev/null && break; sleep 0.1
done
grep -c "cinit-probe: hello through syslog.socket" /var/log/syslog | sed 's/^/lines /'
stat -c 'stat %n %a' /run/systemd/journal/syslog
grep '^Max open files' /proc/$(pgrep -x rsyslogd)/limits | sed 's/^/limits /'
"""
    run = pid1(
        ["/bin/sh", "-c", main],
        options=["--units", str(units)],
        before_init=["/bin/sh", "-c", setup + ' && exec "$@"', "sh"],
    )
    assert run.wait(60) == 0, run.err.text()
    out, err = run.out.text(), run.err.text()
    lines = out.splitlines()
    [count] = [line.split()[1] for line in lines if line.startswith("lines ")]
    assert int(count) >= 1, out + err  # the message went through the socket into the file
    assert "stat /run/systemd/journal/syslog 666" in lines, out
    [limits] = [line.split()[4:6] for line in lines if line.startswith("limits ")]
    expected = str(min(16384, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    assert limits == [expected, expected], out
    assert "cinit: rsyslog.service: stopped" in err, err
