"""A real Debian image without Python, booted by the standalone cinit as PID 1 (`make e2e`).

The image (rootfs_image.py: debootstrap minbase bookworm + nginx-light, dbus, passwd; cached
under ~/.cache/cinit-e2e/) gets the standalone `bin/cinit` (or `$CINIT_E2E_BIN`) at
/usr/local/bin/cinit, core units in /etc/container-init/units/ (tests/rootfs/units) and a
derived image's drop-ins in /etc/container-init.d/ (tests/rootfs/drop-in: an override of
app.service and the README's dbus system-bus pair). It boots with
`unshare --pid --mount --fork --mount-proc` running a small wrapper as the namespace's PID 1
that mounts /proc, /dev (bind), /sys/fs/cgroup (recursive bind) and a tmpfs /run into the tree, then
execs `chroot TREE /usr/local/bin/cinit` with CONTAINER_INIT_TRACE=1. Services are checked
through their sockets: HTTP through the proxy socket on 127.0.0.1:18080 (the host shares the
network namespace), `dbus-send --system` inside the namespace and chroot (nsenter), the app's
account from /proc. Then SIGTERM: exit 0 within the stop timeout, in dependency order,
nothing left. Opt-in (`CINIT_E2E_ROOTFS=1`, which `make e2e` sets): the first run downloads
Debian (about 1 min in all here); a cached run takes 6-10 s.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rootfs_image import image_tarball, unpack
from rootfs_support import (
    CINIT_BIN,
    OPT_IN,
    Image,
    boot,
    install_cinit,
    namespace_pids,
    port_free,
    processes_named,
    rooted_in,
    wait_until,
)

HERE = Path(__file__).resolve().parent
HTTP_PORT = 18080  # nginx.socket's ListenStream= (nginx itself: 18081)
STOP_TIMEOUT = 8.0  # cinit's default --stop-timeout
TRACE = "tmp/container-init-trace.jsonl"  # CONTAINER_INIT_TRACE_FILE's default, in the tree
UNITS = ("app.service", "create-user.service", "dbus-system.service", "dbus-system.socket",
         "nginx.service", "nginx.socket")  # fmt: skip

pytestmark = [
    pytest.mark.pid1,
    pytest.mark.timeout(900),  # the first run downloads Debian
    pytest.mark.skipif(
        not OPT_IN, reason="opt-in: `make e2e` (as root; downloads Debian once, ~1 min; then ~10 s)"
    ),
]


def _install(tree: Path) -> None:
    """The standalone cinit, the units, the drop-ins and the image's files."""
    install_cinit(tree)
    for source, dest in ((HERE / "units", "etc/container-init/units"),
                         (HERE / "drop-in", "etc/container-init.d")):  # fmt: skip
        shutil.copytree(source, tree / dest)
    shutil.copytree(HERE / "files", tree, dirs_exist_ok=True)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Image]:
    if os.geteuid() != 0:
        pytest.fail("the rootfs e2e test needs root (debootstrap, chroot, unshare)")
    if not CINIT_BIN.is_file():
        pytest.fail(f"no standalone cinit at {CINIT_BIN}: run `make build` (or set CINIT_E2E_BIN)")
    for port in (HTTP_PORT, HTTP_PORT + 1):
        if not port_free(port):
            pytest.fail(f"127.0.0.1:{port} is in use: the image's units listen there")
    tree = tmp_path_factory.mktemp("rootfs") / "tree"
    unpack(image_tarball(), tree)
    _install(tree)
    booted = boot(tree)
    try:
        yield booted
    finally:
        booted.run.kill()
        shutil.rmtree(tree, ignore_errors=True)


@dataclass
class Shutdown:
    status: int
    seconds: float
    namespace_pids: list[int]  # host pids of every process of the namespace before SIGTERM


@pytest.fixture(scope="module")
def shutdown(image: Image) -> Shutdown:
    """SIGTERM to cinit once every service has come up; how the container ended."""
    _wait_for_services(image)
    pids = namespace_pids(image.pid)
    start = time.monotonic()
    image.run.send(signal.SIGTERM)
    status = image.run.wait(STOP_TIMEOUT + 10)
    seconds = time.monotonic() - start
    image.run.out.closed.wait(5)
    image.run.err.closed.wait(5)
    return Shutdown(status, seconds, pids)


def _wait_for_services(image: Image) -> None:
    """The app reported, and nginx and dbus-daemon run (started by the checks' connections)."""
    report = image.tree / "tmp/app-report"
    wait_until(report.exists, 30, "the app's report" + image.report())
    _http_get(f"http://127.0.0.1:{HTTP_PORT}/")  # activates nginx if no test has yet


