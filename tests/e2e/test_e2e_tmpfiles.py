"""tmpfiles.d at boot: cinit as PID 1 applies it before the first unit (and its sockets).

Each run is `unshare --pid --fork --mount-proc --propagation private` of a shell wrapper
that, inside the new mount namespace, puts private tmpfs mounts on /run, /tmp and on every
tmpfiles.d directory (the host's configuration is hidden, the test's own file is the only
one), binds the test's directory at /mnt/t (outside the private /tmp), and execs cinit
with units from there. Nothing reaches the host's /run, /tmp, /etc or /usr: the mounts go
with the namespace. A oneshot unit reports what it found to /mnt/t/result.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest
from e2e_support import UNSHARE, Boot, LineReader, Pid1Run, pid1_helpers, shell_script, write_units

pytestmark = [pytest.mark.timeout(90)]

CONFIG_DIRS = ("/etc/tmpfiles.d", "/usr/lib/tmpfiles.d", "/usr/local/lib/tmpfiles.d")
CONFIG = """\
d /run/h1 0755 root root -
D /run/h1/sub 0750 root root -
L /run/h1/link - - - - /target
f /run/h1/file 0644 - - - made-by-tmpfiles
D /tmp/h1-clean 0700
r! /tmp/stale.lock
f+! /run/nologin 0644 - - - System is booting up.
"""
CHECK = """\
out=/mnt/t/result
{
  [ -d /run/h1/sub ] && echo "sub $(stat -c %a /run/h1/sub)"
  [ -L /run/h1/link ] && echo "link $(readlink /run/h1/link)"
  [ -f /run/h1/file ] && echo "file $(cat /run/h1/file)"
  [ -S /run/h1/sub/h1.sock ] && echo "socket bound"
  [ -e /tmp/h1-clean/old ] || echo "clean emptied"
  [ -e /tmp/stale.lock ] || echo "lock removed"
  [ -e /run/nologin ] && echo "nologin made"
  echo done
} > $out.tmp
mv $out.tmp $out
"""
UNITS = {
    "check.service": """\
        [Unit]
        Description=Report what tmpfiles.d made before any unit started

        [Service]
        Type=oneshot
        ExecStart=/bin/sh /mnt/t/check.sh
        """,
    # Its socket lives in a directory that tmpfiles.d empties at boot (`D`): it is still
    # there only if cinit bound it after tmpfiles.d ran.
    "h1.socket": """\
        [Socket]
        ListenStream=/run/h1/sub/h1.sock
        """,
    "h1.service": """\
        [Service]
        ExecStart=/bin/sleep 60
        """,
}
APPLIED = re.compile(r"^cinit: tmpfiles: (\d+) entries applied from (\d+) files \((\d+) failed\)")


def _problem() -> str | None:
    if pid1_helpers.peer_is_tini():
        return "tmpfiles.d at boot is cinit's own; the init under test is tini"
    problem = pid1_helpers._unshare_problem()
    if problem:
        return str(problem)
    missing = [
        d for d in ("/mnt", "/etc/tmpfiles.d", "/usr/lib/tmpfiles.d") if not os.path.isdir(d)
    ]
    if missing:
        return f"needs these directories to mount private tmpfs on: {', '.join(missing)}"
    return None


def _wrapper(test_dir: Path, run_setup: str) -> list[str]:
    steps = [
        "set -e",
        "mount -t tmpfs -o mode=0755 tmpfs /mnt",
        "mkdir /mnt/t",
        f"mount --bind {shlex.quote(str(test_dir))} /mnt/t",
        *(f"if [ -d {d} ]; then mount -t tmpfs tmpfs {d}; fi" for d in CONFIG_DIRS),
        "cp /mnt/t/h1.conf /etc/tmpfiles.d/h1.conf",
        "mount -t tmpfs tmpfs /tmp",
        "mkdir /tmp/h1-clean",
        ": > /tmp/h1-clean/old",
        ": > /tmp/stale.lock",
        "mount -t tmpfs -o mode=0755 tmpfs /run",
        *([run_setup] if run_setup else []),
        'exec "$@"',
    ]
    return ["/bin/sh", "-c", "; ".join(steps), "cinit-tmpfiles-wrapper"]


@pytest.fixture
def boot_fresh(tmp_path: Path, cinit_cmd: list[str]):  # type: ignore[no-untyped-def]
    """Factory: boot UNITS as PID 1 with private /run, /tmp and tmpfiles.d; cleans up."""
    problem = _problem()
    if problem:
        pytest.skip(problem)
    boots: list[Boot] = []

    def start(*, options: tuple[str, ...] = (), config: str = CONFIG, run_setup: str = "") -> Boot:
        write_units(tmp_path / "units", UNITS)
        shell_script(tmp_path / "check.sh", CHECK)
        (tmp_path / "h1.conf").write_text(config)
        argv = [
            *UNSHARE,
            *_wrapper(tmp_path, run_setup),
            *cinit_cmd,
            "--units", "/mnt/t/units", "--drop-in", "/mnt/t/no-drop-in", *options,
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CINIT_", "NOTIFY_"))}
        env["CINIT_VERBOSE"] = "1"
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd="/", env=env,
        )  # fmt: skip
        run = Pid1Run(proc, LineReader(proc.stdout), LineReader(proc.stderr), time.monotonic())
        started = Boot(run, tmp_path / "no-stamp")
        boots.append(started)
        return started

    yield start
    for started in boots:
        started.run.terminate(5.0)


def result(tmp_path: Path, boot: Boot) -> list[str]:
    """What check.service found (waits for it, bounded)."""
    path = tmp_path / "result"
    deadline = time.monotonic() + 30
    while not path.exists():
        assert boot.alive(), f"cinit exited before check.service reported{boot.report()}"
        assert time.monotonic() < deadline, f"check.service never reported{boot.report()}"
        time.sleep(0.02)
    return path.read_text().splitlines()


MADE = [
    "sub 750",
    "link /target",
    "file made-by-tmpfiles",
    "socket bound",
    "clean emptied",
    "lock removed",
    "done",
]
NOT_MADE = ["sub 755", "socket bound", "done"]


def test_a_fresh_run_gets_tmpfiles_before_the_first_unit_and_its_socket(
    boot_fresh, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    boot = boot_fresh(config=CONFIG + "Y /bad-type\n")
    assert result(tmp_path, boot) == MADE
    line = boot.wait_err(APPLIED.pattern)
    assert line.groups() == ("6", "1", "1")  # six lines applied, the one after them is bad
    # (and /run/nologin is left out at boot: nothing would ever remove it)
    boot.wait_err(r"^cinit: tmpfiles: /etc/tmpfiles\.d/h1\.conf:8: error: unknown line type 'Y'")
    took = boot.wait_err(r"tmpfiles: took ([0-9.]+) ms")
    print(f"tmpfiles at boot took {took.group(1)} ms")  # the cost, in the test's output
    assert boot.terminate() == 0, boot.report()
    assert "Traceback" not in boot.stderr()


def test_no_tmpfiles_turns_it_off(boot_fresh, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Nothing of tmpfiles.d: only the directory the socket binding makes itself (0755).
    boot = boot_fresh(options=("--no-tmpfiles",))
    assert result(tmp_path, boot) == NOT_MADE
    assert "tmpfiles:" not in boot.stderr()
    boot.terminate()


@pytest.mark.parametrize("forced", [False, True], ids=["left-alone", "forced"])
def test_a_run_with_content_is_left_alone_unless_forced(
    boot_fresh, tmp_path: Path, forced: bool
) -> None:  # type: ignore[no-untyped-def]
    # /run with something in it is not what a runtime gives a fresh container: it may be
    # a host's, so cinit does not apply tmpfiles.d there unless told to.
    options = ("--tmpfiles",) if forced else ()
    boot = boot_fresh(options=options, run_setup="mkdir /run/lock /run/user")
    if forced:
        assert result(tmp_path, boot) == MADE
        assert boot.wait_err(APPLIED.pattern).groups() == ("6", "1", "0")
    else:
        assert result(tmp_path, boot) == NOT_MADE
        assert "tmpfiles:" not in boot.stderr()
    boot.terminate()
