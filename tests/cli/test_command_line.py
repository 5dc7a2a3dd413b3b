"""The `cinit` command line as a user types it: help, unknown commands, exit statuses,
and every documented form of the boot path (README "Usage", the seed's flags).

cinit runs as an ordinary process here (it makes itself a subreaper); `-- CMD` forms run
small real programs. No cinit is running for the control commands: their runtime
directory is an empty tmp directory.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cinit.cli import command_names

pytestmark = pytest.mark.timeout(60)

# Every command `cinit` takes (its dispatcher's own list: a command added by a later change,
# logs or reload, is checked here without editing this file); `help` is the help itself.
COMMANDS = tuple(name for name in command_names() if name != "help")


def cinit(
    cinit_cmd: list[str], *args: str | Path, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CINIT_", "CONTAINER_"))}
    return subprocess.run(
        [*cinit_cmd, *map(str, args)], capture_output=True, text=True, timeout=30, env=env,
        stdin=subprocess.DEVNULL, cwd=cwd,
    )  # fmt: skip


@pytest.fixture
def no_units(tmp_path: Path) -> list[str]:
    """Options naming unit directories that do not exist (the host's defaults may)."""
    return ["--units", str(tmp_path / "no-units"), "--drop-in", str(tmp_path / "no-drop-in")]


@pytest.fixture
def units(tmp_path: Path) -> list[str]:
    """A unit directory with one oneshot, and an empty drop-in directory."""
    core, drop_in = tmp_path / "units", tmp_path / "drop-in"
    core.mkdir()
    drop_in.mkdir()
    (core / "hello.service").write_text("[Service]\nType=oneshot\nExecStart=/bin/true\n")
    return ["--units", str(core), "--drop-in", str(drop_in)]


# ---- help ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ask", [["--help"], ["-h"], ["help"], ["help", "-h"]])
def test_top_level_help_lists_every_command(cinit_cmd: list[str], ask: list[str]) -> None:
    done = cinit(cinit_cmd, *ask)
    assert done.returncode == 0, done.stderr
    listed = done.stdout.partition("Commands:")[2].split("\n")
    names = {line.split()[0] for line in listed if line.strip()}
    assert set(COMMANDS) <= names, done.stdout
    assert "<bool>" not in done.stdout
    # The control commands' exit-status rule is stated where a user looks first.
    assert "3 not ready, UNIT not up, or cinit not running" in " ".join(done.stdout.split())


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "version"])
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_every_command_takes_h_and_help(cinit_cmd: list[str], command: str, flag: str) -> None:
    done = cinit(cinit_cmd, command, flag)
    assert done.returncode == 0, (command, flag, done.stderr)
    # systemctl's and journalctl's synopses are their own (they are also reached by a symlink
    # of that name, and journalctl -h starts with its synopsis, no "usage:")
    starts = ("usage: cinit", f"usage: {command}", f"{command} [")
    assert done.stdout.lower().startswith(starts), done.stdout
    assert command in done.stdout.partition("\n\n")[0], done.stdout  # in its synopsis
    assert cinit(cinit_cmd, "help", command).stdout == done.stdout


def test_version_and_its_help(cinit_cmd: list[str]) -> None:
    for ask in (["version"], ["--version"]):
        done = cinit(cinit_cmd, *ask)
        assert done.returncode == 0 and done.stdout.startswith("cinit "), done.stderr
    assert cinit(cinit_cmd, "version", "-h").returncode == 0


# ---- unknown commands ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "meant"),
    [
        ("stauts", "status"),
        ("isready", "is-ready"),
        ("analyse", "analyze"),
        ("vaildate", "validate"),
    ],
)
def test_a_mistyped_command_says_which_was_meant(
    cinit_cmd: list[str], word: str, meant: str
) -> None:
    done = cinit(cinit_cmd, word)
    assert done.returncode == 2
    assert f"unknown command '{word}'; did you mean '{meant}'?" in done.stderr, done.stderr
    assert done.stdout == ""
    helped = cinit(cinit_cmd, "help", word)
    assert helped.returncode == 2 and f"did you mean '{meant}'?" in helped.stderr


