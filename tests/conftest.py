"""Shared test fixtures: how tests find the cinit executable under test.

`CINIT_BIN` selects another build (for example a standalone `bin/cinit`); the default is
the installed console script, falling back to `python -m cinit`. Tests that run cinit as
another user (`nobody`) take `cinit_cmd_any_user`: the same command when that user can run
it, else a world-readable copy (the checkout may sit in a 0700 directory such as /root).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
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


AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _problem_as_nobody(argv: list[str]) -> str | None:
    """Why `nobody` cannot run `argv version`, or None when it can."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINIT_")}
    try:
        done = subprocess.run(
            [*AS_NOBODY, *argv, "version"], capture_output=True, text=True, timeout=60,
            cwd="/", env=env,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as error:
        return repr(error)
    return None if done.returncode == 0 else (done.stderr.strip() or f"exit {done.returncode}")


def _runtime_distributions() -> list[importlib.metadata.Distribution]:
    """The installed distributions cinit needs at run time (its dependencies, recursively)."""
    found: dict[str, importlib.metadata.Distribution] = {}
    pending = list(importlib.metadata.requires("cinit") or [])
    while pending:
        requirement = pending.pop()
        if "extra ==" in requirement:
            continue
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
        assert match is not None, requirement
        name = match.group(0).lower().replace("_", "-")
        if name in found:
            continue
        try:
            found[name] = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # a marker excluded it here (python_version, platform)
        pending += found[name].requires or []
    return list(found.values())


def _copy_of_the_package(lib: Path) -> None:
    """cinit and its run-time dependencies, as files under `lib` (a sys.path entry)."""
    shutil.copytree(ROOT / "cinit", lib / "cinit")
    for dist in _runtime_distributions():
        for file in dist.files or []:
            if file.parts[0] == ".." or file.suffix == ".pyc":
                continue  # scripts beside the venv's bin/; stale bytecode
            source = Path(str(dist.locate_file(file)))
            if source.is_file():
                target = lib / file
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)


def _copy_for_any_user(dest: Path) -> tuple[list[str] | None, str]:
    """A command `nobody` can run, from copies under `dest`; (None, why) when there is none."""
    override = cinit_command()
    if os.environ.get("CINIT_BIN"):
        bundle = Path(override[0]).resolve().parent
        if not ((bundle / "libexec").is_dir() or (bundle / "_internal").is_dir()):
            return None, f"CINIT_BIN={override[0]} is not a standalone bundle to copy"
        shutil.copytree(bundle, dest / "bundle", symlinks=True)
        command = [str(dest / "bundle" / Path(override[0]).resolve().name), *override[1:]]
        problem = _problem_as_nobody(command)
        return (None, problem) if problem else (command, "")
    lib = dest / "lib"
    _copy_of_the_package(lib)
    problems = []
    # The interpreter running the tests (outside its venv), else the system's: the copied
    # compiled modules need the same Python minor version, which the probe checks.
    for interpreter in dict.fromkeys([os.path.realpath(sys.executable), "/usr/bin/python3"]):
        script = dest / "cinit"
        script.write_text(
            f"#!{interpreter} -sE\n"
            "import sys\n"
            f"sys.path.insert(0, {str(lib)!r})\n"
            "from cinit.cli import main\n"
            "raise SystemExit(main())\n"
        )
        script.chmod(0o755)
        problem = _problem_as_nobody([str(script)])
        if problem is None:
            return [str(script)], ""
        problems.append(f"{interpreter}: {problem}")
    return None, "; ".join(problems)


@pytest.fixture(scope="session")
def cinit_cmd_any_user(cinit_cmd: list[str]) -> Iterator[list[str]]:
    """argv of cinit that `nobody` can run too (needs root and setpriv; skips otherwise).

    The command under test when `nobody` can run it; else a copy in a 0755 directory under
    /tmp (a checkout in /root, mode 0700, is out of other users' reach): the standalone
    bundle, or cinit's package and its dependencies beside a script run by this Python (or
    the system's python3)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv (util-linux) to run cinit as another user")
    if _problem_as_nobody(cinit_cmd) is None:
        yield cinit_cmd
        return
    dest = Path(tempfile.mkdtemp(prefix="cinit-any-user-", dir="/tmp"))
    try:
        dest.chmod(0o755)
        command, why = _copy_for_any_user(dest)
        if command is None:
            pytest.skip(f"no cinit that user nobody can run ({why})")
        yield command
    finally:
        shutil.rmtree(dest, ignore_errors=True)
