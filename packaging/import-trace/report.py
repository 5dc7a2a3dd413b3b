"""Merge the import traces (packaging/import-trace/sitecustomize.py) and hold them against a
standalone build: what the bundle ships that no cinit process imported (candidates for
cinit.spec's LEFT_OUT) and what a process imported that the bundle lacks (a module left out
by mistake: that command fails in the standalone build, unless the import was optional).

    python packaging/import-trace/report.py TRACE_DIR [BUNDLE]     (`make trace-imports`)
"""

from __future__ import annotations

import sys
from pathlib import Path

PYTHON_SUFFIXES = (".pyc", ".py")


def traced(directory: Path) -> set[str]:
    """Every module name some traced process asked for."""
    names: set[str] = set()
    for trace in directory.glob("*.txt"):
        names.update(line.strip() for line in trace.read_text().splitlines() if line.strip())
    return names


def bundled(bundle: Path) -> dict[str, int]:
    """Module name -> bytes, for every Python module and extension in the bundle."""
    internal = bundle / "libexec" / "_internal"
    found: dict[str, int] = {}
    for path in internal.rglob("*"):
        if not path.is_file():
            continue
        relative = path.relative_to(internal)
        parts = list(relative.parts)
        if parts[0] == "python3.11" or parts[0].startswith("python3."):
            parts = parts[2:]  # python3.X/lib-dynload/NAME.cpython-....so
        if not parts:
            continue
        name = parts[-1]
        if name.endswith(PYTHON_SUFFIXES):
            parts[-1] = name.rsplit(".", 1)[0]
        elif ".cpython-" in name or name.endswith(".abi3.so"):
            parts[-1] = name.split(".", 1)[0]
        else:
            continue
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = found.get(".".join(parts), 0) + path.stat().st_size
    return found


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print(__doc__)
        return 2
    names = traced(Path(argv[0]))
    bundle = Path(argv[1] if len(argv) == 2 else "bin/cinit.dist")
    shipped = bundled(bundle)
    tops = sorted({name.split(".")[0] for name in names})
    print(f"{len(names)} modules imported by cinit processes; top level: {' '.join(tops)}")
    unused = {name: size for name, size in shipped.items() if name not in names}
    print(f"\nIn the bundle, never imported ({len(unused)} modules, "
          f"{sum(unused.values()) / 1024:.0f} KiB), largest first:")  # fmt: skip
    for name, size in sorted(unused.items(), key=lambda item: -item[1])[:40]:
        print(f"  {size / 1024:8.1f} KiB  {name}")
    missing = sorted(
        name for name in names
        if name not in shipped and name.split(".")[0] in {n.split(".")[0] for n in shipped}
    )  # fmt: skip
    print(f"\nImported but not in the bundle ({len(missing)}; built-in, frozen or optional "
          "imports are fine, anything else fails in the standalone build):")  # fmt: skip
    for name in missing:
        print(f"  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
