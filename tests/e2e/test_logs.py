"""`cinit logs` and `journalctl` against cinit as PID 1 with real services (issue 16 §3).

The services write to stdout and stderr; the order of lines across units is made certain
by the test itself: a unit writes its next line only once the test has seen the previous
one and touched a file it waits for. `journalctl` is cinit's executable through a symlink
in a temporary directory (never /usr/bin).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Boot, wait_until

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(120)]

Booter = Callable[..., Boot]


def _waiter(flag: Path) -> str:
    return f"while [ ! -e {flag} ]; do sleep 0.05; done"


def units(flags: Path) -> dict[str, str]:
    big_line = "%05d " + "y" * 1994
    return {
        "talker.service": f"""
            [Service]
            ExecStart=/bin/sh -c 'echo out-1; {_waiter(flags / "go-t1")}; echo err-1 >&2; \\
                {_waiter(flags / "go-t2")}; echo out-2; exec sleep 120'
            """,
        "a.service": f"""
            [Service]
            ExecStart=/bin/sh -c 'echo a1; {_waiter(flags / "go-a2")}; echo a2; exec sleep 120'
            """,
        "b.service": f"""
            [Service]
            ExecStart=/bin/sh -c '{_waiter(flags / "go-b1")}; echo b1; \\
                {_waiter(flags / "go-b2")}; echo b2; exec sleep 120'
            """,
        "counter.service": """
            [Service]
            ExecStart=/bin/sh -c 'i=0; while [ $i -lt 5000 ]; do echo "line $i"; \\
                i=$((i+1)); done; exec sleep 120'
            """,
        "big.service": f"""
            [Service]
            ExecStart=/bin/sh -c 'i=0; while [ $i -lt 3000 ]; do printf "{big_line}\\\\n" $i; \\
                i=$((i+1)); done; exec sleep 120'
            """,
        "ticker.service": """
            [Service]
            ExecStart=/bin/sh -c 'i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.1; done'
            """,
    }


def run(argv: list[str], runtime: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINIT_")}
    if runtime is not None:
        env["CINIT_RUNTIME_DIR"] = str(runtime)
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=30, env=env)


def logs(cinit_cmd: list[str], runtime: Path, *args: str) -> list[dict[str, Any]]:
    done = run(cinit_cmd, runtime, "logs", "--json", *args)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def texts(cinit_cmd: list[str], runtime: Path, *args: str) -> list[str]:
    return [line["text"] for line in logs(cinit_cmd, runtime, *args)]


def shows(cinit_cmd: list[str], runtime: Path, unit: str, text: str) -> Callable[[], bool]:
    return lambda: text in texts(cinit_cmd, runtime, unit)


def read_lines(proc: subprocess.Popen[bytes], count: int, timeout: float) -> list[str]:
    """The first `count` lines of a follower's stdout (bounded in time)."""
    assert proc.stdout is not None
    buffer = b""
    deadline = time.monotonic() + timeout
    while buffer.count(b"\n") < count:
        left = deadline - time.monotonic()
        assert left > 0, f"follower printed only {buffer!r}"
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, f"follower ended: {buffer!r}"
            buffer += chunk
    return buffer.decode().splitlines()[:count]


@pytest.fixture
def booted(boot: Booter, tmp_path: Path, cinit_cmd: list[str]) -> tuple[Boot, Path, Path]:
    flags = tmp_path / "flags"
    flags.mkdir()
    started = boot(units(flags))
    runtime = tmp_path / "boot" / "run"
    wait_until(lambda: (runtime / "control").exists(), 20, "the control socket")
    # talker's lines come in an order that is certain: each after the test saw the last
    wait_until(shows(cinit_cmd, runtime, "talker", "out-1"), 20, "talker's out-1")
    (flags / "go-t1").touch()
    wait_until(shows(cinit_cmd, runtime, "talker", "err-1"), 20, "talker's err-1")
    (flags / "go-t2").touch()
    wait_until(shows(cinit_cmd, runtime, "talker", "out-2"), 20, "talker's out-2")
    return started, runtime, flags


