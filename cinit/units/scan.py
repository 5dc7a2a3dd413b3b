"""Directory scanning: which files of the core and drop-in directories are units, which
drop-ins override a core unit, and reading one unit file safely (no FIFO or device opened).

Touches the file system only to list directories and read unit files; no parsing.
"""

from __future__ import annotations

import os
from collections.abc import Collection

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


# A directory of snippets for one unit (`web.service.d/`), for a template and all its
# instances (`getty@.service.d/`), for a dash prefix (`foo-.service.d/`) or for every unit of
# a type (`service.d/`): systemd.unit(5), "drop-in" directories.
SNIPPET_DIR_SUFFIXES = (".service.d", ".socket.d", ".target.d", ".timer.d")
TYPE_SNIPPET_DIRS = ("service.d", "socket.d", "target.d", "timer.d")
UNIT_SUFFIXES = (".service", ".socket", ".target", ".timer")
SNIPPET_SUFFIX = ".conf"
_DEV_NULL = "/dev/null"


class Entry:
    """One unit-directory entry that names a unit: a file, a link naming another unit
    (`target`: an alias, or an instance of a template), or a mask (a link to /dev/null)."""

    __slots__ = ("kind", "name", "path", "target")

    FILE, LINK, MASK = "file", "link", "mask"

    def __init__(self, kind: str, name: str, path: str, target: str = "") -> None:
        self.kind = kind
        self.name = name
        self.path = path
        self.target = target


class DirListing:
    """What one unit directory holds: its unit entries (in name order) and its snippet
    directories, each as (file name, path) of its `*.conf` files in name order."""

    __slots__ = ("directory", "entries", "snippets")

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.entries: list[Entry] = []
        self.snippets: dict[str, list[tuple[str, str]]] = {}


def scan_dir(
    directory: str, diags: list[Diagnostic], ignored: list[str], regular: set[str]
) -> list[tuple[str, str]]:
    """(name, path) of the unit files in `directory`, sorted; other entries are reported.

    (The files only: `list_dir` also tells links, masks and snippet directories apart.)
    """
    listing = list_dir(directory, diags, ignored, regular)
    return [(entry.name, entry.path) for entry in listing.entries]


def list_dir(
    directory: str,
    diags: list[Diagnostic],
    ignored: list[str],
    regular: set[str],
    quiet: bool = False,
) -> DirListing:
    """The unit entries and snippet directories of `directory`; other entries are reported.

    Adds to `regular` the paths the listing itself shows to be regular files (d_type: no
    stat call); any other entry is checked before it is opened (see read_unit_file).
    A symbolic link named like a unit is read (not followed) to tell an alias
    (`syslog.service -> rsyslog.service`), an instance (`x@a.service -> x@.service`) and a
    mask (`-> /dev/null`) from a unit file that lives elsewhere under its own name.
    `quiet` (one of systemd's directories): entries that are not units pass silently.
    """
    listing = DirListing(directory)
    try:
        with os.scandir(directory) as scanned:
            entries = sorted((entry.name, _listed_kind(entry)) for entry in scanned)
    except FileNotFoundError:
        return listing
    except OSError as exc:
        diags.append(
            Diagnostic(Severity.ERROR, f"cannot read directory: {exc.strerror}", directory)
        )
        return listing
    # os.path.join per entry, done once: an entry from a listing never holds a "/".
    prefix = os.path.join(directory, "")
    for entry, kind in entries:
        path = prefix + entry
        snippet_dir = entry.endswith(SNIPPET_DIR_SUFFIXES) or entry in TYPE_SNIPPET_DIRS
        if snippet_dir and (kind == "dir" or (kind == "link" and os.path.isdir(path))):
            listing.snippets[entry[:-2]] = _snippet_files(path, diags, ignored)
            continue
        if not entry.endswith(UNIT_SUFFIXES):
            if quiet:  # systemd's directories: .wants/, .timer, .mount... (systemd_layout's)
                continue
            ignored.append(path)
            message = "ignored: not a .service, .socket, .target or .timer unit file"
            diags.append(Diagnostic(Severity.WARNING, message, path))
            continue
        if kind == "file":
            regular.add(path)
        elif kind == "link":
            listing.entries.append(_link_entry(entry, path))
            continue
        listing.entries.append(Entry(Entry.FILE, entry, path))
    return listing


def _link_entry(name: str, path: str) -> Entry:
    """A symbolic link named like a unit: a mask, a link to another unit's name, or a file."""
    try:
        target = os.readlink(path)
    except OSError:
        return Entry(Entry.FILE, name, path)  # gone or unreadable: reading the file says why
    if target == _DEV_NULL or os.path.realpath(path) == _DEV_NULL:
        return Entry(Entry.MASK, name, path)
    other = target.rstrip("/").rpartition("/")[2]
    if other != name and other.endswith(name[name.rindex(".") :]) and "/" not in other:
        return Entry(Entry.LINK, name, path, other)
    return Entry(Entry.FILE, name, path)