def test_a_program_name_as_first_word_is_an_unknown_command_pointing_at_dash_dash(
    cinit_cmd: list[str], tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    done = cinit(cinit_cmd, "touch", marker)
    assert done.returncode == 2
    assert "unknown command 'touch'; to run it as the main command: cinit -- touch" in (done.stderr)
    assert not marker.exists()


# ---- cinit not running: one exit status for every control command -------------------------


@pytest.mark.parametrize(
    "command", [["status"], ["status", "web"], ["is-ready"], ["start", "web"], ["stop", "web"],
                ["restart", "web"]],
)  # fmt: skip
def test_every_control_command_exits_3_when_cinit_is_not_running(
    cinit_cmd: list[str], tmp_path: Path, command: list[str]
) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    done = cinit(cinit_cmd, *command, "--runtime-dir", runtime)
    assert done.returncode == 3, (command, done.stderr)
    assert "not running" in done.stderr


# ---- the documented boot forms ------------------------------------------------------------


def test_form_dash_dash_command_runs_it_and_passes_its_status(
    cinit_cmd: list[str], no_units: list[str]
) -> None:
    if any(os.path.isdir(d) for d in ("/etc/container-init/units", "/etc/container-init.d")):
        pytest.skip("this host has container-init unit directories: bare `cinit -- CMD` boots them")
    done = cinit(cinit_cmd, "--", "/bin/sh", "-c", "echo main; exit 3")
    assert (done.returncode, done.stdout) == (3, "main\n"), done.stderr


def test_form_options_then_dash_dash_command(cinit_cmd: list[str], no_units: list[str]) -> None:
    done = cinit(cinit_cmd, *no_units, "--stop-timeout", "2s", "--", "/bin/sh", "-c", "exit 4")
    assert done.returncode == 4, done.stderr


def test_form_run_with_options_and_command(cinit_cmd: list[str], no_units: list[str]) -> None:
    done = cinit(cinit_cmd, "run", *no_units, "--", "/bin/sh", "-c", "exit 5")
    assert done.returncode == 5, done.stderr


def test_form_a_command_word_after_dash_dash_is_the_main_command(
    cinit_cmd: list[str], no_units: list[str], tmp_path: Path
) -> None:
    # `status` after `--` is a program to run (here a script named so), not cinit's command.
    script = tmp_path / "status"
    script.write_text("#!/bin/sh\nexit 6\n")
    script.chmod(0o755)
    done = cinit(cinit_cmd, *no_units, "--", "./status", cwd=tmp_path)
    assert done.returncode == 6, done.stderr


def test_form_seed_validate_flag(cinit_cmd: list[str], units: list[str]) -> None:
    done = cinit(cinit_cmd, *units, "--validate")
    assert done.returncode == 0, done.stderr
    assert "hello.service" in done.stdout


def test_form_seed_strict_units_validate(cinit_cmd: list[str], units: list[str]) -> None:
    done = cinit(cinit_cmd, "--strict-units", *units, "--validate")
    assert done.returncode == 0, done.stderr


def test_form_then_exec_hands_off_after_the_boot(
    cinit_cmd: list[str], units: list[str], tmp_path: Path
) -> None:
    done = cinit(cinit_cmd, *units, "--runtime-dir", tmp_path / "rt", "--then-exec",
                 "/bin/sh", "-c", "exit 7")  # fmt: skip
    assert done.returncode == 7, done.stderr


def test_form_nothing_to_run_is_a_usage_error_naming_both_directories(
    cinit_cmd: list[str], no_units: list[str]
) -> None:
    done = cinit(cinit_cmd, *no_units)
    assert done.returncode == 2
    assert no_units[1] in done.stderr and no_units[3] in done.stderr


def test_form_a_bare_word_after_options_is_still_a_usage_error(
    cinit_cmd: list[str], no_units: list[str], tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    done = cinit(cinit_cmd, *no_units, "touch", marker)
    assert done.returncode == 2
    assert "give the main command after '--'" in done.stderr
    assert not marker.exists()
