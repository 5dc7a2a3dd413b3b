"""Service output: on cinit's stdout/stderr line by line, prefixed `<unit>: ` unless turned off."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from e2e_support import Boot, cinit_line, shell_script

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(60)]

Booter = Callable[..., Boot]  # the `boot` fixture (tests/e2e/conftest.py)


def output_units(tmp_path: Path) -> dict[str, str]:
    talker = shell_script(tmp_path / "talker.sh", """
        echo hello
        echo oops >&2
        printf 'partial, no newline'
        """)
    filer = shell_script(tmp_path / "filer.sh", """
        echo "to the file"
        echo "filer to stderr" >&2
        """)
    return {
        "talker.service": f"""
            [Service]
            Type=oneshot
            RemainAfterExit=yes
            ExecStart={talker}
            """,
        "filer.service": f"""
            [Service]
            Type=oneshot
            RemainAfterExit=yes
            StandardOutput=file:{tmp_path / "filer.out"}
            ExecStart={filer}
            """,
    }


def booted_and_stopped(run: Boot) -> tuple[list[str], list[str]]:
    """Wait for both oneshots, stop cinit; its stdout and stderr lines."""
    run.wait_err(cinit_line("talker.service", "ready"), timeout=20)
    run.wait_err(cinit_line("filer.service", "ready"), timeout=20)
    assert run.terminate() == 0, run.report()
    return run.stdout().splitlines(), run.stderr().splitlines()


def test_service_output_lines_are_prefixed_with_the_unit_name(
    boot: Booter, tmp_path: Path
) -> None:
    out, err = booted_and_stopped(boot(output_units(tmp_path)))
    talker_out = [line for line in out if line.startswith("talker.service: ")]
    # The last line had no newline when the service exited: it is kept, not lost.
    assert talker_out == ["talker.service: hello", "talker.service: partial, no newline"], out
    assert "talker.service: oops" in err, err
    # StandardOutput=file: sends stdout there and nowhere else; stderr still goes to cinit's.
    assert (tmp_path / "filer.out").read_text() == "to the file\n"
    assert not [line for line in out if "to the file" in line], out
    assert "filer.service: filer to stderr" in err, err


@pytest.mark.parametrize("how", ["--no-log-prefix", "CINIT_LOG_PREFIX=0"])
def test_log_prefix_can_be_turned_off(boot: Booter, tmp_path: Path, how: str) -> None:
    if how.startswith("--"):
        run = boot(output_units(tmp_path), options=[how])
    else:
        name, _, value = how.partition("=")
        run = boot(output_units(tmp_path), env={name: value})
    out, err = booted_and_stopped(run)
    assert [line for line in out if line in ("hello", "partial, no newline")] == [
        "hello", "partial, no newline",
    ], out
    assert not [line for line in out if line.startswith("talker.service:")], out
    assert "oops" in err, err
    assert (tmp_path / "filer.out").read_text() == "to the file\n"
