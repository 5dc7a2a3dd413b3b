"""cinit raises its own fd limit (proxy sockets hold two fds per connection); services keep the
limit cinit was given."""

from __future__ import annotations

import resource
from collections.abc import Callable
from pathlib import Path

import pytest
from e2e_support import Boot, wait_until

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(60)]

Booter = Callable[..., Boot]  # the `boot` fixture (tests/e2e/conftest.py)


def test_pid1_raises_its_fd_limit_and_services_keep_the_original(
    boot: Booter, tmp_path: Path
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard <= 256:
        pytest.skip(f"the hard fd limit here ({hard}) leaves no room to lower the soft one")
    out = tmp_path / "limits"
    unit = f"""
        [Service]
        Type=oneshot
        RemainAfterExit=yes
        ExecStart=/bin/sh -c 'ulimit -n > {out}; grep "open files" /proc/1/limits >> {out}'
        """
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))  # inherited by cinit
    try:
        run = boot({"limits.service": unit})
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    wait_until(lambda: out.exists() and len(out.read_text().splitlines()) == 2, 15, "the unit")
    service_limit, pid1_line = out.read_text().splitlines()
    assert service_limit == "256"
    assert pid1_line.split()[3:5] == [str(hard), str(hard)]  # Max open files  soft  hard
    assert run.terminate() == 0
