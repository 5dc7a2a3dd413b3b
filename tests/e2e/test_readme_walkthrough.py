"""The README's "Your first unit" walkthrough, run as written (paths moved into tmp_path).

The unit files are taken from the README's own `cat > FILE <<'EOF'` blocks, so the walkthrough
cannot drift from what cinit does: validate reports 2 units and the start order, the boot runs
the oneshot before the service, `cinit status` and `cinit restart` answer over the runtime dir
the README names, and SIGTERM stops hello before setup, exit 0.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import TESTS, LineReader, Pid1Run, pid1_helpers

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(120)]

README = TESTS.parent / "README.md"
HEREDOC = re.compile(r"cat > (\S+) <<'EOF'\n(.*?)\nEOF\n", re.S)


def walkthrough_units() -> dict[str, str]:
    """The unit files the README's walkthrough writes: file name -> text."""
    text = README.read_text()
    section = text[text.index("## Your first unit") :]
    section = section[: section.index("\n## ", 1)]
    units = {Path(path).name: body + "\n" for path, body in HEREDOC.findall(section)}
    assert set(units) == {"setup.service", "hello.service"}, units
    return units


@pytest.fixture
def units_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "myunits"
    directory.mkdir()
    for name, body in walkthrough_units().items():
        # The walkthrough's /tmp paths, moved under tmp_path: the test leaves the host's /tmp alone.
        (directory / name).write_text(body.replace("/tmp/", f"{tmp_path}/"))
    return directory


def cinit_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CINIT_")}


def test_validate_reports_both_units_in_order(units_dir: Path, cinit_cmd: list[str]) -> None:
    done = subprocess.run(
        [*cinit_cmd, "validate", "--units", str(units_dir)],
        capture_output=True, text=True, timeout=30, env=cinit_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("2 units"), done.stdout
    assert "0 errors" in done.stdout
    assert "start order: setup.service hello.service" in done.stdout


@pytest.fixture
def booted(tmp_path: Path, units_dir: Path, cinit_cmd: list[str]) -> Iterator[Pid1Run]:
    problem = pid1_helpers._unshare_problem()
    if problem:
        pytest.skip(problem)
    argv = [
        "unshare", "--pid", "--fork", "--mount-proc",
        *cinit_cmd, "--units", str(units_dir), "--runtime-dir", str(tmp_path / "myrun"),
    ]  # fmt: skip
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=cinit_env(),
    )  # fmt: skip
    run = Pid1Run(proc, LineReader(proc.stdout), LineReader(proc.stderr), time.monotonic())
    yield run
    run.kill()


def test_walkthrough_boots_answers_and_stops_in_order(
    booted: Pid1Run, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    run = booted
    assert run.out.wait_line(lambda line: line == "hello.service: hello", 30), run.err.text(1)
    assert (tmp_path / "hello-data").is_dir()  # setup.service ran

    def control(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [*cinit_cmd, *args, "--runtime-dir", str(tmp_path / "myrun")]
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=cinit_env())

    # The control socket comes up once the boot settled (at the latest 1 s after start).
    deadline = time.monotonic() + 15
    table = control("status")
    while table.returncode != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
        table = control("status")
    assert table.returncode == 0, table.stderr
    assert re.search(r"^hello\.service\s+active\b", table.stdout, re.M), table.stdout
    assert re.search(r"^setup\.service\s+exited\b", table.stdout, re.M), table.stdout

    one = control("status", "hello.service")
    assert one.returncode == 0, one.stderr
    assert "Say hello every 2 seconds" in one.stdout and "hello" in one.stdout

    restarted = control("restart", "hello.service")
    assert restarted.returncode == 0, restarted.stderr

    run.send(signal.SIGTERM)
    assert run.wait(30) == 0, run.err.text(5)
    err = run.err.text(5)
    assert err.rindex("cinit: hello.service: stopped") < err.rindex("cinit: setup.service: stopped")
