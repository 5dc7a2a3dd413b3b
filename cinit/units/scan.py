"""Directory scanning: which files of the core and drop-in directories are units, which
drop-ins override a core unit, and reading one unit file safely (no FIFO or device opened).

Touches the file system only to list directories and read unit files; no parsing.
"""

from __future__ import annotations

import os

from cinit.units._files import NotRegularFileError, read_regular_file
from cinit.units.diagnostics import Diagnostic, Severity
from cinit.units.frozen import Frozen
from cinit.units.model import UnitSource
from cinit.units.syntax import decode_unit_bytes


class Override(Frozen):
    """A drop-in that replaced a core unit of the same filename."""

    name: str
    core_path: str
    drop_in_path: str

    def log_line(self, prog: str = "cinit") -> str:
        """The line logged at startup, in container-init's format."""
        return (
            f"{prog}: drop-in override: {self.name} replaces "
            f"{self.core_path} with {self.drop_in_path}"
        )

    def to_event(self) -> dict[str, str]:
        """The `unit_overridden` trace event."""
        return {
            "phase": "unit_overridden",
            "unit": self.name,
            "core_path": self.core_path,
            "drop_in_path": self.drop_in_path,
        }


def scan_dir(
    directory: str, diags: list[Diagnostic], ignored: list[str], regular: set[str]
) -> list[tuple[str, str]]:
    """(name, path) of the unit files in `directory`, sorted; other entries are reported.

    Adds to `regular` the paths the listing itself shows to be regular files (d_type: no
    stat call); any other entry is checked before it is opened (see read_unit_file).
    """
    try:
        with os.scandir(directory) as listing:
            entries = sorted((entry.name, _listed_regular(entry)) for entry in listing)
    except FileNotFoundError:
        return []
    except OSError as exc:
        diags.append(
            Diagnostic(Severity.ERROR, f"cannot read directory: {exc.strerror}", directory)
        )
        return []
    found: list[tuple[str, str]] = []
    # os.path.join per entry, done once: an entry from a listing never holds a "/".
    prefix = os.path.join(directory, "")
    for entry, is_regular in entries:
        path = prefix + entry
        if not entry.endswith((".service", ".socket", ".target")):
            ignored.append(path)
            message = "ignored: not a .service, .socket or .target unit file"
            diags.append(Diagnostic(Severity.WARNING, message, path))
            continue
        if is_regular:
            regular.add(path)
        found.append((entry, path))
    return found


def _listed_regular(entry: os.DirEntry[str]) -> bool:
    """Whether the listing shows a regular file (not through a symlink); False if unsure."""
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:  # without d_type it stats, and the entry may be gone
        return False


# Read at most this much of a unit file (decode_unit_bytes refuses anything over 4 MiB).
_READ_LIMIT = 8 * 1024 * 1024


def read_unit_file(path: str, known_regular: bool) -> tuple[str | None, list[Diagnostic]]:
    try:
        data = read_regular_file(path, _READ_LIMIT, known_regular=known_regular)
    except NotRegularFileError as exc:
        message = f"is {exc.kind}, not a unit file (a unit file is a regular file)"
        return None, [Diagnostic(Severity.ERROR, message, path)]
    except OSError as exc:
        return None, [Diagnostic(Severity.ERROR, f"cannot read unit file: {exc.strerror}", path)]
    return decode_unit_bytes(data, path)


def choose_files(
    units_dir: str, drop_in_dir: str, diags: list[Diagnostic], ignored: list[str]
) -> tuple[list[tuple[str, str, UnitSource]], tuple[Override, ...], set[str]]:
    """The unit files to load as (name, path, source), in core-then-drop-in name order; the
    drop-ins that replace a core unit of the same name; and the paths the listings show to
    be regular files. Findings about the directories go to `diags`, skipped paths to `ignored`.
    """
    for directory in (units_dir, drop_in_dir):
        if os.path.exists(directory) and not os.path.isdir(directory):
            diags.append(Diagnostic(Severity.ERROR, "not a directory", directory))
    regular: set[str] = set()
    core = scan_dir(units_dir, diags, ignored, regular) if os.path.isdir(units_dir) else []
    drop_ins = scan_dir(drop_in_dir, diags, ignored, regular) if os.path.isdir(drop_in_dir) else []
    core_paths = dict(core)
    overrides = tuple(
        Override(name, core_paths[name], path) for name, path in drop_ins if name in core_paths
    )
    replaced = {o.name for o in overrides}
    chosen = [(n, p, UnitSource.CORE) for n, p in core if n not in replaced]
    chosen += [(n, p, UnitSource.DROP_IN) for n, p in drop_ins]
    return chosen, overrides, regular
