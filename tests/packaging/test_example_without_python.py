"""`cinit --example` of the standalone build on a system without python3.

The example's web.service runs `python3 -m http.server`; the standalone cinit needs no
Python, so the target may have none. cinit boots the rest of the example (hello, ticker,
the drop-ins: /bin/sh and /bin/echo) and says at once, plainly, that web.service will fail.
python3 is taken away in a mount namespace of the test's own (/dev/null bound over every
python3 on the PATH), cinit runs as its PID 1 with a network namespace of its own (the
example's 127.0.0.1:8080 cannot clash with the host's).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from e2e_support import LineReader, Pid1Run, pid1_helpers  # noqa: E402

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(120)]

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Inside the namespaces: loopback up, every python3 on PATH masked, then cinit, clean env.
NO_PYTHON = """
ip link set lo up
for dir in $(echo "$PATH" | tr : ' '); do
    for python in "$dir"/python3*; do
        [ -e "$python" ] && mount --bind /dev/null "$python"
    done
done
if command -v python3 >/dev/null && python3 -c '' 2>/dev/null; then
    echo "python3 still runs" >&2
    exit 99
fi
exec env -i PATH="$PATH" "$@"
"""


def standalone() -> Path:
    given = os.environ.get("CINIT_BIN")
    candidate = Path(given) if given else ROOT / "bin" / "cinit"
    if not (candidate.resolve().parent / "libexec").is_dir():
        pytest.skip("needs the standalone build (make standalone, or CINIT_BIN=bin/cinit)")
    return candidate


@pytest.fixture
def example(tmp_path: Path) -> Iterator[Pid1Run]:
    cinit = standalone()
    problem = pid1_helpers._unshare_problem()
    if problem:
        pytest.skip(problem)
    if shutil.which("ip") is None:
        pytest.skip("needs ip (iproute2) to bring loopback up")
    argv = [
        "unshare", "--pid", "--fork", "--mount-proc", "--mount", "--propagation", "private",
        "--net", "/bin/sh", "-c", NO_PYTHON, "no-python",
        str(cinit), "--example", "--runtime-dir", str(tmp_path / "run"),
    ]  # fmt: skip
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={"PATH": PATH}, cwd="/",
    )  # fmt: skip
    run = Pid1Run(proc, LineReader(proc.stdout), LineReader(proc.stderr), time.monotonic())
    yield run
    run.kill()


def test_example_without_python3_boots_the_rest_and_says_why_web_will_fail(
    example: Pid1Run,
) -> None:
    run = example
    said = run.err.wait_line(
        lambda text: text.startswith("cinit: --example: no python3 on this system (PATH): "),
        30,
    )
    assert said, run.err.text(0)
    assert "web.service" in said and "python3 -m http.server" in said
    assert run.err.wait_line(lambda text: text == "cinit: ticker.service: ready", 30), \
        run.err.text(0)  # fmt: skip
    for line in ("hello from hello.service", "report: running as root"):
        assert run.out.wait_line(lambda text, want=line: want in text, 20), run.out.text(0)
    run.send(signal.SIGTERM)
    assert run.wait(30) == 0, run.err.text(5)
    assert "Traceback" not in run.err.text(0)