def _http_get(url: str) -> tuple[int, dict[str, str], str]:
    with urllib.request.urlopen(url, timeout=20) as reply:
        return reply.status, dict(reply.headers), reply.read().decode(errors="replace")


def _trace(image: Image) -> list[dict[str, Any]]:
    path = image.tree / TRACE
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_image_has_no_python(image: Image) -> None:
    found = sorted(str(p) for p in (image.tree / "usr/bin").glob("python*"))
    found += sorted(str(p) for p in (image.tree / "usr/lib").glob("python3*"))
    assert found == [], f"the image must have no Python: {found}"
    # Installed from the release tarball: /usr/local/bin/cinit -> /opt/cinit/cinit (absolute,
    # resolved inside the tree), the bundle in /opt/cinit.
    command = image.tree / "usr/local/bin/cinit"
    if command.is_symlink() and os.readlink(command).startswith("/"):
        command = image.tree / os.readlink(command).lstrip("/")
    assert command.exists(), command


def test_the_drop_in_replaces_the_core_app_unit(image: Image) -> None:
    line = (
        "cinit: drop-in override: app.service replaces /etc/container-init/units/app.service "
        "with /etc/container-init.d/app.service"
    )
    wait_until(lambda: line in image.run.err.data.decode(errors="replace"), 30,
               "the drop-in override line" + image.report())  # fmt: skip


def test_http_through_the_proxy_socket_returns_nginx_s_page(image: Image) -> None:
    wait_until(lambda: not port_free(HTTP_PORT), 30, "nginx.socket bound" + image.report())
    status, headers, body = _http_get(f"http://127.0.0.1:{HTTP_PORT}/")
    assert status == 200, image.report()
    assert "<title>Welcome to nginx!</title>" in body, body
    assert headers.get("Server", "").startswith("nginx"), headers
    # Served by the image's nginx (a process in the namespace, its root the tree).
    nginx = processes_named(image, "nginx")
    assert nginx, "no nginx process in the image's namespace" + image.report()
    assert all(os.readlink(f"/proc/{p}/root") == str(image.tree) for p in nginx)


def test_dbus_list_names_inside_the_image_through_cinit_s_socket(image: Image) -> None:
    node = image.inside() / "run/dbus/system_bus_socket"
    wait_until(node.exists, 30, "the system bus socket" + image.report())
    reply = image.exec_inside(
        "dbus-send", "--system", "--print-reply", "--reply-timeout=15000",
        "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.ListNames",
    )  # fmt: skip
    assert reply.returncode == 0, reply.stderr + image.report()
    assert 'string "org.freedesktop.DBus"' in reply.stdout, reply.stdout
    # The daemon got cinit's listener (it was started by a connection, not at boot).
    daemon = processes_named(image, "dbus-daemon")
    assert len(daemon) == 1, image.report()
    environ = Path(f"/proc/{daemon[0]}/environ").read_bytes().split(b"\0")
    assert b"LISTEN_FDS=1" in environ
    assert os.readlink(f"/proc/{daemon[0]}/fd/3").startswith("socket:")


