"""Issue 15's proof: eleven Debian services booted from their package units, unchanged.

Shared by tests/e2e/test_debian_services.py and bench/boot.py's "packaged" case; stdlib
only, so that it also runs inside the namespace as `python -I -S debian_services.py probe`.

The setup (`namespace_script`) runs as the first PID 1 of
`unshare --pid --fork --mount-proc --net --propagation private` and then execs the init
under test. It never changes the host: /etc, /var, /root, /home and /srv become overlays
whose upper layers live in a scratch directory (whatever a daemon or tmpfiles.d writes lands
there; the host's files are the read-only lower layers), /run, /tmp and /dev are private
tmpfs, the rest of /, /sys and /proc/sys are read-only in the namespace (as a container
runtime mounts them), and the network is a namespace of its own with only `lo` up. The
overlays do what bind-mounting copies of the daemons' state over the originals would, for
every tree a daemon or tmpfiles.d (`D /tmp`, `q /var`, `d- /root`, `L+ /etc/mtab`, ...) may
write, without copying anything.

Inside that namespace, configuration that is not a unit file may be edited (as an image
would): apache moves to port 8080 where nginx holds 80, and rsyslog does not load imklog (a
container has no kernel log of its own; reading /proc/kmsg would take the host's kernel
messages away from the host). The unit files themselves are copied byte for byte.

`probe` checks every service with its own client, each in a bounded retry loop on a thread
of its own, and prints one JSON line per service when it first answers (or gives up):
`{"service": ..., "ok": ..., "t_ns": CLOCK_REALTIME, "detail": ...}`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

SYSTEM_UNITS = Path("/lib/systemd/system")
HERE = Path(__file__).resolve()
UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc", "--net", "--propagation", "private"]
# Where the scratch directory appears inside the namespace: outside /tmp and /run, which
# tmpfiles.d may empty (`D /tmp`), and outside the overlaid trees.
INSIDE = "/mnt"
APACHE_PORT = 8080
# Overlaid inside the namespace: every tree besides /run and /tmp that a daemon or tmpfiles.d
# writes to.
PRIVATE_TREES = ("etc", "var", "root", "home", "srv")

# ssh.socket is left out on purpose. Debian 12's is `ListenStream=22` with `Accept=no`, and
# its sshd (9.2p1) never reads LISTEN_FDS: with both units, whoever binds port 22 first (the
# socket, always, under systemd too) makes `sshd -D` fail with "Address already in use".
# Debian enables one or the other, never both; ssh.service is the enabled one.
UNITS = (
    "nginx.service",
    "apache2.service",
    "redis-server.service",
    "ssh.service",
    "cron.service",
    "rsyslog.service",
    "syslog.socket",
    "memcached.service",
    "haproxy.service",
    "php8.2-fpm.service",
    "postgresql.service",
    "postgresql@.service",
    "dbus.service",
    "dbus.socket",
)
# How `systemctl enable postgresql@15-main` enables the cluster: a link to the template.
INSTANCE_LINK = ("postgresql@15-main.service", "postgresql@.service")

# The services the issue names, each with the unit that runs it.
SERVICES = {
    "nginx": "nginx.service",
    "apache2": "apache2.service",
    "redis": "redis-server.service",
    "ssh": "ssh.service",
    "cron": "cron.service",
    "rsyslog": "rsyslog.service",
    "memcached": "memcached.service",
    "haproxy": "haproxy.service",
    "php-fpm": "php8.2-fpm.service",
    "postgresql": "postgresql@15-main.service",
    "dbus": "dbus.service",
}

# Programs the setup and the clients run (inside the namespace).
TOOLS = (
    "unshare",
    "nsenter",
    "mount",
    "ip",
    "sed",
    "curl",
    "redis-cli",
    "ssh-keyscan",
    "psql",
    "runuser",
    "dbus-send",
    "logger",
)


def missing() -> str | None:
    """Why the proof cannot run on this machine (not root, a package or tool missing), or None."""
    if os.geteuid() != 0:
        return "needs root: PID, mount and network namespaces"
    absent = [unit for unit in UNITS if not (SYSTEM_UNITS / unit).is_file()]
    if absent:
        return f"package units not installed: {', '.join(absent)} (see .ci/run)"
    tools = [tool for tool in TOOLS if shutil.which(tool) is None]
    if tools:
        return f"tools not installed: {', '.join(tools)} (see .ci/run)"
    if not Path("/etc/postgresql/15/main/postgresql.conf").is_file():
        return "no PostgreSQL 15 cluster 'main' (/etc/postgresql/15/main)"
    return None


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_units(directory: Path) -> dict[str, tuple[str, str]]:
    """Copy the package units, byte for byte, into `directory`, plus the instance link.

    Returns {unit: (sha256 of the package's file, sha256 of the copy)}.
    """
    directory.mkdir(parents=True, exist_ok=True)
    sums = {}
    for unit in UNITS:
        shutil.copyfile(SYSTEM_UNITS / unit, directory / unit)
        sums[unit] = (sha256(SYSTEM_UNITS / unit), sha256(directory / unit))
    link, target = INSTANCE_LINK
    (directory / link).symlink_to(target)
    return sums


def namespace_script(
    scratch: Path, *, stage_units_for_dsr: bool = False, tmpfiles: bool = False
) -> list[str]:
    """argv prefix (`/bin/sh -c SCRIPT name`) that sets the namespace up, stamps the time
    into <scratch>/exec-stamp and execs "$@" (the init under test; it sees <scratch> as
    /mnt: `inside(...)`).

    With `stage_units_for_dsr`, the units of <scratch>/units are also copied into the
    overlaid /etc/systemd/system, where docker-systemctl-replacement looks for them. With
    `tmpfiles`, systemd's own `systemd-tmpfiles --create --remove --boot` runs first (what
    systemd does before any service; the fix a docker-systemctl-replacement image needs).
    """
    q = shlex.quote
    overlays = []
    for tree in PRIVATE_TREES:
        upper, work = f"{INSIDE}/overlay/{tree}/upper", f"{INSIDE}/overlay/{tree}/work"
        overlays += [
            f"mkdir -p {upper} {work}",
            f"mount -t overlay overlay -o lowerdir=/{tree},upperdir={upper},workdir={work} /{tree}",
        ]
    dev = f"{INSIDE}/dev"
    steps = [
        "set -eu",
        # No notes in /run/mount (-n): the host's /run is read-only here, and the namespace's
        # own /run must be as empty as a container runtime gives it.
        'mount() { command mount -n "$@"; }',
        # Nothing mounted here may propagate back to the host.
        "mount --make-rprivate /",
        f"mount --bind {q(str(scratch))} {INSIDE}",
        # A safety net, as a container runtime gives it: the rest of / is read-only here,
        # and so are /sys (its cgroup mounts stay writable) and /proc/sys.
        "mount -o remount,bind,ro /",
        "mount -o remount,bind,ro /sys",
        "mount --bind /proc/sys /proc/sys",
        "mount -o remount,bind,ro /proc/sys",
        *overlays,
        "mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp",
        # A /dev of our own: rsyslog (imuxsock) unlinks and binds /dev/log, where `logger`
        # and syslog(3) write. No journald here, so nothing else serves /dev/log: `logger`
        # reaches /var/log/syslog only if rsyslog started (at boot: its socket,
        # /run/systemd/journal/syslog, is not where they write).
        f"mkdir -p {dev}",
        f"mount -t tmpfs -o mode=0755,nosuid tmpfs {dev}",
        *(
            f"touch {dev}/{n} && mount --bind /dev/{n} {dev}/{n}"
            for n in ("null", "zero", "full", "random", "urandom", "tty")
        ),
        f"mkdir -p {dev}/shm {dev}/pts",
        f"mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs {dev}/shm",
        f"ln -s /proc/self/fd {dev}/fd",
        f"mount --move {dev} /dev",
        "mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run",
        "ip link set lo up",
        # Configuration (not units) as an image would set it: apache beside nginx, on 8080.
        f"sed -i 's/^Listen 80$/Listen {APACHE_PORT}/' /etc/apache2/ports.conf",
        f"sed -i 's/<VirtualHost \\*:80>/<VirtualHost *:{APACHE_PORT}>/' "
        "/etc/apache2/sites-available/000-default.conf",
        # No kernel log in a container: imklog would read the host's /proc/kmsg.
        "sed -i 's/^module(load=\"imklog\")/#&/' /etc/rsyslog.conf",
    ]
    if stage_units_for_dsr:
        steps.append(f"cp -a {INSIDE}/units/. /etc/systemd/system/")
    if tmpfiles:  # only the private trees (not `r! /forcefsck`); 65: some lines had errors
        prefixes = " ".join(f"--prefix=/{tree}" for tree in (*PRIVATE_TREES, "run", "tmp"))
        steps.append(
            f"systemd-tmpfiles --create --remove --boot {prefixes} >/dev/null 2>&1 || [ $? = 65 ]"
        )
    steps += [f"date +%s%N > {INSIDE}/exec-stamp", 'exec "$@"']
    return ["/bin/sh", "-c", "\n".join(steps), "debian-services-setup"]


def inside(*parts: str) -> str:
    """A path under the scratch directory as the namespace sees it."""
    return "/".join([INSIDE, *parts])


def cinit_argv(cinit: Sequence[str]) -> list[str]:
    """cinit booting the copied units (runtime directory: the namespace's /run/cinit)."""
    return [*cinit, "--units", inside("units"), "--drop-in", inside("no-drop-in")]


def dsr_argv(systemctl3: str, scratch: Path) -> list[str]:
    """docker-systemctl-replacement as PID 1 booting the same units (staged into the
    overlaid /etc/systemd/system: its `--root` would also prefix PIDFile= paths).

    Its script is copied into `scratch`: the namespace's /tmp is a fresh tmpfs.
    """
    (scratch / "dsr").mkdir(exist_ok=True)
    shutil.copyfile(systemctl3, scratch / "dsr" / "systemctl3.py")
    units = list(SERVICES.values())
    units.insert(units.index("postgresql@15-main.service") + 1, "postgresql.service")
    return [sys.executable, inside("dsr", "systemctl3.py"), "init", *units]


def nsenter(pid: int) -> list[str]:
    """argv prefix that runs a command in the namespaces of host pid `pid`."""
    return ["nsenter", "-t", str(pid), "-m", "-n", "-p", "--"]


def probe_argv(pid: int, timeout: float, only: Iterable[str] = ()) -> list[str]:
    """argv (run on the host) of the prober inside the namespace of `pid` (every service,
    or the `only` ones)."""
    selection = [f"--only={service}" for service in only]
    argv = [sys.executable, "-I", "-S", str(HERE), "probe", "--timeout", str(timeout)]
    return [*nsenter(pid), *argv, *selection]


def read_exec_stamp(scratch: Path) -> int | None:
    try:
        text = (scratch / "exec-stamp").read_text()
    except OSError:
        return None
    return int(text) if text.endswith("\n") else None


@dataclass(frozen=True)
class Answer:
    """One service's probe: answered or not, when (CLOCK_REALTIME ns), and what it said."""

    service: str
    ok: bool
    t_ns: int
    detail: str


def parse_answers(lines: Iterable[str]) -> dict[str, Answer]:
    found = {}
    for line in lines:
        if line.startswith("{"):
            data = json.loads(line)
            found[data["service"]] = Answer(
                data["service"], data["ok"], data["t_ns"], data["detail"]
            )
    return found


# --- the clients (run inside the namespace) ---------------------------------------------------


def _run(argv: list[str], timeout: float = 3.0) -> tuple[int, str]:
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd="/",
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return -1, repr(error)
    return done.returncode, (done.stdout + done.stderr).strip()


def _http_server(port: int) -> str | None:
    code, out = _run(
        ["curl", "-sS", "-m", "2", "-o", "/dev/null", "-D", "-", f"http://127.0.0.1:{port}/"]
    )
    status = out.splitlines()[0] if out else ""
    server = next((line for line in out.splitlines() if line.lower().startswith("server:")), "")
    if code == 0 and " 200" in status:
        return f"{status.strip()}; {server.strip()}"
    return None


def check_nginx() -> str | None:
    found = _http_server(80)
    return found if found and "nginx" in found else None


def check_apache2() -> str | None:
    found = _http_server(APACHE_PORT)
    return found if found and "Apache" in found else None


def check_redis() -> str | None:
    code, out = _run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "ping"])
    return out if code == 0 and out == "PONG" else None


