"""Shared test fixtures: how tests find the cinit executable under test.

`CINIT_BIN` selects another build (for example a standalone `bin/cinit`); the default is
the installed console script, falling back to `python -m cinit`.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEED_DIR = ROOT / "tests" / "data" / "seed"


def cinit_command() -> list[str]:
    """The argv prefix that runs cinit."""
    override = os.environ.get("CINIT_BIN")
    if override:
        words = shlex.split(override)
        # A relative path (CINIT_BIN=bin/cinit) must survive tests that run in tmp_path.
        if "/" in words[0] and not os.path.isabs(words[0]):
            words[0] = os.path.abspath(words[0])
        return words
    script = Path(sys.executable).parent / "cinit"
    if script.exists():
        return [str(script)]
    found = shutil.which("cinit")
    if found:
        return [found]
    return [sys.executable, "-m", "cinit"]


@pytest.fixture(scope="session")
def cinit_cmd() -> list[str]:
    return cinit_command()


@pytest.fixture(scope="session", autouse=True)
def cinit_lines_written_directly() -> None:
    """cinit's lines written at once by in-process tests (they read fd 2 right after a
    call; a writer thread would also let a line land in a later test's capture). The
    writer thread itself is tested in tests/io/test_log.py; cinit processes use it."""
    from cinit.io.log import write_directly

    write_directly()
