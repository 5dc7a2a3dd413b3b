"""Issue 15, part 4: a Debian bookworm image with eleven services' packages, booted by
`cinit --systemd` (the standalone bin/cinit) as PID 1, every service answering its client.

The image (rootfs_image.py, `PACKAGED`: debootstrap minbase + `apt-get install` of nginx-light,
apache2, redis-server, openssh-server, cron, rsyslog, memcached, haproxy, php8.2-fpm, postgresql,
dbus and the clients, with a policy-rc.d that keeps apt from starting anything; cached under
~/.cache/cinit-e2e/) keeps the packages' unit files unchanged in /lib/systemd/system and apt's
enable links in /etc/systemd/system. php8.2-fpm depends on `systemd | systemd-tmpfiles`, so apt
installs systemd too: the image has systemd's own 240-odd units and its default.target ->
graphical.target, as an image converted from a VM would. `configure` adds what a Dockerfile
would after apt (image configuration, no unit file): apache on port 8080 (nginx holds 80), and
the PostgreSQL cluster's instance enabled (`systemctl enable postgresql@15-main`: the link it
writes) because cinit runs no generators (docs/systemd.md).

It boots as a container runtime starts a container (rootfs_support.py): new PID, mount and
network namespaces, a private /dev and a tmpfs /run, read-only kernel tunables in /proc,
RLIMIT_NOFILE 1048576 (where the test may raise it: a sandbox without CAP_SYS_RESOURCE keeps
its own) and Docker's default capability set, then `chroot TREE cinit --systemd`.
Each service must answer its own client, run inside the image through nsenter (curl, redis-cli,
ssh-keyscan, psql, dbus-send, logger reaching /var/log/syslog, cron's live pid file, memcached
`stats` over bash's /dev/tcp) or from the host through the image's /run (haproxy's admin
socket, php-fpm's FastCGI socket); `cinit status` inside must list them active; SIGTERM must
stop them along their ordering in reverse and cinit exit 0 with nothing left. Opt-in
(`CINIT_E2E_ROOTFS=1`, which `make e2e` sets): the first run downloads ~250 MB of packages
(5 min here); a cached run takes about a minute (half of it the boot settling).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rootfs_image import PACKAGED, image_tarball, unpack
from rootfs_support import (
    CINIT_BIN,
    OPT_IN,
    SERVICES,
    Image,
    boot,
    cgroup2_mount,
    cgroups_of,
    install_cinit,
    namespace_pids,
    rooted_in,
)

BOOT_TIMEOUT = 150.0  # every service answering: postgres' start, ~60 units, a loaded box
STOP_TIMEOUT = 60.0
READY_TIMEOUT = 90.0  # the boot settled: graphical.target, whose units wait up to 25 s on D-Bus
APACHE_PORT = 8080
TRACE = "tmp/container-init-trace.jsonl"  # CONTAINER_INIT_TRACE_FILE's default, in the tree
SYSTEM = "lib/systemd/system"
WANTS = "etc/systemd/system/multi-user.target.wants"
# What `systemctl enable postgresql@15-main` writes; systemd's postgresql-generator would
# put the same instance in /run/systemd/generator/postgresql.service.wants/ at boot.
INSTANCE_LINK = (f"{WANTS}/postgresql@15-main.service", "/lib/systemd/system/postgresql@.service")


pytestmark = [
    pytest.mark.pid1,
    pytest.mark.timeout(1800),  # the first run downloads and installs the packages
    pytest.mark.skipif(
        not OPT_IN,
        reason="opt-in: `make e2e` (as root; downloads Debian and ~250 MB of packages once)",
    ),
]


def configure(tree: Path) -> None:
    """The image's configuration after `apt-get install` (a Dockerfile's RUN lines)."""
    install_cinit(tree)
    for path, old, new in (
        ("etc/apache2/ports.conf", "Listen 80\n", f"Listen {APACHE_PORT}\n"),
        (
            "etc/apache2/sites-available/000-default.conf",
            "<VirtualHost *:80>",
            f"<VirtualHost *:{APACHE_PORT}>",
        ),
    ):
        text = (tree / path).read_text()
        assert old in text, f"{path} no longer says {old!r}: update the image configuration"
        (tree / path).write_text(text.replace(old, new))
    link, target = INSTANCE_LINK
    (tree / link).symlink_to(target)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Image]:
    if os.geteuid() != 0:
        pytest.fail("the rootfs e2e test needs root (debootstrap, chroot, unshare)")
    if not CINIT_BIN.is_file():
        pytest.fail(f"no standalone cinit at {CINIT_BIN}: run `make build` (or set CINIT_E2E_BIN)")
    tree = tmp_path_factory.mktemp("packaged") / "tree"
    unpack(image_tarball(PACKAGED), tree)
    configure(tree)
    booted = boot(tree, "--systemd", private_dev=True, net=True, confined=True)
    try:
        yield booted
    finally:
        booted.run.kill()
        shutil.rmtree(tree, ignore_errors=True)


# --- the clients ---------------------------------------------------------------------------
# Each returns what the service said (proof it answered) or None; each call is bounded.


def _inside(image: Image, *argv: str) -> tuple[int, str]:
    try:
        done = image.exec_inside(*argv, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:  # no answer; the loop asks again
        return -1, repr(exc)
    return done.returncode, (done.stdout + done.stderr).strip()


def _http(image: Image, port: int, server: str) -> str | None:
    code, out = _inside(
        image, "curl", "-sS", "-m", "3", "-o", "/dev/null", "-D", "-", f"http://127.0.0.1:{port}/"
    )
    lines = out.splitlines()
    header = next((line for line in lines if line.lower().startswith("server:")), "")
    if code == 0 and lines and " 200" in lines[0] and server in header:
        return f"{lines[0].strip()}; {header.strip()}"
    return None


def check_nginx(image: Image) -> str | None:
    return _http(image, 80, "nginx")


def check_apache2(image: Image) -> str | None:
    return _http(image, APACHE_PORT, "Apache")


def check_redis(image: Image) -> str | None:
    code, out = _inside(image, "redis-cli", "-h", "127.0.0.1", "-p", "6379", "ping")
    return out if code == 0 and out == "PONG" else None


def check_ssh(image: Image) -> str | None:
    code, out = _inside(image, "ssh-keyscan", "-T", "3", "127.0.0.1")
    keys = [line for line in out.splitlines() if line.startswith("127.0.0.1 ssh-")]
    return keys[0][:60] if code == 0 and keys else None


def check_cron(image: Image) -> str | None:
    """cron has no client: its pid file names a live `cron`."""
    code, out = _inside(image, "sh", "-c", 'pid=$(cat /run/crond.pid) && cat "/proc/$pid/comm"')
    return "/run/crond.pid names a live cron" if code == 0 and out == "cron" else None


def check_rsyslog(image: Image) -> str | None:
    token = f"cinit-e2e-{time.monotonic_ns()}"
    code, _ = _inside(image, "logger", "-t", "cinit-e2e", token)
    if code != 0:
        return None
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            if token in (image.tree / "var/log/syslog").read_text(errors="replace"):
                return f"logger {token} reached /var/log/syslog"
        except OSError:
            pass
        time.sleep(0.1)
    return None


def check_memcached(image: Image) -> str | None:
    script = 'exec 3<>/dev/tcp/127.0.0.1/11211 && printf "stats\\r\\nquit\\r\\n" >&3 && cat <&3'
    code, out = _inside(image, "bash", "-c", script)
    found = re.search(r"^STAT pid (\d+)", out, re.MULTILINE)
    return f"stats: STAT pid {found.group(1)}" if code == 0 and found else None


def _unix_exchange(path: Path, request: bytes, enough: Callable[[bytes], bool]) -> bytes:
    """Send `request` on the unix stream socket at `path`; the reply, read until `enough`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(3)
        conn.connect(str(path))
        conn.sendall(request)
        reply = b""
        while not enough(reply):
            chunk = conn.recv(65536)
            if not chunk:
                break
            reply += chunk
        return reply