def check_ssh() -> str | None:
    code, out = _run(["ssh-keyscan", "-T", "2", "127.0.0.1"])
    keys = [line for line in out.splitlines() if line.startswith("127.0.0.1 ssh-")]
    return keys[0][:60] if code == 0 and keys else None


def check_cron() -> str | None:
    """cron has no client: its pid file names a live `cron` (it then runs /etc/cron.d jobs)."""
    try:
        pid = int(Path("/run/crond.pid").read_text().split()[0])
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError, IndexError):
        return None
    return f"/run/crond.pid: {pid} ({comm})" if comm == "cron" else None


def check_rsyslog() -> str | None:
    token = f"cinit-proof-{os.getpid()}-{time.monotonic_ns()}"
    code, _ = _run(["logger", "-t", "cinit-proof", token])
    if code != 0:
        return None
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            if token in Path("/var/log/syslog").read_text(errors="replace"):
                return f"logger {token} reached /var/log/syslog"
        except OSError:
            pass
        time.sleep(0.05)
    return None


def _exchange(family: int, address: object, request: bytes, until: bytes) -> bytes:
    with socket.socket(family, socket.SOCK_STREAM) as conn:
        conn.settimeout(2)
        conn.connect(address)  # type: ignore[arg-type]
        conn.sendall(request)
        reply = b""
        while until not in reply:
            chunk = conn.recv(65536)
            if not chunk:
                break
            reply += chunk
        return reply