def test_logs_streams_bounds_order_since_and_status(
    booted: tuple[Boot, Path, Path], cinit_cmd: list[str]
) -> None:
    run_, runtime, flags = booted
    # stdout and stderr, with their streams, in the journal's short format too
    talker = logs(cinit_cmd, runtime, "talker")
    assert [(line["text"], line["stream"]) for line in talker] == [
        ("out-1", "stdout"),
        ("err-1", "stderr"),
        ("out-2", "stdout"),
    ]
    assert {line["unit"] for line in talker} == {"talker.service"}
    assert all(abs(line["time"] - time.time()) < 600 for line in talker)
    short = run(cinit_cmd, runtime, "logs", "talker.service")
    assert short.returncode == 0, short.stderr
    first = short.stdout.splitlines()[0]
    stamp = time.strftime("%b %d", time.localtime(talker[0]["time"]))
    status = run(cinit_cmd, runtime, "status", "--json")
    main_pid = json.loads(status.stdout)["units"]["talker.service"]["main_pid"]
    assert {line["pid"] for line in talker} == {main_pid}  # the shell that wrote them
    assert first.startswith(stamp) and first.endswith(f" talker.service[{main_pid}]: out-1")
    # -n and the ring's line bound: 5000 written, the last 1000 kept
    wait_until(shows(cinit_cmd, runtime, "counter", "line 4999"), 30, "counter's last line")
    assert texts(cinit_cmd, runtime, "counter", "-n", "3") == [
        f"line {i}" for i in (4997, 4998, 4999)
    ]
    assert texts(cinit_cmd, runtime, "counter") == [f"line {i}" for i in range(4000, 5000)]
    # the byte bound: 3000 lines of 2001 bytes, 1 MiB of them kept (whole lines)
    wait_until(
        lambda: texts(cinit_cmd, runtime, "big", "-n", "1") == ["02999 " + "y" * 1994], 30, "big"
    )
    big = texts(cinit_cmd, runtime, "big")
    assert sum(len(text) + 1 for text in big) <= 1 << 20
    assert len(big) == (1 << 20) // 2001 and big[-1].startswith("02999 ")
    # several units interleaved in the order their lines came; --since
    wait_until(shows(cinit_cmd, runtime, "a", "a1"), 20, "a1")
    (flags / "go-b1").touch()
    wait_until(shows(cinit_cmd, runtime, "b", "b1"), 20, "b1")
    time.sleep(0.05)
    middle = time.time()
    time.sleep(0.05)
    (flags / "go-a2").touch()
    wait_until(shows(cinit_cmd, runtime, "a", "a2"), 20, "a2")
    (flags / "go-b2").touch()
    wait_until(shows(cinit_cmd, runtime, "b", "b2"), 20, "b2")
    both = logs(cinit_cmd, runtime, "a", "b.service")
    assert [line["text"] for line in both] == ["a1", "b1", "a2", "b2"]
    assert [line["unit"] for line in both] == ["a.service", "b.service"] * 2
    assert texts(cinit_cmd, runtime, "a", "b", "--since", f"@{middle}") == ["a2", "b2"]
    assert texts(cinit_cmd, runtime, "a", "b", "--since", str(middle), "-n", "1") == ["b2"]
    assert texts(cinit_cmd, runtime, "a", "b", "--since", "-1h") == ["a1", "b1", "a2", "b2"]
    everything = texts(cinit_cmd, runtime)  # all units: counter's and big's too
    assert everything.count("a1") == 1 and "out-1" in everything and "line 4000" in everything
    # status shows the last lines from the same ring
    status = run(cinit_cmd, runtime, "status", "talker")
    assert status.returncode == 0, status.stderr
    assert status.stdout.rstrip().splitlines()[-3:] == ["out-1", "err-1", "out-2"]
    # errors
    unknown = run(cinit_cmd, runtime, "logs", "nosuch")
    assert unknown.returncode == 4 and "nosuch" in unknown.stderr
    bad = run(cinit_cmd, runtime, "logs", "--since", "someday")
    assert bad.returncode == 2 and "not a time" in bad.stderr
    assert run_.alive()


def test_logs_follow_prints_new_lines_until_killed(
    booted: tuple[Boot, Path, Path], cinit_cmd: list[str]
) -> None:
    _run, runtime, _flags = booted
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINIT_")}
    argv = [*cinit_cmd, "logs", "-f", "-n", "2", "ticker", "--runtime-dir", str(runtime)]
    follower = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        lines = read_lines(follower, 6, 30)
    finally:
        follower.send_signal(signal.SIGTERM)
        follower.wait(10)
    numbers = [int(line.rsplit(" ", 1)[1]) for line in lines]
    assert all(" ticker.service[" in line and "]: tick " in line for line in lines), lines
    assert numbers == list(range(numbers[0], numbers[0] + 6))  # none lost, none twice


