"""`ListenStream=PORT` binds IPv6 dual-stack `[::]`, and IPv4 `0.0.0.0` where IPv6 is off.

"Off" is a kernel without IPv6 (ipv6.disable=1): socket(AF_INET6) fails with EAFNOSUPPORT.
tests/programs/no_ipv6.py produces exactly that for cinit with a seccomp filter, a real
kernel mechanism, then execs cinit.
"""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from e2e_support import Boot, wait_until
from sockets_support import fetch, free_port, listen_server

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(60)]

Booter = Callable[..., Boot]  # the `boot` fixture (tests/e2e/conftest.py)
NO_IPV6 = Path(__file__).resolve().parents[1] / "programs" / "no_ipv6.py"


@pytest.fixture
def cinit_cmd(cinit_cmd: list[str]) -> list[str]:
    if platform.machine() != "x86_64":
        pytest.skip("the seccomp filter of no_ipv6.py is written for x86_64")
    return [sys.executable, "-I", str(NO_IPV6), *cinit_cmd]


def test_a_bare_port_falls_back_to_ipv4_without_ipv6(boot: Booter, tmp_path: Path) -> None:
    port = free_port()
    report = tmp_path / "report.json"
    run = boot(
        {
            "web.socket": f"[Socket]\nListenStream={port}\n",
            "web.service": f"[Service]\nExecStart={listen_server(report)}\n",
        }
    )
    wait_until(lambda: run.alive() and _listening(port), 10, "the IPv4 listener" + run.report())
    assert fetch(port).startswith(b"hello ")  # the service got the IPv4 listener
    wait_until(report.exists, 10, "the service's report")
    assert json.loads(report.read_text())["listen_fds"] == "1"
    assert run.terminate() == 0, run.report()


def _listening(port: int) -> bool:
    """Whether an IPv4 socket listens on 0.0.0.0:port (from /proc/net/tcp)."""
    wanted = f"00000000:{port:04X}"
    with open("/proc/net/tcp") as table:
        return any(line.split()[1] == wanted and line.split()[3] == "0A" for line in table)