def check_memcached() -> str | None:
    try:
        reply = _exchange(socket.AF_INET, ("127.0.0.1", 11211), b"stats\r\n", b"END\r\n")
    except OSError:
        return None
    pid = re.search(rb"STAT pid (\d+)", reply)
    return f"stats: STAT pid {pid.group(1).decode()}" if pid else None


def check_haproxy() -> str | None:
    try:
        reply = _exchange(socket.AF_UNIX, "/run/haproxy/admin.sock", b"show info\n", b"\n\n")
    except OSError:
        return None
    name = re.search(rb"^Name: (.*)$", reply, re.MULTILINE)
    return f"admin.sock show info: {name.group(1).decode()}" if name else None


def check_php_fpm() -> str | None:
    """A FastCGI FCGI_GET_VALUES management record; php-fpm answers FCGI_GET_VALUES_RESULT."""
    name = b"FCGI_MPXS_CONNS"
    body = bytes([len(name), 0]) + name
    padding = (-len(body)) % 8
    record = struct.pack(">BBHHBB", 1, 9, 0, len(body), padding, 0) + body + bytes(padding)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(2)
            conn.connect("/run/php/php8.2-fpm.sock")
            conn.sendall(record)
            header = conn.recv(8)
    except OSError:
        return None
    if len(header) == 8 and header[0] == 1 and header[1] == 10:
        return "php8.2-fpm.sock: FCGI_GET_VALUES_RESULT"
    return None