def check_haproxy(image: Image) -> str | None:
    """`show info` on the stats socket of Debian's haproxy.cfg, reached through /proc."""
    path = image.inside() / "run/haproxy/admin.sock"
    try:
        reply = _unix_exchange(path, b"show info\n", lambda r: b"\n\n" in r)
    except OSError:
        return None
    name = re.search(rb"^Name: (.*)$", reply, re.MULTILINE)
    return f"admin.sock show info: {name.group(1).decode()}" if name else None


def check_php_fpm(image: Image) -> str | None:
    """A FastCGI FCGI_GET_VALUES record; php-fpm answers with FCGI_GET_VALUES_RESULT."""
    name = b"FCGI_MPXS_CONNS"
    body = bytes([len(name), 0]) + name
    padding = (-len(body)) % 8
    record = struct.pack(">BBHHBB", 1, 9, 0, len(body), padding, 0) + body + bytes(padding)
    path = image.inside() / "run/php/php8.2-fpm.sock"
    try:
        header = _unix_exchange(path, record, lambda r: len(r) >= 8)
    except OSError:
        return None
    if len(header) >= 8 and header[0] == 1 and header[1] == 10:
        return "php8.2-fpm.sock: FCGI_GET_VALUES_RESULT"
    return None


def check_postgresql(image: Image) -> str | None:
    query = "select 'answer ' || 6 * 7"
    code, out = _inside(image, "runuser", "-u", "postgres", "--", "psql", "-XAtq", "-c", query)
    return f"psql: {out}" if code == 0 and out == "answer 42" else None