def test_journalctl_through_a_symlink(
    booted: tuple[Boot, Path, Path], cinit_cmd: list[str], tmp_path: Path
) -> None:
    _run, runtime, _flags = booted
    if len(cinit_cmd) != 1:
        pytest.skip("cinit is not one executable here (python -m cinit)")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    journalctl = bindir / "journalctl"
    journalctl.symlink_to(cinit_cmd[0])
    argv = [str(journalctl)]
    wait_until(shows(cinit_cmd, runtime, "counter", "line 4999"), 30, "counter's last line")
    cat = run(argv, runtime, "-u", "talker", "-o", "cat", "--no-pager", "-b")
    assert (cat.returncode, cat.stdout) == (0, "out-1\nerr-1\nout-2\n"), cat.stderr
    short = run(argv, runtime, "-utalker.service", "--lines=1")
    assert short.returncode == 0 and short.stdout.endswith("]: out-2\n")
    assert " talker.service[" in short.stdout
    two = run(argv, runtime, "--unit=talker", "-u", "counter", "-n", "2", "-o", "cat")
    merged = texts(cinit_cmd, runtime, "talker", "counter")  # in the order they came
    assert two.stdout.splitlines() == merged[-2:] and set(merged) >= {"out-2", "line 4999"}
    end = run(argv, runtime, "-e", "-u", "counter", "-q", "--output=cat")
    assert end.stdout.splitlines()[0] == "line 4000" and len(end.stdout.splitlines()) == 1000
    as_json = run(argv, runtime, "-u", "talker", "-o", "json", "-n", "2")
    entries = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [(e["MESSAGE"], e["_SYSTEMD_UNIT"]) for e in entries] == [
        ("err-1", "talker.service"),
        ("out-2", "talker.service"),
    ]
    assert entries[0]["CINIT_STREAM"] == "stderr" and entries[0]["__REALTIME_TIMESTAMP"].isdigit()
    assert entries[0]["_PID"].isdigit()
    none = run(argv, runtime, "-u", "nosuch")
    assert none.returncode == 0 and none.stdout == "-- No entries --\n"
    bad = run(argv, runtime, "--grep=x")
    assert bad.returncode == 1 and "unrecognized option '--grep=x'" in bad.stderr
    match = run(argv, runtime, "_PID=1")
    assert match.returncode == 1 and "not supported" in match.stderr
    # the same as `cinit journalctl`
    same = run(cinit_cmd, runtime, "journalctl", "-u", "talker", "-o", "cat")
    assert same.stdout == cat.stdout
    # follow: a few lines, then killed
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINIT_")}
    env["CINIT_RUNTIME_DIR"] = str(runtime)
    follower = subprocess.Popen(
        [*argv, "-f", "-u", "ticker", "-o", "cat"], stdout=subprocess.PIPE, env=env
    )
    try:
        lines = read_lines(follower, 13, 30)  # the last 10, then new ones
    finally:
        follower.send_signal(signal.SIGTERM)
        follower.wait(10)
    numbers = [int(line.split()[1]) for line in lines]
    assert numbers == list(range(numbers[0], numbers[0] + 13))


def test_not_running(cinit_cmd: list[str], tmp_path: Path) -> None:
    nowhere = tmp_path / "run"
    nowhere.mkdir(mode=0o700)
    done = run(cinit_cmd, nowhere, "logs")
    assert done.returncode == 3 and "cinit is not running" in done.stderr
    if len(cinit_cmd) == 1:
        journalctl = tmp_path / "journalctl"
        journalctl.symlink_to(cinit_cmd[0])
        done = run([str(journalctl)], nowhere, "-u", "web")
        assert done.returncode == 1 and "cinit is not running" in done.stderr
    done = run(cinit_cmd, nowhere, "journalctl", "-f")
    assert done.returncode == 1 and "cinit is not running" in done.stderr


def test_ring_bounds_are_configurable_and_zero_keeps_nothing(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    writer = {
        "w.service": """
            [Service]
            ExecStart=/bin/sh -c 'for i in 1 2 3 4 5 6; do echo "w $i"; done; exec sleep 120'
            """
    }
    small = boot(writer, options=["--log-lines", "4"], env={"CINIT_LOG_BYTES": "1M"})
    small.wait_out(r"^w\.service: w 6$", 20)
    runtime = tmp_path / "boot" / "run"
    wait_until(lambda: (runtime / "control").exists(), 20, "the control socket")
    assert texts(cinit_cmd, runtime, "w") == ["w 3", "w 4", "w 5", "w 6"]
    off = boot(writer, env={"CINIT_LOG_LINES": "0"}, name="off")
    off.wait_out(r"^w\.service: w 6$", 20)  # still relayed to cinit's stdout
    runtime = tmp_path / "off" / "run"
    wait_until(lambda: (runtime / "control").exists(), 20, "the control socket")
    assert texts(cinit_cmd, runtime, "w") == []
    status = run(cinit_cmd, runtime, "status", "w")
    assert status.returncode == 0 and "w 6" not in status.stdout