def check_postgresql() -> str | None:
    code, out = _run(
        ["runuser", "-u", "postgres", "--", "psql", "-XAtq", "-c", "select 'answer ' || 6 * 7"]
    )
    return f"psql: {out}" if code == 0 and out == "answer 42" else None


def check_dbus() -> str | None:
    code, out = _run(
        [
            "dbus-send",
            "--system",
            "--print-reply",
            "--reply-timeout=2000",
            "--dest=org.freedesktop.DBus",
            "/",
            "org.freedesktop.DBus.ListNames",
        ]
    )
    return (
        "ListNames lists org.freedesktop.DBus"
        if code == 0 and '"org.freedesktop.DBus"' in out
        else None
    )


CHECKS: dict[str, Callable[[], str | None]] = {
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


def probe(timeout: float, only: Sequence[str] = ()) -> int:
    """Check every service until it answers or `timeout` s pass; a JSON line each."""
    deadline = time.monotonic() + timeout
    lock = threading.Lock()
    failures = 0

    def watch(service: str) -> None:
        nonlocal failures
        check = CHECKS[service]
        while True:
            found = check()
            now = time.time_ns()
            if found is not None or time.monotonic() > deadline:
                line = json.dumps(
                    {
                        "service": service,
                        "ok": found is not None,
                        "t_ns": now,
                        "detail": found or f"no answer within {timeout:g} s",
                    }
                )
                with lock:
                    failures += found is None
                    print(line, flush=True)
                return
            time.sleep(0.05)

    threads = [threading.Thread(target=watch, args=(service,)) for service in only or CHECKS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return 1 if failures else 0


# --- cinit's log ------------------------------------------------------------------------------


def unit_lines(stderr: str) -> list[tuple[str, str]]:
    """(unit, what) of cinit's `cinit: <unit>: <what>` lines, in order."""
    return [
        (m.group(1), m.group(2))
        for m in re.finditer(
            r"^cinit: ([\w@.:-]+\.(?:service|socket|target)): (.*)$", stderr, re.MULTILINE
        )
    ]


def ordering_edges(units_dir: Path) -> set[tuple[str, str]]:
    """(first, then) pairs among the copied units from After=/Before= (instance names for
    the template's lines: the only instance is 15-main), and socket -> its service."""
    names = {p.name for p in units_dir.iterdir()}
    edges = set()
    for path in units_dir.iterdir():
        unit = path.name
        if unit.endswith("@.service"):
            continue
        text = path.read_text()
        section = ""
        for raw in text.splitlines():
            line = raw.strip()
            if line.startswith("["):
                section = line
            elif section == "[Unit]" and "=" in line and not line.startswith(("#", ";")):
                key, value = (part.strip() for part in line.split("=", 1))
                for other in value.split():
                    if other in names and other != unit:
                        if key == "After":
                            edges.add((other, unit))
                        elif key == "Before":
                            edges.add((unit, other))
        if unit.endswith(".socket"):
            service = unit.removesuffix(".socket") + ".service"
            if service in names:
                edges.add((unit, service))
    # syslog.socket activates syslog.service: rsyslog.service's Alias=.
    if "syslog.socket" in names:
        edges.add(("syslog.socket", "rsyslog.service"))
    return edges


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    probing = sub.add_parser("probe", help="inside the namespace: check every service")
    probing.add_argument("--timeout", type=float, default=60.0)
    probing.add_argument("--only", action="append", default=[], choices=sorted(CHECKS))
    args = parser.parse_args(argv)
    return probe(args.timeout, args.only)


if __name__ == "__main__":
    sys.exit(main())