def check_dbus(image: Image) -> str | None:
    code, out = _inside(
        image, "dbus-send", "--system", "--print-reply", "--reply-timeout=3000",
        "--dest=org.freedesktop.DBus", "/", "org.freedesktop.DBus.ListNames",
    )  # fmt: skip
    if code == 0 and '"org.freedesktop.DBus"' in out:
        return "ListNames lists org.freedesktop.DBus"
    return None


CHECKS: dict[str, Callable[[Image], str | None]] = {
    "nginx": check_nginx,
    "apache2": check_apache2,
    "redis": check_redis,
    "ssh": check_ssh,
    "cron": check_cron,
    "rsyslog": check_rsyslog,
    "memcached": check_memcached,
    "haproxy": check_haproxy,
    "php-fpm": check_php_fpm,
    "postgresql": check_postgresql,
    "dbus": check_dbus,
}


@pytest.fixture(scope="module")
def answers(image: Image) -> dict[str, str | None]:
    """Every service's answer (None: none within BOOT_TIMEOUT), each asked until it answers."""
    found: dict[str, str | None] = dict.fromkeys(CHECKS)
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline and image.run.proc.poll() is None:
        for service in [s for s, answer in found.items() if answer is None]:
            found[service] = CHECKS[service](image)
        if all(found.values()):
            break
        time.sleep(0.5)
    return found


@dataclass
class Shutdown:
    status: int
    seconds: float
    namespace_pids: list[int]  # host pids of every process of the namespace before SIGTERM
    cgroups: set[str]  # the v2 cgroups they were in (cinit's, one per unit)
    log: str


@pytest.fixture(scope="module")
def shutdown(image: Image, answers: dict[str, str | None]) -> Shutdown:
    """SIGTERM to cinit once the services answered (or the probes gave up)."""
    pids = namespace_pids(image.pid)
    cgroups = cgroups_of(pids)
    start = time.monotonic()
    image.run.send(signal.SIGTERM)
    status = image.run.wait(STOP_TIMEOUT + 10)
    seconds = time.monotonic() - start
    image.run.out.closed.wait(5)
    image.run.err.closed.wait(5)
    return Shutdown(status, seconds, pids, cgroups, image.run.err.data.decode(errors="replace"))


