"""Benchmark the window after exec in which a SIGTERM sent to cinit as PID 1 is lost.

Run as root from the repository: `python bench/signal_window.py`.

The kernel discards a signal sent to a PID namespace's init while that signal is neither
handled nor blocked (default action). Until cinit has blocked its signals, a SIGTERM (from
`podman stop`, say) sent right after the exec of cinit is lost; a blocked one stays pending
and is taken later. For each delay d (0, 0.05, 0.1, 0.2, 0.5, then 1..--max-ms ms), --runs
times: exec cinit as PID 1 of a fresh `unshare --pid --fork --mount-proc` (`cinit --
/bin/sleep 30`), send SIGTERM d ms after the exec (from the host: the moment the exec closed
a close-on-exec FIFO end), and count the runs in which cinit exits within --grace seconds
(honoured) versus keeps running (lost; it is then SIGKILLed).

Builds compared in one run, interleaved: the pip install's script (`.venv/bin/cinit`), the
standalone bin/cinit (whose launcher blocks the signals before the PyInstaller bootloader
runs) and, when present, the bundle's bootloader run directly (bin/cinit.dist/libexec/cinit:
the standalone build as it was before the launcher). `--also NAME=COMMAND` adds a build.
Numbers only: no assertion.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._util import (
    ROOT,
    UNSHARE,
    add_json_option,
    children,
    print_table,
    result_row,
    write_json,
)

RUNS = 5
MAX_MS = 20
GRACE_S = 1.0
SUB_MS = (0.05, 0.1, 0.2, 0.5)  # the launcher's window is well under a millisecond

# PID 1 of the new namespace: tell the host it is there (one byte), keep the FIFO's write end
# open close-on-exec, and exec cinit: the host sees the FIFO hang up at that very exec.
EXEC_NOTIFIER = (
    "import os, sys\n"
    "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CLOEXEC)\n"
    "os.write(fd, b'.')\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def find_pid1(unshare_pid: int, deadline: float) -> int | None:
    """Host PID of unshare's child (the namespace's PID 1)."""
    while time.monotonic() < deadline:
        found = children(unshare_pid)
        if found:
            return found[0]
        time.sleep(0.0005)
    return None


def one_run(cinit: list[str], delay_ms: float, grace: float, workdir: Path) -> bool | None:
    """SIGTERM `delay_ms` after the exec of `cinit` as PID 1: honoured (True), lost (False),
    or None when the run could not be set up."""
    fifo = workdir / "exec.fifo"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    notifier = [sys.executable, "-c", EXEC_NOTIFIER, str(fifo)]
    with open(workdir / "stderr", "wb") as stderr:
        proc = subprocess.Popen(
            [*UNSHARE, *notifier, *cinit, "--", "/bin/sleep", "30"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    pid1 = None
    try:
        poller = select.poll()
        poller.register(reader, select.POLLIN | select.POLLHUP)
        deadline = time.monotonic() + 10
        hello = False
        while time.monotonic() < deadline:
            events = poller.poll(100)
            if not events:
                continue
            if not hello and os.read(reader, 1) == b".":
                hello = True
                pid1 = find_pid1(proc.pid, deadline)
                continue
            if hello and events[0][1] & select.POLLHUP:
                break
        else:
            return None
        execed = time.perf_counter()
        if pid1 is None:
            return None
        target = execed + delay_ms / 1000
        while (left := target - time.perf_counter()) > 0.0003:
            time.sleep(left - 0.0002)
        while time.perf_counter() < target:  # the last fraction of a ms: spin
            pass
        try:
            os.kill(pid1, signal.SIGTERM)
        except ProcessLookupError:  # cinit did not start: its stderr says why
            return None
        try:
            proc.wait(timeout=grace)
            return True
        except subprocess.TimeoutExpired:
            return False
    finally:
        os.close(reader)
        if proc.poll() is None:
            if pid1 is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid1, signal.SIGKILL)  # the namespace goes with its init
            proc.kill()
            proc.wait(timeout=10)


def default_builds() -> dict[str, list[str]]:
    """The builds present here: pip script, standalone (launcher), its bootloader alone."""
    builds: dict[str, list[str]] = {}
    override = os.environ.get("CINIT_BIN")
    if override:
        builds["CINIT_BIN"] = shlex.split(override)
    script = Path(sys.executable).parent / "cinit"
    if script.exists():
        builds["pip script"] = [str(script)]
    standalone = ROOT / "bin" / "cinit"
    if standalone.exists():
        builds["standalone"] = [str(standalone)]
        bootloader = standalone.resolve().parent / "libexec" / "cinit"
        if bootloader.exists():
            builds["bootloader alone"] = [str(bootloader)]
    return builds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS, help="SIGTERMs per delay and build")
    parser.add_argument("--max-ms", type=int, default=MAX_MS, help="delays 0..MAX_MS ms")
    parser.add_argument("--grace", type=float, default=GRACE_S, help="seconds to exit")
    parser.add_argument(
        "--also", action="append", default=[], metavar="NAME=COMMAND", help="another build"
    )
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="builds")
    add_json_option(parser)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/signal_window: run as root (unshare --pid)", file=sys.stderr)
        return 2
    builds = default_builds()
    for extra in args.also:
        name, _, command = extra.partition("=")
        builds[name] = shlex.split(command)
    if args.only:
        builds = {name: argv for name, argv in builds.items() if name in args.only}
    delays = [0.0, *SUB_MS, *(float(d) for d in range(1, args.max_ms + 1))]
    honoured = {name: {d: 0 for d in delays} for name in builds}
    failed = {name: 0 for name in builds}
    with tempfile.TemporaryDirectory(prefix="cinit-bench-sigwin-") as tmp:
        for _ in range(args.runs):
            for delay in delays:
                for name, argv in builds.items():  # interleaved: load hits every build alike
                    outcome = one_run(argv, delay, args.grace, Path(tmp))
                    if outcome is None:
                        failed[name] += 1
                        error = (Path(tmp) / "stderr").read_text(errors="replace")
                        print(f"{name}, {delay:g} ms: not set up: {error[-500:]}", file=sys.stderr)
                    elif outcome:
                        honoured[name][delay] += 1
    names = list(builds)
    print_table(
        f"SIGTERM d ms after exec of cinit as PID 1: honoured / {args.runs} runs",
        ["delay ms", *names],
        [[f"{d:g}", *(f"{honoured[n][d]}/{args.runs}" for n in names)] for d in delays],
    )
    rows = []
    for name in names:
        lost_at = [d for d in delays if honoured[name][d] < args.runs]
        total = sum(honoured[name].values())
        print(
            f"{name}: {total}/{args.runs * len(delays)} honoured; "
            + (f"losses up to {max(lost_at):g} ms" if lost_at else "none lost")
            + (f"; {failed[name]} runs not set up" if failed[name] else "")
        )
        share = 100.0 * total / (args.runs * len(delays))
        latest = max(lost_at) if lost_at else None
        rows.append(result_row(f"{name}: SIGTERMs honoured, 0..{args.max_ms} ms after exec",
                               "%", share, digits=0))  # fmt: skip
        rows.append(result_row(f"  {name}: latest delay with a lost SIGTERM", "ms", latest,
                               digits=2))  # fmt: skip
    notes = [f"{args.runs} runs per delay and build; lost = still running {args.grace} s later."]
    write_json(args.json, "signal_window", rows, notes=notes, params=vars(args) | {"json": None})
    return 0


if __name__ == "__main__":
    sys.exit(main())