def _account(tree: Path, name: str) -> tuple[int, int]:
    for line in (tree / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return int(fields[2]), int(fields[3])
    raise AssertionError(f"no {name} in the image's /etc/passwd (create-user.service did not run)")


def test_the_app_runs_as_the_user_the_oneshot_created(image: Image) -> None:
    report = image.tree / "tmp/app-report"
    wait_until(report.exists, 30, "the app's report" + image.report())
    wait_until(lambda: "bus=" in report.read_text(), 30, "the app's bus call")
    uid, gid = _account(image.tree, "appuser")
    assert uid != 0
    text = report.read_text()
    assert f"flavor=drop-in user=appuser uid={uid} gid={gid}" in text, text
    assert "bus=ok" in text, text + (image.tree / "tmp/app-bus").read_text()
    apps = []
    for pid in namespace_pids(image.pid):
        with contextlib.suppress(OSError):
            if b"/usr/local/bin/app" in Path(f"/proc/{pid}/cmdline").read_bytes():
                apps.append(pid)
    assert apps, "the app is not running" + image.report()
    for pid in apps:
        status = Path(f"/proc/{pid}/status").read_text()
        real_uid = re.search(r"^Uid:\s+(\d+)", status, re.MULTILINE)
        assert real_uid is not None and int(real_uid.group(1)) == uid, status


def test_cinit_status_inside_the_image(image: Image) -> None:
    _wait_for_services(image)
    table = image.exec_inside("cinit", "status")
    assert table.returncode == 0, table.stdout + table.stderr + image.report()
    for unit in UNITS:
        assert re.search(rf"^{re.escape(unit)}\s", table.stdout, re.MULTILINE), table.stdout
    assert "6 units, ready" in table.stdout, table.stdout
    as_json = image.exec_inside("cinit", "status", "--json")
    assert as_json.returncode == 0, as_json.stderr
    units = json.loads(as_json.stdout)["units"]
    for unit in ("app.service", "dbus-system.service", "nginx.service"):
        assert units[unit]["state"] == "active", units[unit]
        assert units[unit]["main_pid"], units[unit]
    assert units["create-user.service"]["state"] in ("active", "exited"), units
    block = image.exec_inside("cinit", "status", "app.service")
    assert block.returncode == 0, block.stdout + block.stderr
    assert "app: running as appuser" in block.stdout, block.stdout


def test_sigterm_stops_everything_in_order_and_exits_0(image: Image, shutdown: Shutdown) -> None:
    assert shutdown.status == 0, image.report()
    assert shutdown.seconds < STOP_TIMEOUT, f"{shutdown.seconds:.2f} s" + image.report()
    alive = [pid for pid in shutdown.namespace_pids if Path(f"/proc/{pid}").exists()]
    assert alive == [], f"processes outlived the container: {alive}"
    # Nothing anywhere still has the tree as its root, and /run (a tmpfs inside) is gone.
    assert rooted_in(image.tree) == []
    assert sorted(os.listdir(image.tree / "run")) == image.run_dir_before
    assert "stopping=" in (image.tree / "tmp/app-report").read_text()  # it saw its SIGTERM
    records = _trace(image)
    kinds = [r["event"] for r in records]
    assert "shutdown-started" in kinds and "shutdown-finished" in kinds, kinds
    assert "shutdown-killing" not in kinds, "the stop timeout expired: SIGKILL was needed"

    def seq(unit: str, event: str) -> int:
        """seq of the unit's one `event` (`stopping`: its stop began; `stopped`: it ended)."""
        found = [r["seq"] for r in records if r.get("unit") == unit and r["event"] == event]
        assert len(found) == 1, f"{unit}: expected one {event!r} event, got {found}"
        return int(found[0])

    for unit in UNITS:  # every unit was stopped cleanly (nothing failed or was killed)
        last = [r for r in records if r.get("unit") == unit and r.get("new")][-1]
        assert (last["event"], last["new"], last["result"]) == ("stopped", "inactive", "success")
    # Reverse dependency order: app.service is After= both, so it is down before they stop.
    assert seq("app.service", "stopped") < seq("create-user.service", "stopping")
    assert seq("app.service", "stopped") < seq("dbus-system.socket", "stopping")
    # A socket closes only once its service is down.
    assert seq("nginx.service", "stopped") < seq("nginx.socket", "stopping")
    assert seq("dbus-system.service", "stopped") < seq("dbus-system.socket", "stopping")


def test_the_trace_has_the_override_and_every_unit_s_events(
    image: Image, shutdown: Shutdown
) -> None:
    records = _trace(image)
    overridden = [r for r in records if r["phase"] == "unit_overridden"]
    assert len(overridden) == 1 and overridden[0]["unit"] == "app.service", overridden
    assert all({"t_start_ms", "dt_ms", "phase", "seq"} <= r.keys() for r in records)
    for unit in UNITS:
        states = {r.get("new") for r in records if r.get("unit") == unit}
        assert states, f"no events of {unit} in the trace"
    up = {r["unit"] for r in records if r.get("new") == "active"}
    assert {"app.service", "nginx.service", "dbus-system.service"} <= up, up
    bound = {r["unit"] for r in records if r["event"] == "socket-bound"}
    assert bound == {"nginx.socket", "dbus-system.socket"}, bound
    # The activated services started on a connection, never at boot before it.
    for service, sock in (("nginx.service", "nginx.socket"),
                          ("dbus-system.service", "dbus-system.socket")):  # fmt: skip
        triggered = [r["seq"] for r in records
                     if r["event"] == "socket-triggered" and r["unit"] == sock]  # fmt: skip
        requested = [r["seq"] for r in records if r.get("unit") == service and r.get("new")]
        assert triggered and requested and triggered[0] < requested[0], (sock, records)
    # The oneshot was done before the app (After=/Requires= on it) began to start.
    created = [r["seq"] for r in records
               if r.get("unit") == "create-user.service" and r.get("new") == "active"]  # fmt: skip
    app_start = [r["seq"] for r in records
                 if r.get("unit") == "app.service" and r.get("new") == "starting"]  # fmt: skip
    assert created and app_start and created[0] < app_start[0]
