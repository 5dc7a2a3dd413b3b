"""Benchmark `systemctl is-active UNIT` and `systemctl status UNIT` as whole processes (issue 16).

Run as root from the repository: `python bench/systemctl.py` (`--runs N`, default 40).
`CINIT_BIN` selects the cinit build; `DSR=path/to/systemctl3.py` the peer (default: the
`pip install --target /tmp/dsr docker-systemctl-replacement` copy when it is there).

cinit: a PID 1 of a fresh `unshare --pid --fork --mount-proc` boots ten `/bin/sleep`
services; the command is a symlink named `systemctl` to cinit's executable (bin/cinit when
built, else the venv's script), asking it over the control socket. docker-systemctl-
replacement (which reads the unit files on every call, with no daemon to ask) runs its
systemctl3.py with `--root` on a tree holding the same unit file. Each command runs `--runs`
times after 3 warm-ups, interleaved; medians. Targets (the issue's): is-active <= 40 ms and
<= 1/5 of docker-systemctl-replacement's.
`--json PATH` also writes the medians, ratios and targets for bench/report.py.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._util import (
    ROOT,
    add_json_option,
    cinit_command,
    fmt,
    median,
    print_table,
    ratio,
    result_row,
    wall_ms,
    write_json,
)
from bench.events import boot_units, start_cinit, stop_cinit, wait_for

DSR_DEFAULT = Path("/tmp/dsr/systemctl2/systemctl3.py")
UNIT = "s00.service"
TARGET_MS = 40.0
TARGET_RATIO = 0.2


def systemctl_link(scratch: Path) -> list[str] | None:
    """argv prefix of cinit called as `systemctl` (a symlink), or None when cinit is not
    one executable (CINIT_BIN with arguments, `python -m cinit`)."""
    standalone = ROOT / "bin" / "cinit"
    command = [str(standalone)] if standalone.exists() else cinit_command()
    if len(command) != 1:
        return None
    link = scratch / "bin" / "systemctl"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(command[0])
    return [str(link)]


def dsr_script() -> Path | None:
    given = os.environ.get("DSR")
    path = Path(given) if given else DSR_DEFAULT
    return path if path.is_file() else None


def interleaved(
    commands: dict[tuple[str, str], list[str]], runs: int
) -> tuple[dict[tuple[str, str], list[float]], dict[tuple[str, str], str]]:
    """Wall times (ms) of each command, `runs` rounds after 3 warm-up rounds, one run of
    each command per round (a load that changes meanwhile weighs on all of them alike);
    and each command's first output line."""
    times: dict[tuple[str, str], list[float]] = {key: [] for key in commands}
    first: dict[tuple[str, str], str] = {}
    for index in range(runs + 3):
        for key, argv in commands.items():
            took, done = wall_ms(argv)
            if index >= 3:
                times[key].append(took)
            lines = done.stdout.decode(errors="replace").splitlines()
            first[key] = lines[0] if lines else ""
    return times, first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    add_json_option(parser)
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        print("bench/systemctl: needs root and unshare (util-linux) to run cinit as PID 1")
        return 1
    # An install has its bytecode compiled (pip, the standalone build); a checkout run with
    # PYTHONDONTWRITEBYTECODE=1 would compile the verb's module on every call instead.
    import compileall

    compileall.compile_dir(str(ROOT / "cinit"), quiet=1)
    scratch = Path(tempfile.mkdtemp(prefix="cinit-bench-systemctl-"))
    results: dict[tuple[str, str], list[float]] = {}
    answers: dict[tuple[str, str], str] = {}
    notes = []
    try:
        link = systemctl_link(scratch)
        if link is None:
            print("bench/systemctl: CINIT_BIN is not one executable; no systemctl link")
            return 1
        run_dir = scratch / "cinit"
        run_dir.mkdir()
        units = boot_units(run_dir)
        proc, runtime = start_cinit(run_dir, units)
        dsr = dsr_script()
        dsr_root = scratch / "dsr-root"
        (dsr_root / "etc/systemd/system").mkdir(parents=True)
        (dsr_root / "etc/systemd/system" / UNIT).write_text(units[UNIT])
        try:
            if not wait_for(runtime / "control", 20):
                print("bench/systemctl: cinit's control socket never appeared")
                return 1
            commands: dict[tuple[str, str], list[str]] = {}
            for verb in ("is-active", "status"):
                commands[("cinit", verb)] = [*link, "--runtime-dir", str(runtime), verb, UNIT]
                if dsr is not None:
                    commands[("dsr", verb)] = [
                        sys.executable, str(dsr), f"--root={dsr_root}", verb, UNIT,
                    ]  # fmt: skip
            # Floors on this machine now: `cinit is-ready` (the same request path) and an
            # interpreter that does nothing.
            commands[("cinit", "is-ready")] = [
                *cinit_command(), "is-ready", "--runtime-dir", str(runtime), UNIT,
            ]  # fmt: skip
            commands[("python", "floor")] = [sys.executable, "-I", "-S", "-c", "pass"]
            results, answers = interleaved(commands, args.runs)
        finally:
            stop_cinit(proc)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if dsr is None:
        notes.append("docker-systemctl-replacement not found (DSR=path/to/systemctl3.py)")

    def med(who: str, verb: str) -> float | None:
        values = results.get((who, verb))
        return median(values) if values else None

    rows_out = []
    rows_json = []
    for verb in ("is-active", "status"):
        ours, theirs = med("cinit", verb), med("dsr", verb)
        share = ours / theirs if ours is not None and theirs else None
        met: bool | None = None
        target = ""
        if verb == "is-active":
            target = f"<= {TARGET_MS:g} ms and <= 1/5 of dsr"
            met = ours is not None and ours <= TARGET_MS and (share is None or share <= 0.2)
        rows_out.append(
            [
                f"systemctl {verb} {UNIT}",
                fmt(ours),
                fmt(theirs),
                ratio(ours, theirs),
                target or "-",
                "-" if met is None else ("met" if met else "not met"),
            ]
        )
        rows_json.append(
            result_row(
                f"`systemctl {verb} UNIT`, whole process",
                "ms",
                ours,
                {"docker-systemctl-replacement": theirs},
                ratio_to="docker-systemctl-replacement",
                target=target,
                met=met,
            )
        )
    floor, ready_ms = med("python", "floor"), med("cinit", "is-ready")
    rows_out.append(["cinit is-ready UNIT (same path)", fmt(ready_ms), "-", "-", "-", ""])
    rows_out.append(["python -I -S -c pass (floor)", fmt(floor), "-", "-", "-", ""])
    rows_json.append(
        result_row("  `cinit is-ready UNIT` beside it (the same request)", "ms", ready_ms)
    )
    rows_json.append(result_row("  `python -I -S -c pass` (the floor)", "ms", floor))
    print(
        f"bench/systemctl: {os.cpu_count()} CPUs; {args.runs} runs each after 3 warm-ups; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    print_table(
        "systemctl as a whole process (median ms)",
        ["command", "cinit", "dsr", "cinit/dsr", "target", ""],
        rows_out,
    )
    for (who, verb), first in sorted(answers.items()):
        print(f"  {who} {verb}: first line {first!r}")
    write_json(args.json, "systemctl", rows_json, notes=notes, params={"runs": args.runs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
