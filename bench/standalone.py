"""Benchmark the standalone cinit (bin/cinit) beside the pip-installed one, in one run.

Run as root from the repository after `make standalone`: `python bench/standalone.py`.
`--bin PATH` picks the standalone build (default bin/cinit); `--also NAME=PATH` adds another
build to the table (e.g. a PyInstaller onefile build measured when choosing the tool).

Measures, each build interleaved with the others so noise hits all alike:
  (a) exec of cinit as PID 1 (`unshare --pid --fork --mount-proc`) -> exec of its first
      service (`cinit -- /bin/date`), median of --runs; target <= 1.5x the pip install;
  (b) `cinit validate --example --strict-units` wall time (the whole process);
  (c) the size on disk of each build (the standalone target: <= 16 MiB).
Numbers only: no assertion, no exit status from a missed target.
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
    fmt,
    median,
    print_table,
    ratio,
    result_row,
    wall_ms,
    write_json,
)
from bench.pid1 import exec_to_child_ms

RUNS = 25
MIB = 1024 * 1024


def pip_cinit() -> Path:
    """The console script of the pip (editable) install in this interpreter's venv."""
    return Path(sys.executable).parent / "cinit"


def size_bytes(executable: Path) -> int:
    """Bytes on disk of a build: a onedir bundle counts its whole directory."""
    real = executable.resolve()
    # PyInstaller onedir: the executable beside its libraries (_internal/), or the launcher
    # beside the bundle (libexec/: packaging/build-standalone.sh)
    if (real.parent / "_internal").is_dir() or (real.parent / "libexec").is_dir():
        return sum(
            p.lstat().st_size for p in real.parent.rglob("*") if p.is_file() and not p.is_symlink()
        )
    return real.stat().st_size


def validate_ms(cinit: list[str]) -> float | None:
    elapsed, result = wall_ms([*cinit, "validate", "--example", "--strict-units"])
    return elapsed if result.returncode == 0 else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", type=Path, default=ROOT / "bin" / "cinit", help="standalone")
    parser.add_argument("--also", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--runs", type=int, default=RUNS)
    add_json_option(parser)
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        print("bench/standalone: needs root and unshare (util-linux) to run cinit as PID 1")
        return 1
    builds: dict[str, Path] = {"pip": pip_cinit(), "standalone": args.bin}
    for extra in args.also:
        name, _, path = extra.partition("=")
        builds[name] = Path(path)
    missing = [f"{name} ({path})" for name, path in builds.items() if not path.exists()]
    if missing:
        print(f"bench/standalone: not built: {', '.join(missing)} (run `make standalone`)")
        return 1

    scratch = Path(tempfile.mkdtemp(prefix="cinit-bench-standalone-"))
    empty = ["--units", str(scratch / "no-units"), "--drop-in", str(scratch / "no-drop-in")]
    startup: dict[str, list[float]] = {name: [] for name in builds}
    validate: dict[str, list[float]] = {name: [] for name in builds}
    for path in builds.values():  # warm the page cache once
        exec_to_child_ms([str(path), *empty])
        validate_ms([str(path)])
    for _ in range(args.runs):
        for name, path in builds.items():
            sample = exec_to_child_ms([str(path), *empty])
            if sample is not None:
                startup[name].append(sample)
            elapsed = validate_ms([str(path)])
            if elapsed is not None:
                validate[name].append(elapsed)
    shutil.rmtree(scratch, ignore_errors=True)

    def med(samples: list[float]) -> float | None:
        return median(samples) if samples else None

    pip_start, pip_validate = med(startup["pip"]), med(validate["pip"])
    rows = []
    for name, path in builds.items():
        mib = size_bytes(path) / MIB
        rows.append([
            name, str(path), fmt(med(startup[name]), " ms", 2),
            ratio(med(startup[name]), pip_start), fmt(med(validate[name]), " ms"),
            ratio(med(validate[name]), pip_validate),
            "(needs the venv)" if name == "pip" else f"{mib:.1f} MiB",
            f"{len(startup[name])}/{args.runs}",
        ])  # fmt: skip
    print_table(
        f"cinit builds side by side (medians of {args.runs} interleaved runs; "
        "targets: standalone <= 1.5x pip start, <= 16 MiB)",
        ["build", "path", "exec->first service", "vs pip", "validate --example", "vs pip",
         "size", "ok runs"],
        rows,
    )  # fmt: skip
    ours = med(startup["standalone"])
    standalone_mib = size_bytes(args.bin) / MIB
    write_json(
        args.json,
        "standalone",
        [
            result_row(
                "exec -> first service exec, PID 1",
                "ms",
                ours,
                {"pip": pip_start},
                ratio_to="pip",
                target="<= 1.5x pip",
                met=None if ours is None or not pip_start else ours <= 1.5 * pip_start,
                digits=2,
            ),
            result_row(
                "validate --example --strict-units",
                "ms",
                med(validate["standalone"]),
                {"pip": pip_validate},
                ratio_to="pip",
            ),
            result_row(
                "standalone size",
                "MiB",
                standalone_mib,
                target="<= 16 MiB",
                met=standalone_mib <= 16,
            ),
        ],
        params={"runs": args.runs, "bin": str(args.bin)},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
