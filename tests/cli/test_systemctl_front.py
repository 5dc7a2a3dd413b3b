"""The `systemctl` front end (`cinit.cli.systemctl`): how it is reached, its options, its verb
table and its errors. The verbs themselves are tested with their handlers' modules."""

from __future__ import annotations

import importlib
import os
import subprocess
from pathlib import Path

import pytest

from cinit.cli.systemctl import VERBS

pytestmark = pytest.mark.timeout(60)


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CINIT_", "CONTAINER_"))}
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env,
                          stdin=subprocess.DEVNULL)  # fmt: skip


def test_every_verb_has_a_handler() -> None:
    for name, verb in VERBS.items():
        handler = getattr(importlib.import_module(verb.module), verb.function, None)
        assert callable(handler), f"{name}: {verb.module}:{verb.function}"


def test_an_unknown_verb_says_so_and_exits_1(cinit_cmd: list[str]) -> None:
    done = run([*cinit_cmd, "systemctl", "frobnicate"])
    assert done.returncode == 1
    assert "Unknown command verb 'frobnicate'" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_misspelt_verb_gets_a_suggestion(cinit_cmd: list[str]) -> None:
    done = run([*cinit_cmd, "systemctl", "stauts", "x"])
    assert done.returncode == 1
    assert "did you mean 'status'?" in done.stderr


def test_user_mode_is_refused_plainly(cinit_cmd: list[str]) -> None:
    done = run([*cinit_cmd, "systemctl", "--user", "start", "x"])
    assert done.returncode == 1
    assert "--user is not supported" in done.stderr


def test_an_unknown_option_exits_1(cinit_cmd: list[str]) -> None:
    done = run([*cinit_cmd, "systemctl", "--frob", "status"])
    assert done.returncode == 1
    assert "unknown option '--frob'" in done.stderr


def test_help_lists_every_verb(cinit_cmd: list[str]) -> None:
    done = run([*cinit_cmd, "systemctl", "--help"])
    assert done.returncode == 0
    for name in VERBS:
        assert f"  {name} " in done.stdout


def test_cinit_called_as_systemctl_is_systemctl(cinit_cmd: list[str], tmp_path: Path) -> None:
    if len(cinit_cmd) > 1:
        pytest.skip("cinit runs as `python -m cinit` here: no executable to link to")
    link = tmp_path / "systemctl"
    link.symlink_to(cinit_cmd[0])
    done = run([str(link), "stauts"])
    assert done.returncode == 1
    assert "did you mean 'status'?" in done.stderr
