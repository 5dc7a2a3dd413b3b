"""Debian 12's nginx, haproxy, memcached and php8.2-fpm units, byte for byte (tests/data/debian/),
under cinit as PID 1: the lifecycle directives they use act (issue 15).

- nginx.service: Type=forking, PIDFile=, KillMode=mixed, ExecStop= with start-stop-daemon.
- haproxy.service: Type=notify from its master (NotifyAccess= main by default), KillMode=mixed
  (SIGTERM to the master, SIGKILL to what is left once it is gone), SuccessExitStatus=143.
- memcached.service: PIDFile= on a Type=simple service, Restart=always.
- php8.2-fpm.service: Type=notify, ExecStartPost=/ExecStopPost= helpers.

Each answers its own client; at the end every unit is `stopped` (none failed, none killed
by the stop timeout: KillMode=mixed does not wait for haproxy's or nginx's workers).

Isolation: a PID, mount and network namespace (loopback up), a private tmpfs on /run and
/tmp, directories of the test's bound over /var/log and /var/lib/nginx; tmpfiles.d is not
applied (`--no-tmpfiles`: the run directories the packages' tmpfiles.d lines ask for are
made by the test inside the private /run). Needs the packages; skipped, naming what is
missing, otherwise.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Starter = Callable[..., Any]  # the pid1 fixture (tests/pid1/conftest.py)

pytestmark = [pytest.mark.pid1, pytest.mark.cinit_only("unit files"), pytest.mark.timeout(120)]

DEBIAN = Path(__file__).resolve().parents[1] / "data" / "debian"
UNITS = ("nginx.service", "haproxy.service", "memcached.service", "php8.2-fpm.service")
NEEDED = [
    "/usr/sbin/nginx", "/usr/sbin/haproxy", "/usr/bin/memcached", "/usr/sbin/php-fpm8.2",
    "/usr/share/memcached/scripts/systemd-memcached-wrapper", "/etc/haproxy/haproxy.cfg",
    "/etc/memcached.conf", "/etc/php/8.2/fpm/php-fpm.conf", "/var/lib/haproxy",
]  # fmt: skip

# The run directories the packages' tmpfiles.d lines make: (path, owner, mode).
RUN_DIRS = [("/run/php", "www-data", "0755"), ("/run/haproxy", "haproxy", "2775"),
            ("/run/memcached", "memcache", "0755")]  # fmt: skip


def _missing() -> str | None:
    for path in NEEDED:
        if not os.path.exists(path):
            return f"{path} is missing (apt-get install nginx haproxy memcached php8.2-fpm)"
    for program in ("curl", "ip", "python3"):
        if shutil.which(program) is None:
            return f"{program} is not installed"
    return None


def test_packaged_daemons_start_answer_and_stop_through_their_lifecycle_directives(
    pid1: Starter, tmp_path: Path
) -> None:
    missing = _missing()
    if missing:
        pytest.skip(missing)
    keep = next((d for d in ("/mnt", "/srv", "/media") if os.path.isdir(d)), None)
    if keep is None:
        pytest.skip("no /mnt, /srv or /media to keep the test's directory reachable")
    units = tmp_path / "units"
    units.mkdir()
    for name in UNITS:
        shutil.copyfile(DEBIAN / name, units / name)
    log_dir, nginx_lib = tmp_path / "log", tmp_path / "nginx-lib"
    (log_dir / "nginx").mkdir(parents=True)
    nginx_lib.mkdir()
    here = shlex.quote(str(tmp_path))
    run_dirs = [
        f"mkdir -p {path} && chown {owner}:{owner} {path} && chmod {mode} {path}"
        for path, owner, mode in RUN_DIRS
    ]
    setup = " && ".join(
        [
            "ip link set lo up",
            "mount -t tmpfs tmpfs /run",
            *run_dirs,
            f"mount --bind {shlex.quote(str(log_dir))} /var/log",
            f"mount --bind {shlex.quote(str(nginx_lib))} /var/lib/nginx",
            f"mount --bind {here} {keep}",
            "mount -t tmpfs tmpfs /tmp",
            f"mkdir -p {here}",
            f"mount --bind {keep} {here}",
        ]
    )
    probe = r"""
import socket, sys, time
def ask(family, address, data, want):
    for _ in range(200):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect(address)
                if data:
                    s.sendall(data)
                    got = s.recv(4096)
                    if want in got:
                        return "ok"
                else:
                    return "ok"
        except OSError:
            pass
        time.sleep(0.05)
    return "no answer"
print("memcached:", ask(socket.AF_INET, ("127.0.0.1", 11211), b"stats\r\n", b"STAT pid"))
print("php-fpm:", ask(socket.AF_UNIX, "/run/php/php8.2-fpm.sock", b"", b""))
print("haproxy:", ask(socket.AF_UNIX, "/run/haproxy-master.sock", b"show proc\n", b"master"))
"""
    main = f"""
for i in $(seq 1 200); do
  [ "$(curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1/)" = 200 ] && break; sleep 0.05
done
echo "nginx: $(curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1/)"
python3 -I -S -c {shlex.quote(probe)}
for i in $(seq 1 100); do [ -s /run/memcached/memcached.pid ] && break; sleep 0.05; done
pid=$(cat /run/memcached/memcached.pid)
echo "memcached pid file: $(cat /proc/$pid/comm)"
"""
    run = pid1(
        ["/bin/sh", "-c", main],
        options=["--units", str(units), "--no-tmpfiles"],
        before_init=["--net", "/bin/sh", "-c", setup + ' && exec "$@"', "sh"],
    )
    assert run.wait(90) == 0, run.err.text()
    out, err = run.out.text(), run.err.text()
    lines = out.splitlines()
    for expected in (
        "nginx: 200",
        "memcached: ok",
        "php-fpm: ok",
        "haproxy: ok",
        "memcached pid file: memcached",
    ):
        assert expected in lines, f"{expected!r} missing\nstdout:\n{out}\nstderr:\n{err}"
    for unit in UNITS:
        assert f"cinit: {unit}: ready" in err, err
        assert f"cinit: {unit}: stopped" in err, err
        assert f"cinit: {unit}: failed" not in err, err
    assert "did not stop within" not in err, err  # KillMode=mixed: no stop timeout ran out
    # haproxy's and php-fpm's masters speak for their units while they run; a message still
    # queued when the main process has gone is dropped (as systemd does: no main pid then).
    running = err.split(": stopping\n", 1)[0]
    assert "ignored (NotifyAccess=" not in running, err
