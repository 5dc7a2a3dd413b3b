"""Issue 13 item 2: no socket in a runtime directory another user could change.

cinit as a real PID 1 is given a runtime dir that `nobody` owns (0777), or a symlink to
one: it binds neither `control` nor `events` there, says so in one line, and boots and
stops as usual. The clients (`cinit is-ready`, `stop`, `watch`) refuse such a directory
even when a listener waits in it: the "attacker" here is a ROUTER bound by the test in a
directory of nobody's, answering every request "ready", as the issue's `nobody` did.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from e2e_support import Boot, cinit_line

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(90)]

Booter = Callable[..., Boot]
NOBODY = 65534
UNITS = {
    "web.service": """
        [Service]
        ExecStart=/bin/sleep 120
        """,
}
REFUSAL = r"^cinit: not binding the control and event sockets in {dir}: .*{why}.*$"


def nobodys_dir(path: Path, mode: int = 0o777) -> Path:
    path.mkdir()
    path.chmod(mode)
    os.chown(path, NOBODY, NOBODY)
    return path


def cli(
    cinit_cmd: list[str], runtime: Path, *args: str, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINIT_")}
    return subprocess.run(
        [*cinit_cmd, *args, "--runtime-dir", str(runtime)],
        capture_output=True, text=True, timeout=timeout, env=env,
    )


@pytest.fixture
def as_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give a directory to nobody")


def boot_and_check_no_sockets(boot: Booter, runtime: Path, socket_dir: Path, why: str) -> None:
    run = boot(UNITS, options=["--runtime-dir", str(runtime)], env={"CINIT_VERBOSE": "1"})
    run.wait_err(cinit_line("web.service", "ready"), timeout=20)
    # Either line says the pump is past binding: the fixed one, or the old "bound anyway".
    pattern = REFUSAL.format(dir=runtime, why=why)
    run.wait_err(rf"{pattern}|^cinit: event stream on ", timeout=20)
    assert run.count_err(pattern) == 1, run.report()
    assert sorted(os.listdir(socket_dir)) == [], "a socket was bound there"
    assert run.alive()
    assert run.terminate() == 0, run.report()


def test_a_0777_runtime_dir_of_nobody_gets_no_sockets_and_the_boot_goes_on(
    boot: Booter, shared_dir: Path, as_root: None
) -> None:
    runtime = nobodys_dir(shared_dir / "run")
    boot_and_check_no_sockets(boot, runtime, runtime, "belongs to uid 65534")
    assert runtime.stat().st_mode & 0o777 == 0o777, "cinit changed a directory not its own"


def test_a_symlinked_runtime_dir_gets_no_sockets_and_the_boot_goes_on(
    boot: Booter, shared_dir: Path, as_root: None
) -> None:
    theirs = nobodys_dir(shared_dir / "theirs", 0o700)
    runtime = shared_dir / "run"
    runtime.symlink_to(theirs)
    boot_and_check_no_sockets(boot, runtime, theirs, "is a symlink")


class Impostor:
    """A control ROUTER bound where it should not be trusted; answers everything "ready"."""

    def __init__(self, directory: Path) -> None:
        self.context: zmq.Context[Any] = zmq.Context()
        self.router = self.context.socket(zmq.ROUTER)
        self.router.bind(f"ipc://{directory / 'control'}")
        self.requests: list[bytes] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._answer, daemon=True)
        self.thread.start()

    def _answer(self) -> None:
        while not self.done.is_set():
            if not self.router.poll(50):
                continue
            *route, body = self.router.recv_multipart()
            self.requests.append(body)
            reply = {"ok": True, "ready": True, "seq": 1, "unit": "web.service", "units": {}}
            self.router.send_multipart([*route, json.dumps(reply).encode()])

    def close(self) -> None:
        self.done.set()
        self.thread.join(5)
        self.router.close(linger=0)
        self.context.term()


@pytest.fixture
def impostor_dirs(shared_dir: Path, as_root: None) -> Iterator[list[tuple[Path, Impostor]]]:
    """A control listener in a directory of nobody's, and one behind a symlink to it."""
    theirs = nobodys_dir(shared_dir / "theirs")
    impostor = Impostor(theirs)
    link = shared_dir / "link"
    link.symlink_to(theirs)
    try:
        yield [(theirs, impostor), (link, impostor)]
    finally:
        impostor.close()


def test_the_clients_refuse_a_control_socket_in_a_directory_of_nobody(
    cinit_cmd: list[str], impostor_dirs: list[tuple[Path, Impostor]]
) -> None:
    for runtime, impostor in impostor_dirs:
        ready = cli(cinit_cmd, runtime, "is-ready")
        # As when cinit is not running: 3 (not ready), never 0 from the impostor's "ready".
        assert ready.returncode == 3, (runtime, ready.stderr)
        assert "refusing the control socket" in ready.stderr, ready.stderr
        assert str(runtime) in ready.stderr
        stop = cli(cinit_cmd, runtime, "stop", "web")
        assert stop.returncode != 0 and "refusing the control socket" in stop.stderr, stop
        status = cli(cinit_cmd, runtime, "status")
        assert status.returncode == 3 and "refusing" in status.stderr, status
        assert impostor.requests == [], "a client talked to the impostor"


def test_watch_refuses_a_directory_of_nobody(
    cinit_cmd: list[str], impostor_dirs: list[tuple[Path, Impostor]]
) -> None:
    for runtime, _ in impostor_dirs:
        try:
            watch = cli(cinit_cmd, runtime, "watch", "--json", timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"cinit watch waited on the impostor's directory {runtime}")
        assert watch.returncode == 3, watch
        assert "refusing ipc://" in watch.stderr and "cinit never listens there" in watch.stderr
