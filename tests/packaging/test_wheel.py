"""What `pip install cinit` (a wheel, not the editable install of the tests) puts in place."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        # Build isolation fetches setuptools, as `make venv` and any `pip install` do.
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=240,
    )
    assert build.returncode == 0, build.stderr
    (found,) = out.glob("cinit-*.whl")
    return zipfile.ZipFile(found)


def test_the_wheel_ships_the_example_unit_set(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    shipped = {p.relative_to(ROOT).as_posix() for p in (ROOT / "cinit" / "examples").rglob("*")
               if p.is_file()}
    assert shipped, "no example units in the source tree"
    assert shipped <= names, sorted(shipped - names)  # `cinit --example` needs every one


def test_the_cinit_command_is_the_plain_script(wheel: zipfile.ZipFile) -> None:
    (script,) = [n for n in wheel.namelist() if n.endswith(".data/scripts/cinit")]
    text = wheel.read(script).decode()
    assert text.startswith("#!python")  # pip points it at the installing interpreter
    code = [line for line in text.splitlines() if line and not line.startswith(("#", '"'))]
    assert "import re" not in text and "from cinit.cli import main" in code