def _why(image: Image, unit: str) -> str:
    """cinit's own lines about `unit` (the reason a service did not answer)."""
    log = image.run.err.data.decode(errors="replace")
    lines = [line for line in log.splitlines() if f"{unit}:" in line or f"{unit} " in line]
    return "\n".join(lines[-15:]) or "(cinit said nothing about it)"


# --- the tests -----------------------------------------------------------------------------


def _md5sums(tree: Path) -> dict[str, str]:
    """Every file dpkg installed, with the md5 it shipped (the packages' own record)."""
    sums = {}
    for listing in (tree / "var/lib/dpkg/info").glob("*.md5sums"):
        for line in listing.read_text().splitlines():
            digest, _, path = line.partition("  ")
            sums[path] = digest
    return sums


def test_the_units_are_the_packages_own_and_apt_enabled_them(image: Image) -> None:
    sums = _md5sums(image.tree)
    units = sorted({*SERVICES.values(), "syslog.socket", "dbus.socket", "postgresql.service"})
    units = [u.replace("@15-main", "@") for u in units]
    for unit in units:
        path = f"usr/lib/systemd/system/{unit}"
        if path not in sums:  # packages built before merged /usr record /lib
            path = f"lib/systemd/system/{unit}"
        assert path in sums, f"no package shipped {unit}"
        digest = hashlib.md5((image.tree / path).read_bytes()).hexdigest()
        assert digest == sums[path], f"{unit} differs from its package's"
    # apt (deb-systemd-helper) enabled them, as `systemctl enable` would.
    wanted = sorted(p.name for p in (image.tree / WANTS).iterdir())
    for unit in {*SERVICES.values(), "postgresql.service"} - {"dbus.service"}:
        assert unit in wanted, f"{unit} is not enabled: {wanted}"
    assert (image.tree / "etc/systemd/system/syslog.service").is_symlink()  # rsyslog's Alias=
    assert not (image.tree / "etc/container-init").exists()  # nothing of cinit's own


def test_the_image_has_no_python_and_boots_systemd_s_layout(image: Image) -> None:
    found = sorted(str(p) for p in (image.tree / "usr/bin").glob("python*"))
    assert found == [], f"the image must have no Python: {found}"
    assert os.readlink(image.tree / SYSTEM / "default.target") == "graphical.target"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_service_answers_its_client(
    image: Image, answers: dict[str, str | None], service: str
) -> None:
    unit = SERVICES[service]
    assert image.run.proc.poll() is None, "cinit is gone" + image.report()
    assert answers[service], (
        f"{service} ({unit}) did not answer within {BOOT_TIMEOUT:g} s; cinit on it:\n"
        f"{_why(image, unit)}\nall answers: {answers}"
    )


def test_cinit_status_inside_lists_every_service_active(
    image: Image, answers: dict[str, str | None]
) -> None:
    table = image.exec_inside("cinit", "status")
    assert table.returncode == 0, table.stdout + table.stderr + image.report()
    for unit in SERVICES.values():
        assert re.search(rf"^{re.escape(unit)}\s", table.stdout, re.MULTILINE), table.stdout
    as_json = image.exec_inside("cinit", "status", "--json")
    assert as_json.returncode == 0, as_json.stderr
    units = json.loads(as_json.stdout)["units"]
    states = {unit: units[unit]["state"] for unit in SERVICES.values()}
    assert set(states.values()) == {"active"}, states
    # Socket-activated at boot: rsyslog got syslog.socket's fd (the alias syslog.service).
    assert units["syslog.socket"]["state"] == "active", units["syslog.socket"]


