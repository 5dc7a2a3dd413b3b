"""The boot path's boundary (`cinit.boot_path`): cinit runs up to its first exec, and no
module outside the boundary may have been imported by then.

cinit runs under a small wrapper that notes every import (an audit hook) and the moment of
each exec (os.execve, which cinit's spawn calls in the child), both with CLOCK_MONOTONIC,
which parent and child share; the imports noted before the first exec are checked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cinit.boot_path import FORBIDDEN, KEPT_OUT_OF_PLAIN_UNITS, allowed

pytestmark = pytest.mark.timeout(60)

WRAPPER = """\
import os, sys, time

_notes, _execve = os.environ.pop("BOOT_PATH_NOTES"), os.execve


def _note(line):  # opened each time: the child closes the fds it does not pass on
    fd = os.open(_notes, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.write(fd, f"{time.monotonic_ns()} {line}\\n".encode())
    os.close(fd)


def _on_audit(event, args):
    if event == "import":
        _note(f"import {args[0]}")


def _noting_execve(path, argv, env):
    _note(f"exec {path}")
    _execve(path, argv, env)


os.execve = _noting_execve
sys.addaudithook(_on_audit)
sys.argv = ["cinit", *sys.argv[1:]]
from cinit.cli import main

raise SystemExit(main())
"""


def imported_before_first_exec(tmp_path: Path, *args: str) -> tuple[str, set[str]]:
    """Run cinit with `args`; the path of its first exec and the modules imported before."""
    wrapper, notes = tmp_path / "wrapper.py", tmp_path / "notes"
    wrapper.write_text(WRAPPER)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CINIT_", "CONTAINER_"))}
    env["BOOT_PATH_NOTES"] = str(notes)
    done = subprocess.run(
        [sys.executable, str(wrapper), *args],
        capture_output=True, text=True, timeout=30, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    modules: set[str] = set()
    for _, what, name in sorted(line.split(" ", 2) for line in notes.read_text().splitlines()):
        if what == "exec":
            return name, modules
        modules.add(name)
    raise AssertionError(f"cinit exec'd nothing: {done.stderr}")


def test_the_main_command_is_exec_d_with_the_tini_modules_only(tmp_path: Path) -> None:
    nowhere = ["--units", str(tmp_path / "no-units"), "--drop-in", str(tmp_path / "no-drop-in")]
    path, modules = imported_before_first_exec(tmp_path, *nowhere, "--", "/bin/true")
    assert path == "/bin/true"
    assert "cinit.boot" in modules  # the probe sees cinit's imports
    assert sorted(m for m in modules if not allowed(m, units=False)) == []


def test_the_first_unit_is_exec_d_within_the_boundary(tmp_path: Path) -> None:
    units, drop_in = tmp_path / "units", tmp_path / "drop-in"
    units.mkdir()
    drop_in.mkdir()
    (units / "first.service").write_text("[Service]\nType=oneshot\nExecStart=/bin/true\n")
    path, modules = imported_before_first_exec(
        tmp_path, "--units", str(units), "--drop-in", str(drop_in), "--then-exec", "/bin/true"
    )
    assert path == "/bin/true"
    assert "cinit.units.loader" in modules
    assert sorted(m for m in modules if not allowed(m, units=True)) == []
    assert sorted(KEPT_OUT_OF_PLAIN_UNITS & modules) == []  # a unit of plain words


def test_the_boundary_forbids_the_costly_modules() -> None:
    assert {"typing", "dataclasses", "pykka", "zmq", "typer"} <= FORBIDDEN
    assert not allowed("typing", units=True) and not allowed("zmq.sugar", units=True)
    assert not allowed("cinit.events.hub", units=True)
    assert not allowed("cinit.units.loader", units=False)
    assert allowed("cinit.units.loader", units=True) and allowed("os", units=False)