def _snippet_files(
    directory: str, diags: list[Diagnostic], ignored: list[str]
) -> list[tuple[str, str]]:
    """(file name, path) of the `*.conf` files of a snippet directory, in name order."""
    try:
        with os.scandir(directory) as scanned:
            names = sorted(entry.name for entry in scanned)
    except OSError as exc:
        diags.append(
            Diagnostic(Severity.ERROR, f"cannot read directory: {exc.strerror}", directory)
        )
        return []
    found: list[tuple[str, str]] = []
    for name in names:
        path = os.path.join(directory, name)
        if name.endswith(SNIPPET_SUFFIX):
            found.append((name, path))
        else:  # systemd passes these by silently; said here, but never a failure
            ignored.append(path)
            diags.append(Diagnostic(Severity.HINT, "ignored: not a .conf snippet", path))
    return found


def _listed_kind(entry: os.DirEntry[str]) -> str:
    """ "file", "link", "dir" or "other", as the listing shows it (no stat when d_type tells)."""
    try:
        if entry.is_symlink():
            return "link"
        if entry.is_file(follow_symlinks=False):
            return "file"
        if entry.is_dir(follow_symlinks=False):
            return "dir"
    except OSError:  # without d_type it stats, and the entry may be gone
        pass
    return "other"


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


class Scan:
    """The unit directories read together, highest precedence first (systemd's rule: the
    first directory with an entry for a name decides what that name is).

    `chosen`: the unit files to load as (name, path, source), lowest-precedence directory
    first, each in name order (templates included); `links`: names whose deciding entry is
    a link to another unit's name, as name -> (target name, link path) (`dangling`: the
    paths of those whose target does not exist); `masked`: names
    masked by a link to /dev/null, as name -> link path; `overrides`: the files that
    replaced a file of the same name in a lower directory; `regular`: the paths the
    listings show to be regular files; `snippets`: each directory's snippet directories.
    """

    __slots__ = ("chosen", "dangling", "links", "masked", "overrides", "regular", "snippets")

    def __init__(self) -> None:
        self.chosen: list[tuple[str, str, UnitSource]] = []
        self.links: dict[str, tuple[str, str]] = {}
        self.dangling: set[str] = set()  # paths of links whose target does not exist
        self.masked: dict[str, str] = {}
        self.overrides: tuple[Override, ...] = ()
        self.regular: set[str] = set()
        self.snippets: list[dict[str, list[tuple[str, str]]]] = []


def scan_dirs(
    directories: list[str],
    diags: list[Diagnostic],
    ignored: list[str],
    systemd_dirs: Collection[str] = (),
) -> Scan:
    """Read the unit directories (highest precedence first) into a `Scan`.

    The last directory's units are `UnitSource.CORE`, the others' `UnitSource.DROP_IN`
    (cinit's two: `[drop_in_dir, units_dir]`); those of `systemd_dirs` (systemd's search
    path, after cinit's two under `cinit --systemd`) are `UnitSource.SYSTEMD`. Findings
    about the directories go to `diags`, skipped paths to `ignored`.
    """
    scan = Scan()
    seen_dirs: set[str] = set()
    listings: list[DirListing] = []
    for directory in directories:
        if directory in seen_dirs:
            continue
        seen_dirs.add(directory)
        if os.path.exists(directory) and not os.path.isdir(directory):
            diags.append(Diagnostic(Severity.ERROR, "not a directory", directory))
            continue
        quiet = directory in systemd_dirs
        listing = list_dir(directory, diags, ignored, scan.regular, quiet)
        listings.append(listing)
        scan.snippets.append(listing.snippets)
    deciding: dict[str, Entry] = {}
    shadowed: dict[str, Entry] = {}  # the first file a deciding file replaced
    for listing in listings:
        for entry in listing.entries:
            if entry.name not in deciding:
                deciding[entry.name] = entry
            elif entry.name not in shadowed:
                shadowed[entry.name] = entry
    overrides: list[Override] = []
    ours = [i for i, listing in enumerate(listings) if listing.directory not in systemd_dirs]
    last = ours[-1] if ours else -1
    for index in range(len(listings) - 1, -1, -1):
        if listings[index].directory in systemd_dirs:
            source = UnitSource.SYSTEMD
        else:
            source = UnitSource.CORE if index == last else UnitSource.DROP_IN
        for entry in listings[index].entries:
            if deciding[entry.name] is not entry:
                continue
            if entry.kind == Entry.MASK:
                scan.masked[entry.name] = entry.path
            elif entry.kind == Entry.LINK:
                scan.links[entry.name] = (entry.target, entry.path)
                if not os.path.exists(entry.path):
                    scan.dangling.add(entry.path)
            else:
                scan.chosen.append((entry.name, entry.path, source))
                lower = shadowed.get(entry.name)
                if lower is not None and lower.kind != Entry.MASK:
                    overrides.append(Override(entry.name, lower.path, entry.path))
    overrides.sort(key=lambda o: o.name)
    scan.overrides = tuple(overrides)
    return scan
