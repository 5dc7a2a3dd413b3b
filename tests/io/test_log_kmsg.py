"""The kmsg log target (issue 7 §4): cinit's own lines as kernel log records.

The device is pointed at a plain file with `CINIT_KMSG_PATH` (writing to the real
/dev/kmsg would fill the host's kernel log): each record must read `<6>cinit: ...\\n`
(`<3>` for errors), one per line. One optional check writes one record to the real
/dev/kmsg and reads it back with `dmesg`. Selection runs in a child process (the target is
process-wide state), through the public API or the `cinit` command line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cinit.io import log

pytestmark = [pytest.mark.timeout(30)]


@pytest.fixture
def kmsg_file(tmp_path: Path) -> Path:
    path = tmp_path / "kmsg"
    path.touch()
    return path


@pytest.fixture
def restore_target() -> Iterator[None]:
    yield
    log.close_target()


def child_env(kmsg: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINIT_")}
    env[log.KMSG_PATH_ENV] = str(kmsg)
    env.update(extra)
    return env


def run_python(code: str, env: dict[str, str], close_stderr: bool = False) -> str:
    """Run `code` in a child interpreter (fd 2 closed if asked); its stdout."""
    argv = [sys.executable, "-c", code]
    if close_stderr:  # exec with fd 2 closed, as a kernel starts init without a console
        argv = ["/bin/sh", "-c", 'exec "$@" 2>&-', "sh", *argv]
    done = subprocess.run(argv, env=env, capture_output=True, timeout=20, check=True)
    return done.stdout.decode()


def test_each_line_is_one_record_with_a_severity_and_the_cinit_prefix() -> None:
    assert log.kmsg_records(6, "units loaded") == [b"<6>cinit: units loaded\n"]
    assert log.kmsg_records(3, "first\nsecond\n") == [b"<3>cinit: first\n", b"<3>cinit: second\n"]
    long = log.kmsg_records(6, "x" * 2000)
    assert len(long) == 3 and all(len(r) <= log.KMSG_RECORD_MAX + 12 for r in long)
    assert b"".join(r.removeprefix(b"<6>cinit: ").rstrip(b"\n") for r in long) == b"x" * 2000


def test_kmsg_target_writes_info_and_error_records_to_the_device(
    kmsg_file: Path, restore_target: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(log.KMSG_PATH_ENV, str(kmsg_file))
    assert log.configure_target("kmsg") == "kmsg"
    fd = log.kmsg_fd()
    assert fd is not None and fd > 2 and not os.get_inheritable(fd)
    log.log("unit a.service: failed (exit-code)")
    log.error("cannot hand off to /sbin/init.real: No such file or directory")
    assert kmsg_file.read_bytes() == (
        b"<6>cinit: unit a.service: failed (exit-code)\n"
        b"<3>cinit: cannot hand off to /sbin/init.real: No such file or directory\n"
    )
    assert log.configure_target("console") == "console"
    assert log.kmsg_fd() is None


def test_auto_picks_kmsg_only_when_there_is_no_stderr(kmsg_file: Path) -> None:
    code = "from cinit.io import log\nprint(log.configure_target())\nlog.log('hello from auto')\n"
    env = child_env(kmsg_file)
    assert run_python(code, env).strip() == "console"
    assert kmsg_file.read_bytes() == b""
    assert run_python(code, env, close_stderr=True).strip() == "kmsg"
    assert kmsg_file.read_bytes() == b"<6>cinit: hello from auto\n"


def test_closed_std_fds_get_an_inheritable_dev_null(kmsg_file: Path) -> None:
    code = (
        "import os\nfrom cinit.io import log\nlog.configure_target()\n"
        "print(os.readlink('/proc/self/fd/2'), os.get_inheritable(2), log.kmsg_fd())\n"
    )
    target, inheritable, kmsg_fd = run_python(code, child_env(kmsg_file), True).split()
    assert (target, inheritable) == ("/dev/null", "True")
    assert int(kmsg_fd) > 2  # cinit's own fd never takes a stdio number


def test_a_fifo_reader_gets_the_records(tmp_path: Path) -> None:
    fifo = tmp_path / "kmsg.fifo"
    os.mkfifo(fifo)
    code = "from cinit.io import log\nlog.configure_target('kmsg')\nlog.log('one\\ntwo')\n"
    child = subprocess.Popen([sys.executable, "-c", code], env=child_env(fifo))
    try:
        with open(fifo, "rb") as reader:  # the child's open waits for this reader
            data = reader.read()
        assert child.wait(timeout=20) == 0
    finally:
        child.kill()
        child.wait()
    assert data == b"<6>cinit: one\n<6>cinit: two\n"


def test_the_environment_selects_the_target_and_a_bad_device_falls_back_to_stderr(
    tmp_path: Path, kmsg_file: Path
) -> None:
    code = "from cinit.io import log\nprint(log.configure_target())\nlog.log('via env')\n"
    env = child_env(kmsg_file, CINIT_LOG_TARGET="kmsg")
    assert run_python(code, env).strip() == "kmsg"
    assert kmsg_file.read_bytes() == b"<6>cinit: via env\n"

    env = child_env(tmp_path / "no-such-dir" / "kmsg", CINIT_LOG_TARGET="kmsg")
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, timeout=20, check=True
    )
    assert done.stdout.decode().strip() == "console"
    assert b"cinit: cannot open" in done.stderr and b"cinit: via env\n" in done.stderr


def test_cinit_log_target_kmsg_sends_its_lines_to_kmsg_and_not_stderr(
    tmp_path: Path, kmsg_file: Path, cinit_cmd: list[str]
) -> None:
    argv = [
        *cinit_cmd, "--units", str(tmp_path / "none"), "--drop-in", str(tmp_path / "none"),
        "--log-target", "kmsg",
    ]  # fmt: skip
    done = subprocess.run(argv, env=child_env(kmsg_file), capture_output=True, timeout=20)
    assert done.returncode == 2
    assert done.stderr == b""
    records = kmsg_file.read_bytes().splitlines(keepends=True)
    assert len(records) == 1 and records[0].startswith(b"<6>cinit: nothing to supervise: ")


def test_a_failed_handoff_is_an_error_record(
    tmp_path: Path, kmsg_file: Path, cinit_cmd: list[str]
) -> None:
    units = tmp_path / "units"
    units.mkdir()
    missing = tmp_path / "no-such-init"
    argv = [
        *cinit_cmd, "--units", str(units), "--drop-in", str(tmp_path / "none"),
        "--then-exec", str(missing),
    ]  # fmt: skip
    env = child_env(kmsg_file, CINIT_LOG_TARGET="kmsg")
    done = subprocess.run(argv, env=env, capture_output=True, timeout=20)
    assert done.returncode == 127, done.stderr
    assert f"<3>cinit: cannot hand off to {missing}: No such file or directory".encode() in (
        kmsg_file.read_bytes()
    )


def test_an_unknown_log_target_is_a_usage_error(cinit_cmd: list[str]) -> None:
    argv = [*cinit_cmd, "--log-target", "syslog"]
    done = subprocess.run(argv, capture_output=True, timeout=20)
    assert done.returncode == 2
    assert b"--log-target" in done.stderr


def test_a_record_reaches_the_real_kernel_log() -> None:
    if os.geteuid() != 0 or not os.access("/dev/kmsg", os.W_OK):
        pytest.skip("writing /dev/kmsg needs root and a writable /dev/kmsg")
    dmesg = shutil.which("dmesg")
    if dmesg is None:
        pytest.skip("dmesg (util-linux) is not installed")
    if subprocess.run([dmesg], capture_output=True, timeout=10).returncode != 0:
        pytest.skip("dmesg cannot read the kernel log here (dmesg_restrict or no permission)")
    marker = f"test-log-kmsg-{uuid.uuid4().hex[:12]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINIT_")}
    code = f"from cinit.io import log\nlog.configure_target('kmsg')\nlog.log({marker!r})\n"
    subprocess.run([sys.executable, "-c", code], env=env, timeout=20, check=True)
    kernel_log = subprocess.run([dmesg], capture_output=True, timeout=10).stdout.decode()
    assert f"cinit: {marker}" in kernel_log
