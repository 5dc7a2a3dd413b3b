"""Native socket activation with real consumers from Debian, cinit as PID 1:
python3-systemd's `systemd.daemon.listen_fds()`, gunicorn, and the seed's dbus-system pair
(with the README's `--address=systemd:`) answering a `dbus-send ... ListNames` round-trip.

These programs come from apt (.ci/run installs python3-systemd, gunicorn, dbus-daemon,
dbus-bin) and run with /usr/bin/python3, not the test virtualenv.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import textwrap
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from e2e_support import SEED, Boot, cinit_line, wait_until
from sockets_support import fetch, fetch_unix, find_process, free_port, wait_listening

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(60)]

Booter = Callable[..., Boot]
SYSTEM_PYTHON = "/usr/bin/python3"


def system_python_has(module: str) -> bool:
    if not os.path.exists(SYSTEM_PYTHON):
        return False
    probe = subprocess.run([SYSTEM_PYTHON, "-c", f"import {module}"], capture_output=True)
    return probe.returncode == 0


def test_python3_systemd_listen_fds_takes_the_listener(boot: Booter, tmp_path: Path) -> None:
    if not system_python_has("systemd.daemon"):
        pytest.skip("python3-systemd is not installed (apt: python3-systemd)")
    port = free_port()
    server = tmp_path / "sd_server.py"
    server.write_text(
        textwrap.dedent("""\
        import os, socket
        from systemd import daemon
        fds = daemon.listen_fds()  # [] unless LISTEN_PID is this very process
        listener = socket.socket(fileno=fds[0])
        while True:
            conn, _ = listener.accept()
            conn.sendall(f"fds={fds} pid={os.getpid()}\\n".encode())
            conn.close()
        """)
    )
    run = boot(
        {
            "sd.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
            "sd.service": f"[Service]\nExecStart={SYSTEM_PYTHON} {server}\n",
        }
    )
    wait_listening(port)
    answer = fetch(port).decode()
    process = find_process(run.run.proc.pid, str(server))
    assert answer == f"fds=[3] pid={process.ns_pid}\n", run.report()
    assert fetch(port).decode() == answer  # the same process serves the next one
    assert run.terminate() == 0, run.report()


def test_gunicorn_serves_on_the_inherited_listener(boot: Booter, tmp_path: Path) -> None:
    gunicorn = shutil.which("gunicorn") or "/usr/bin/gunicorn"
    if not os.path.exists(gunicorn):
        pytest.skip("gunicorn is not installed (apt: gunicorn)")
    port = free_port()
    app = tmp_path / "app"
    app.mkdir()
    (app / "hello.py").write_text(
        textwrap.dedent("""\
        import os
        def application(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [f"gunicorn says hi, LISTEN_FDS={os.environ.get('LISTEN_FDS')}".encode()]
        """)
    )
    # No --bind: gunicorn takes the sd_listen_fds socket (and would otherwise bind 8000).
    run = boot(
        {
            "gunicorn.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
            "gunicorn.service": f"""
            [Service]
            ExecStart={gunicorn} --chdir {app} --workers 1 hello:application
            """,
        }
    )
    wait_listening(port)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=20) as reply:
        body = reply.read().decode()
    assert body.startswith("gunicorn says hi"), body
    run.wait_err(cinit_line("gunicorn.service", r"started \(pid \d+\)"))
    assert run.count_err(cinit_line("gunicorn.service", r"started \(pid \d+\)")) == 1
    assert run.terminate() == 0, run.report()


def seed_dbus_units(extra_exec: str) -> dict[str, str]:
    """The seed README's dbus-system pair, with `extra_exec` added to dbus-daemon's command."""
    base = SEED / "container-init.d"
    socket_text = (base / "dbus-system.socket").read_text()
    service_text = (base / "dbus-system.service").read_text()
    daemon = "ExecStart=/usr/bin/dbus-daemon --system"
    assert daemon in service_text
    service_text = service_text.replace(daemon, f"{daemon} {extra_exec}".rstrip())
    return {"dbus-system.socket": socket_text, "dbus-system.service": service_text}


def test_seed_dbus_system_pair_answers_list_names_over_the_activated_socket(
    boot: Booter, shared_dir: Path
) -> None:
    if not (os.path.exists("/usr/bin/dbus-daemon") and shutil.which("dbus-send")):
        pytest.skip("dbus-daemon/dbus-send are not installed (apt: dbus-daemon dbus-bin)")
    if not os.path.isdir("/run/dbus"):
        pytest.skip("no /run/dbus to bind a private directory over")
    run_dbus = shared_dir / "run-dbus"
    run_dbus.mkdir(mode=0o755)
    run = boot(
        seed_dbus_units("--address=systemd:"),
        binds=[(run_dbus, "/run/dbus")],  # the namespace's /run/dbus: never the host's
    )
    node = run_dbus / "system_bus_socket"
    wait_until(node.exists, 10, "the system bus socket" + run.report())
    assert run.count_err(cinit_line("dbus-system.service", r"started \(pid \d+\)")) == 0
    reply = subprocess.run(
        [
            "dbus-send",
            f"--bus=unix:path={node}",
            "--print-reply",
            "--reply-timeout=15000",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.ListNames",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert reply.returncode == 0, f"{reply.stderr}{run.report()}"
    assert 'string "org.freedesktop.DBus"' in reply.stdout, reply.stdout
    daemon = find_process(run.run.proc.pid, "/usr/bin/dbus-daemon")
    assert daemon.environ()["LISTEN_PID"] == str(daemon.ns_pid)
    assert 3 in daemon.fds()
    assert os.readlink(f"/proc/{daemon.host_pid}/fd/3").startswith("socket:")
    # dbus-daemon kept cinit's node (with --address=systemd: it does not bind its own).
    assert node.exists()
    assert run.terminate() == 0, run.report()


def unix_table_paths() -> list[str]:
    """The bound paths /proc/net/unix lists (its last column, when there is one)."""
    lines = Path("/proc/net/unix").read_text().splitlines()[1:]
    return [words[7] for words in (line.split() for line in lines) if len(words) > 7]


def test_unix_listener_is_bound_at_its_declared_path_for_sd_is_socket_unix(
    boot: Booter, tmp_path: Path
) -> None:
    if not system_python_has("systemd.daemon"):
        pytest.skip("python3-systemd is not installed (apt: python3-systemd)")
    node = tmp_path / "sock" / "app.sock"
    server = tmp_path / "sd_unix_server.py"
    server.write_text(
        textwrap.dedent(f"""\
        import json, socket
        from systemd import daemon
        fds = daemon.listen_fds()
        listener = socket.socket(fileno=fds[0])
        facts = {{
            "fds": fds,
            "is_socket_unix": daemon.is_socket_unix(
                fds[0], socket.SOCK_STREAM, 1, path={str(node)!r}
            ),
            "getsockname": listener.getsockname(),
        }}
        while True:
            conn, _ = listener.accept()
            conn.sendall(json.dumps(facts).encode())
            conn.close()
        """)
    )
    run = boot(
        {
            "app.socket": f"[Socket]\nListenStream={node}\nSocketMode=0600\n",
            "app.service": f"[Service]\nExecStart={SYSTEM_PYTHON} {server}\n",
        }
    )
    wait_until(node.exists, 10, "the unix listener" + run.report())
    facts = json.loads(fetch_unix(str(node)))
    assert facts == {"fds": [3], "is_socket_unix": True, "getsockname": str(node)}, run.report()
    assert stat.S_IMODE(os.lstat(node).st_mode) == 0o600
    assert os.listdir(node.parent) == ["app.sock"]
    listed = [path for path in unix_table_paths() if path.startswith(str(node.parent))]
    assert listed and set(listed) == {str(node)}, listed  # no temporary name
    assert run.terminate() == 0, run.report()
