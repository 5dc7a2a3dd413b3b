"""systemctl's reload verbs without a running cinit: "cinit is not running", exit 1, for
each of them (as whole processes). With cinit: tests/e2e/test_e2e_reload.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    "verb",
    [
        ["reload", "web"],
        ["reload-or-restart", "web"],
        ["try-reload-or-restart", "web", "db"],
        ["daemon-reload"],
    ],
)
def test_without_cinit_each_verb_says_so_and_exits_1(
    cinit_cmd: list[str], tmp_path: Path, verb: list[str]
) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CINIT_", "CONTAINER_"))}
    argv = [*cinit_cmd, "systemctl", *verb, "--runtime-dir", str(runtime)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", "cinit is not running\n")


def test_daemon_reload_takes_no_unit(cinit_cmd: list[str]) -> None:
    done = subprocess.run(
        [*cinit_cmd, "systemctl", "daemon-reload", "web"], capture_output=True, text=True,
        timeout=30,
    )  # fmt: skip
    assert done.returncode == 1 and "too many arguments" in done.stderr
