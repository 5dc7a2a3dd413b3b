"""A socket that cinit may not bind (EACCES) fails alone, with errno in the message.

cinit runs as root here, which may bind anything; so this module runs it with
CAP_NET_BIND_SERVICE dropped from its bounding set (setpriv), as in a container started
with `--cap-drop NET_BIND_SERVICE`: a port below 1024 is then refused by the kernel.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from e2e_support import Boot, cinit_line, wait_until

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(60)]

Booter = Callable[..., Boot]  # the `boot` fixture (tests/e2e/conftest.py)
PRIVILEGED_PORT = 81  # below 1024; nothing listens on it here (checked below)


@pytest.fixture
def cinit_cmd(cinit_cmd: list[str]) -> list[str]:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to drop CAP_NET_BIND_SERVICE")
    probe = subprocess.run(
        ["setpriv", "--bounding-set", "-net_bind_service", "true"], capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot drop a capability here: {probe.stderr.decode().strip()}")
    return ["setpriv", "--bounding-set", "-net_bind_service", *cinit_cmd]


def test_permission_denied_fails_only_that_socket(boot: Booter, tmp_path: Path) -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", PRIVILEGED_PORT)) == 0:
            pytest.skip(f"something listens on port {PRIVILEGED_PORT} here")
    plain = tmp_path / "plain"
    run = boot(
        {
            "low.socket": f"[Socket]\nListenStream=127.0.0.1:{PRIVILEGED_PORT}\n",
            "low.service": "[Service]\nExecStart=/bin/sleep 60\n",
            "plain.service": f"[Service]\nType=oneshot\nExecStart=/usr/bin/touch {plain}\n",
        }
    )
    run.wait_err(
        cinit_line(
            "low.socket",
            rf"cannot bind ListenStream=127\.0\.0\.1:{PRIVILEGED_PORT}: "
            r"Permission denied \(EACCES\)",
        )
    )
    run.wait_err(cinit_line("low.service", r"failed \(dependency\): .*low\.socket.*"))
    wait_until(plain.exists, 10, "the other boot service" + run.report())
    assert run.alive()
    assert run.terminate() == 0, run.report()