def test_the_whole_boot_settles_ready(image: Image, answers: dict[str, str | None]) -> None:
    """`cinit is-ready` (a container's health check) once the boot settled: nothing failed."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if image.exec_inside("cinit", "is-ready").returncode == 0:
            return
        status = image.exec_inside("cinit", "status", "--json")
        units = json.loads(status.stdout)["units"] if status.returncode == 0 else {}
        failed = sorted(name for name, unit in units.items() if unit["state"] == "failed")
        assert not failed, f"units failed, so cinit is never ready: {failed}"
        time.sleep(1)
    pytest.fail(f"cinit did not report the boot ready within {READY_TIMEOUT:g} s")


def test_cinit_validate_systemd_inside_checks_the_same_boot_set(
    image: Image, answers: dict[str, str | None]
) -> None:
    """`cinit validate --systemd` in the image: no error, and the boot set it names holds the
    services, their sockets and the instance the link enables (systemd's own units carry
    warnings: directives cinit does not know, such as DefaultDependencies=)."""
    done = image.exec_inside("cinit", "validate", "--systemd", "--json")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["ok"] and report["counts"]["errors"] == 0, report["counts"]
    wanted = {*SERVICES.values(), "syslog.socket", "dbus.socket", "postgresql.service"}
    assert wanted <= set(report["boot_units"]), sorted(wanted - set(report["boot_units"]))
    assert report["aliases"].get("syslog.service") == "rsyslog.service", report["aliases"]


def _trace(image: Image) -> list[dict[str, Any]]:
    path = image.tree / TRACE
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_sigterm_stops_everything_in_reverse_order_and_exits_0(
    image: Image, shutdown: Shutdown
) -> None:
    assert shutdown.status == 0, shutdown.log
    assert shutdown.seconds < STOP_TIMEOUT, f"{shutdown.seconds:.2f} s\n{shutdown.log}"
    alive = [pid for pid in shutdown.namespace_pids if Path(f"/proc/{pid}").exists()]
    assert alive == [], f"processes outlived the container: {alive}"
    assert rooted_in(image.tree) == []
    assert sorted(os.listdir(image.tree / "run")) == image.run_dir_before  # the tmpfs is gone
    mount = cgroup2_mount()
    if mount is not None:  # cinit removed the cgroups it made (they are the host's)
        left = sorted(c for c in shutdown.cgroups if (mount / c.lstrip("/")).exists())
        assert left == [], f"cgroups left behind: {left}"
    records = _trace(image)
    kinds = [r["event"] for r in records]
    assert "shutdown-started" in kinds and "shutdown-finished" in kinds, kinds[-20:]
    assert "shutdown-killing" not in kinds, "the stop timeout expired: SIGKILL was needed"

    def last(unit: str, event: str) -> int | None:
        seqs = [r["seq"] for r in records if r.get("unit") == unit and r["event"] == event]
        return int(seqs[-1]) if seqs else None

    # Every edge of the boot, reversed (systemd's own units and targets too): a unit ordered
    # after another is stopped before that one begins to stop. The edges are the `after` of
    # the loaded events (cinit's own reading of the files: Before= turned round, aliases
    # resolved) and each socket before its service.
    edges = {
        (first, r["unit"])
        for r in records
        if r["event"] == "loaded"
        for first in r.get("after", [])
    }
    edges |= {("syslog.socket", "rsyslog.service"), ("dbus.socket", "dbus.service")}
    known = (
        ("syslog.socket", "rsyslog.service"),
        ("rsyslog.service", "haproxy.service"),
        ("postgresql@15-main.service", "postgresql.service"),
    )
    for first, then in known:
        assert (first, then) in edges, f"the units no longer order {then} after {first}"
    checked = 0
    for first, then in sorted(edges):
        stopped, stopping = last(then, "stopped"), last(first, "stopping")
        if stopped is not None and stopping is not None:
            checked += 1
            assert stopped < stopping, f"{first} began to stop before {then} had stopped"
    assert checked >= 20, f"too few ordering edges between stopped units: {sorted(edges)}"
    # Each service that was up when SIGTERM came stopped cleanly (one that had failed before
    # fails its own test above).
    begun = next(int(r["seq"]) for r in records if r["event"] == "shutdown-started")
    for unit in SERVICES.values():
        changes = [r for r in records if r.get("unit") == unit and r.get("new")]
        before = [r["new"] for r in changes if int(r["seq"]) < begun]
        if before and before[-1] == "active":
            assert changes[-1]["new"] == "inactive", (unit, changes[-3:])
