"""The standalone cinit's footprint: its size on disk and as a gzip'd tar (issue 18).

Run from the repository after `make standalone`: `python bench/footprint.py` (`--bin PATH`
picks another build; `--dist DIR` also sizes the release files of `make dist`).

Measures, for the bundle bin/cinit.dist (what /opt/cinit holds):
  (a) size on disk: the sum of its files' sizes (what a tar or an image layer holds; `du`
      in 4 KiB blocks is shown beside it, it rounds each small file up); target <= 16 MiB;
  (b) the gzip'd tar of the installed layout (opt/cinit/... and the usr/local/bin links,
      as `make dist` packs it): the size of the layer a user pulls; target <= 8 MiB;
  (c) its largest parts, to see where the next MiB would come from.
No timing: sizes are exact, the machine's load does not move them.
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
import tarfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._util import ROOT, add_json_option, print_table, result_row, write_json

MIB = 1024 * 1024
DISK_TARGET_MIB = 16.0
GZIP_TARGET_MIB = 8.0
LINKS = ("cinit", "systemctl", "journalctl")  # usr/local/bin/NAME -> /opt/cinit/cinit


def bundle_of(executable: Path) -> Path:
    """The bundle directory of a standalone build (bin/cinit -> bin/cinit.dist/cinit)."""
    bundle = executable.resolve().parent
    if not (bundle / "libexec").is_dir():
        raise SystemExit(f"bench/footprint: {executable} is not a standalone build "
                         "(no libexec/ beside it): run `make standalone`")  # fmt: skip
    return bundle


def files(bundle: Path) -> list[Path]:
    return [p for p in sorted(bundle.rglob("*")) if p.is_file() and not p.is_symlink()]


def disk_bytes(bundle: Path) -> tuple[int, int]:
    """(sum of file sizes, bytes in allocated blocks as du counts them) of the bundle."""
    paths = files(bundle)
    return sum(p.stat().st_size for p in paths), sum(p.stat().st_blocks * 512 for p in paths)


def gzip_tar_bytes(bundle: Path) -> int:
    """Size of the gzip'd tar of the installed layout (packaging/make-dist.sh packs the
    same tree; gzip level 9, as it uses)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.add(bundle, arcname="opt/cinit")
        for name in LINKS:
            link = tarfile.TarInfo(f"usr/local/bin/{name}")
            link.type = tarfile.SYMTYPE
            link.linkname = "/opt/cinit/cinit"
            tar.addfile(link)
    return len(gzip.compress(raw.getvalue(), compresslevel=9, mtime=0))


def largest_parts(bundle: Path, count: int) -> list[tuple[str, int]]:
    """The `count` largest entries one level under libexec/_internal (packages summed)."""
    internal = bundle / "libexec" / "_internal"
    sizes: dict[str, int] = {}
    for path in files(bundle):
        try:
            part = path.relative_to(internal).parts[0]
        except ValueError:
            part = str(path.relative_to(bundle))
        sizes[part] = sizes.get(part, 0) + path.stat().st_size
    return sorted(sizes.items(), key=lambda item: -item[1])[:count]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", type=Path, default=ROOT / "bin" / "cinit", help="standalone")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist",
                        help="release files to size too (make dist), when present")  # fmt: skip
    parser.add_argument("--parts", type=int, default=12, help="largest parts to list")
    add_json_option(parser)
    args = parser.parse_args()
    if not args.bin.exists():
        print(f"bench/footprint: {args.bin} not built (run `make standalone`)")
        return 1
    bundle = bundle_of(args.bin)
    apparent, blocks = disk_bytes(bundle)
    packed = gzip_tar_bytes(bundle)
    disk_mib, blocks_mib, gzip_mib = apparent / MIB, blocks / MIB, packed / MIB
    disk_met, gzip_met = disk_mib <= DISK_TARGET_MIB, gzip_mib <= GZIP_TARGET_MIB

    def met(ok: bool) -> str:
        return "met" if ok else "not met"

    shown = bundle.relative_to(ROOT) if bundle.is_relative_to(ROOT) else bundle
    print_table(
        f"Standalone footprint ({shown}, {len(files(bundle))} files)",
        ["measure", "size", "target", ""],
        [
            ["on disk (sum of file sizes)", f"{disk_mib:.2f} MiB",
             f"<= {DISK_TARGET_MIB:g} MiB", met(disk_met)],
            ["on disk (du, 4 KiB blocks)", f"{blocks_mib:.2f} MiB", "", ""],
            ["gzip'd tar (opt/cinit + links)", f"{gzip_mib:.2f} MiB",
             f"<= {GZIP_TARGET_MIB:g} MiB", met(gzip_met)],
        ],
    )  # fmt: skip
    print_table(
        "Largest parts (libexec/_internal/...)",
        ["part", "size"],
        [[name, f"{size / 1024:.0f} KiB"] for name, size in largest_parts(bundle, args.parts)],
    )
    release = sorted(p for p in args.dist.glob("cinit*") if p.is_file()) \
        if args.dist.is_dir() else []  # fmt: skip
    if release:
        print_table("Release files (make dist)", ["file", "size"],
                    [[p.name, f"{p.stat().st_size / MIB:.2f} MiB"] for p in release])  # fmt: skip
    write_json(
        args.json,
        "footprint",
        [
            result_row("standalone on disk", "MiB", disk_mib,
                       target=f"<= {DISK_TARGET_MIB:g} MiB", met=disk_met, digits=2),
            result_row("  du (4 KiB blocks)", "MiB", blocks_mib, digits=2),
            result_row("standalone gzip'd tar", "MiB", gzip_mib,
                       target=f"<= {GZIP_TARGET_MIB:g} MiB", met=gzip_met, digits=2),
        ],
        notes=["largest parts: " + ", ".join(
            f"{name} {size / 1024:.0f} KiB" for name, size in largest_parts(bundle, 6))],
        params={"bin": str(args.bin), "files": len(files(bundle))},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
