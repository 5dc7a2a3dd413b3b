"""`cinit --help`, `help COMMAND` and `version` work without the libraries the standalone
build leaves out (pydantic, which newer typer needs to convert parameters; rich, pygments,
markdown_it, which typer uses for its help when present): packaging/cinit.spec.

Each case runs cinit in a fresh interpreter whose import system refuses those packages."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(60)

LEFT_OUT = ("pydantic", "pydantic_core", "rich", "pygments", "markdown_it")
RUN = f"""
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {LEFT_OUT!r}:
            raise ImportError("left out of the bundle: " + name)
        return None
sys.meta_path.insert(0, Refuse())
from cinit.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def cinit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, text=True,
                          timeout=50)  # fmt: skip


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--help",), "Commands"),
        (("-h",), "validate"),
        (("help",), "is-ready"),
        (("version",), "cinit 0.1"),
        (("--version",), "cinit 0.1"),
        (("help", "version"), "Print cinit's version."),
        (("version", "--help"), "Usage: cinit version"),
        (("help", "validate"), "usage: cinit validate"),
        (("help", "status"), "usage: cinit status"),
        (("help", "run"), "usage: cinit [run]"),
    ],
)
def test_help_and_version_need_none_of_them(args: tuple[str, ...], expected: str) -> None:
    done = cinit(*args)
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout
    assert "Traceback" not in done.stderr


def test_version_with_an_argument_is_a_usage_error() -> None:
    done = cinit("version", "extra")
    assert done.returncode == 2
    assert done.stderr == "cinit version: takes no arguments, got 'extra'\n"


def test_help_of_an_unknown_command_says_so() -> None:
    done = cinit("help", "nope")
    assert done.returncode == 2
    assert "unknown command 'nope'" in done.stderr
