"""`cinit --systemd`: the unit files of an image laid out for systemd, and its boot set.

systemd's system unit search path, highest precedence first (systemd.unit(5)):
/etc/systemd/system, /run/systemd/system, /lib/systemd/system, /usr/lib/systemd/system.
A file name found in a higher directory hides the same name below. A unit file that is
a symlink to /dev/null, or empty, is masked: it is not loaded, whatever lies below. On a
merged-/usr image /lib is /usr/lib: directories are taken once (by real path).

The boot set is what default.target pulls in (default.target is a symlink in one of those
directories, else multi-user.target), plus sockets.target and timers.target: transitively,
through Wants=/Requires= and the `NAME.wants/` and `NAME.requires/` directories that
`systemctl enable` fills. Units outside it are loaded (startable by name) but not started.

Everything is read under a root directory (`/` in an image; a fake root in tests, see
`ROOT_ENV`): symlinks with absolute targets, as `systemctl --root` writes them, are
resolved inside it. Reads directories and symlinks only (unit files are read by the
loader); no parsing.

Not done, on purpose: generators (systemd-fstab-generator, ...) are not run; unit types
other than .service, .socket, .target and .timer (.mount, .path, ...) are listed as
skipped. The unit files themselves, alias and instance links, `/dev/null` masks and
snippets are read by the loader over `dirs` (`scan.scan_dirs`), as for cinit's own
directories; `SystemdBoot` is what it adds for this mode.
"""

from __future__ import annotations

import os
import posixpath

from cinit.boot_path import TYPE_CHECKING
from cinit.units.diagnostics import Diagnostic, Severity
from cinit.units.frozen import Frozen
from cinit.units.graph import build_graph
from cinit.units.model import Condition, ConditionKind, UnitSource
from cinit.units.targets import SUFFIX as TARGET_SUFFIX
from cinit.units.targets import target_unit

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from cinit.units.model import Unit

SEARCH_DIRS = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
)
ROOT_ENV = "CINIT_SYSTEMD_ROOT"  # tests: read the layout under this directory instead of /
DEFAULT_TARGET = "default.target"
FALLBACK_TARGET = "multi-user.target"
# Pulled in at boot beside default.target, as systemd does through basic.target.
ALWAYS_BOOTED = ("sockets.target", "timers.target")
LOADED_SUFFIXES = (".service", ".socket", TARGET_SUFFIX, ".timer")
OTHER_SUFFIXES = (
    ".path",
    ".mount",
    ".automount",
    ".swap",
    ".slice",
    ".scope",
    ".device",
)
DEPENDENCY_DIRS = (".wants", ".requires")
# systemd's own units (systemd-journald, -update-utmp, -tmpfiles-setup, ...) work with
# systemd as PID 1, or do what cinit does itself: each gets the check sd_booted(3) makes,
# so that it skips itself, as a unit meant for a booted machine does in a container.
SYSTEMD_OWN_PREFIX = "systemd-"
SYSTEMD_BOOTED = Condition(ConditionKind.PATH_EXISTS, "/run/systemd/system")
_MAX_LINKS = 16  # symlink hops followed inside the root before giving up


class SystemdLayout(Frozen):
    """What the search path holds: see the module docstring."""

    root: str
    dirs: tuple[str, ...]  # existing search directories (under root), highest first
    masked: frozenset[str]  # names whose deciding entry is a link to /dev/null or empty
    wants: Mapping[str, tuple[str, ...]]  # from NAME.wants/ directories
    requires: Mapping[str, tuple[str, ...]]  # from NAME.requires/ directories
    default_target: str
    skipped: tuple[str, ...]  # unit files of types cinit does not run

    def boot_roots(self) -> tuple[str, ...]:
        """The targets the boot starts from."""
        return (self.default_target, *ALWAYS_BOOTED)


def systemd_root(environ: Mapping[str, str]) -> str:
    """The root the layout is read under: `$CINIT_SYSTEMD_ROOT`, else `/`."""
    return environ.get(ROOT_ENV) or "/"


def _under(root: str, path: str) -> str:
    return path if root == "/" else root.rstrip("/") + path


def _resolve(root: str, path: str) -> str | None:
    """`path` with its symlinks followed inside `root`; None when they do not end (a loop)."""
    for _ in range(_MAX_LINKS):
        try:
            target = os.readlink(path)
        except OSError:
            return path  # not a symlink (or gone: the reader says so)
        if target.startswith("/"):
            path = _under(root, posixpath.normpath(target))
        else:
            path = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    return None


def _link_target(root: str, path: str) -> str | None:
    """Where the symlink at `path` points, as a path inside the root (None: not a link)."""
    try:
        target = os.readlink(path)
    except OSError:
        return None
    if target.startswith("/"):
        return posixpath.normpath(target)
    inner = path[len(root.rstrip("/")) :] if root != "/" else path
    return posixpath.normpath(posixpath.join(posixpath.dirname(inner), target))


def _is_masked(root: str, path: str) -> bool:
    """A symlink to /dev/null, or an empty file (systemd.unit(5))."""
    if _link_target(root, path) == "/dev/null":
        return True
    resolved = _resolve(root, path)
    try:
        return resolved is not None and os.path.getsize(resolved) == 0
    except OSError:
        return False


def read_layout(root: str, diags: list[Diagnostic]) -> SystemdLayout:
    """Scan the search path under `root` (see the module docstring); findings go to `diags`."""
    dirs: list[str] = []
    seen: set[str] = set()
    for directory in SEARCH_DIRS:
        path = _under(root, directory)
        if not os.path.isdir(path):
            continue
        real = os.path.realpath(path)
        if real in seen:
            continue  # merged /usr: /lib is /usr/lib
        seen.add(real)
        dirs.append(path)
    if not dirs:
        where = ", ".join(SEARCH_DIRS) + ("" if root == "/" else f" under {root}")
        message = f"none of systemd's unit directories exists ({where})"
        diags.append(Diagnostic(Severity.WARNING, message, root))
    masked: set[str] = set()
    skipped: list[str] = []
    wants: dict[str, list[str]] = {}
    requires: dict[str, list[str]] = {}
    claimed: set[str] = set()  # names a higher directory decided
    for directory in dirs:
        try:
            entries = sorted(os.listdir(directory))
        except OSError as exc:
            diags.append(
                Diagnostic(Severity.ERROR, f"cannot read directory: {exc.strerror}", directory)
            )
            continue
        for entry in entries:
            path = f"{directory}/{entry}"
            if entry.endswith(DEPENDENCY_DIRS):
                stem, _, kind = entry.rpartition(".")
                into = wants if kind == "wants" else requires
                _read_dependency_dir(path, stem, into)
                continue
            if entry in claimed:
                continue
            if entry.endswith(OTHER_SUFFIXES):
                claimed.add(entry)
                skipped.append(path)
            elif entry.endswith(LOADED_SUFFIXES):
                claimed.add(entry)
                if _is_masked(root, path):
                    masked.add(entry)
    return SystemdLayout(
        root=root,
        dirs=tuple(dirs),
        masked=frozenset(masked),
        wants={name: tuple(sorted(set(v))) for name, v in wants.items()},
        requires={name: tuple(sorted(set(v))) for name, v in requires.items()},
        default_target=_default_target(root, dirs),
        skipped=tuple(skipped),
    )


def _read_dependency_dir(path: str, stem: str, into: dict[str, list[str]]) -> None:
    """`NAME.wants/UNIT` entries: NAME wants UNIT (the entry's name; where it links to
    only matters for template instances, which the loader resolves)."""
    try:
        entries = os.listdir(path)
    except OSError:
        return  # not a directory, or unreadable: systemd ignores it too
    names = [entry for entry in entries if entry.endswith(LOADED_SUFFIXES + OTHER_SUFFIXES)]
    if names:
        into.setdefault(stem, []).extend(names)


def _default_target(root: str, dirs: list[str]) -> str:
    """The target default.target names: the first directory's default.target symlink
    (or file: then default.target itself), else multi-user.target."""
    for directory in dirs:
        path = f"{directory}/{DEFAULT_TARGET}"
        target = _link_target(root, path)
        if target is not None:
            name = posixpath.basename(target)
            return name if name.endswith(TARGET_SUFFIX) else FALLBACK_TARGET
        if os.path.isfile(path):
            return DEFAULT_TARGET
    return FALLBACK_TARGET


class SystemdBoot:
    """What `cinit --systemd` adds to a load (`loader.load_systemd_units`): the loader
    calls `link` once the unit files are read (before template instances named by
    dependencies are made: a `.wants/` link may name one, `postgresql@15-main.service`),
    then `settle` for the boot set, then `soften` on the cross-unit findings."""

    def __init__(self, layout: SystemdLayout, findings: list[Diagnostic]) -> None:
        self.layout = layout
        self.findings = tuple(findings)  # what reading the layout found
        self.roots: tuple[str, ...] = layout.boot_roots()  # by own names, once linked

    def link(self, units: dict[str, Unit], alias_map: Mapping[str, str]) -> None:
        """Give the `.wants/` and `.requires/` links to the units they belong to (an
        empty target for a target no file defines), as Wants=/Requires= (in place).
        Names go through `alias_map` (`default.target -> graphical.target`)."""
        from cinit.units.aliases import resolve

        layout = self.layout
        self.roots = tuple(resolve(name, alias_map) for name in layout.boot_roots())
        owners = [resolve(name, alias_map) for name in (*layout.wants, *layout.requires)]
        for name in (*self.roots, *owners):
            if name.endswith(TARGET_SUFFIX) and name not in units:
                units[name] = target_unit(name)
        for relation, field in ((layout.wants, "wants"), (layout.requires, "requires")):
            for owner, linked in relation.items():
                name = resolve(owner, alias_map)
                unit = units.get(name)
                if unit is None:
                    continue
                present = getattr(unit.unit, field)
                extra = tuple(n for n in linked if n not in layout.masked and n not in present)
                if extra:
                    units[name] = unit.replace(unit=unit.unit.replace(**{field: present + extra}))

    def settle(self, units: dict[str, Unit], diags: list[Diagnostic]) -> set[str]:
        """Leave out the search path's units that are masked by an empty file or whose
        files have errors (their errors become warnings, in `diags`), and return the boot
        set: what default.target, sockets.target, timers.target and the units of cinit's
        own directories (as in the ordinary mode) pull in."""
        ours = {u.path for u in units.values() if u.source is not UnitSource.SYSTEMD}
        broken = {d.path for d in diags if d.severity is Severity.ERROR and d.path not in ours}
        empty = {
            u.path
            for n, u in units.items()
            if u.source is UnitSource.SYSTEMD and n in self.layout.masked
        }
        for name in [n for n, u in units.items() if u.source is UnitSource.SYSTEMD]:
            if units[name].path in broken or units[name].path in empty:
                del units[name]
        kept: list[Diagnostic] = []
        for diagnostic in diags:
            if diagnostic.path in empty:
                continue  # an empty file masks: nothing in it to report
            if diagnostic.path in broken and diagnostic.severity is Severity.ERROR:
                diagnostic = diagnostic.replace(
                    severity=Severity.WARNING,
                    message=f"{diagnostic.message} [unit not loaded: cinit --systemd goes on]",
                )
            kept.append(diagnostic)
        for path in sorted(empty):
            message = "masked (an empty file): not loaded"
            kept.append(Diagnostic(Severity.HINT, message, path))
        systemds = _skip_systemds_own(units)
        if systemds:
            message = (
                f"{len(systemds)} of systemd's own units ({', '.join(systemds[:3])}, ...) skip "
                "themselves: "
                f"{SYSTEMD_BOOTED.describe()} is added to them (systemd is not PID 1; "
                "docs/systemd.md)"
            )
            kept.append(Diagnostic(Severity.HINT, message, self.layout.dirs[0]))
        if self.layout.skipped:
            message = (
                f"{len(self.layout.skipped)} unit files of types cinit does not run ("
                ".mount, .path, ...) left out"
            )
            kept.append(Diagnostic(Severity.HINT, message, self.layout.dirs[0]))
        diags[:] = kept
        own = (UnitSource.CORE, UnitSource.DROP_IN)  # cinit's directories, not implicit
        plain = build_graph({n: u for n, u in units.items() if u.source in own})
        roots = [*self.roots, *sorted(set(plain.names) - plain.trigger_only())]
        return boot_set(units, roots)

    def soften(
        self, found: list[Diagnostic], units: Mapping[str, Unit], boot: set[str] | None
    ) -> list[Diagnostic]:
        """What only a unit of the search path that does not start at boot says
        (emergency.target's Requires= of a service left out) does not stop the boot."""
        started = boot or set()
        idle = {
            u.path for n, u in units.items() if u.source is UnitSource.SYSTEMD and n not in started
        }
        softened = []
        for diagnostic in found:
            if diagnostic.severity is Severity.ERROR and diagnostic.path in idle:
                diagnostic = diagnostic.replace(
                    severity=Severity.WARNING,
                    message=f"{diagnostic.message} [not started at boot: cinit --systemd goes on]",
                )
            softened.append(diagnostic)
        return softened


def _skip_systemds_own(units: dict[str, Unit]) -> list[str]:
    """Give systemd's own units (see SYSTEMD_BOOTED) their check, in place; their names."""
    own = sorted(
        name
        for name, unit in units.items()
        if unit.source is UnitSource.SYSTEMD and name.startswith(SYSTEMD_OWN_PREFIX)
    )
    for name in own:
        section = units[name].unit
        units[name] = units[name].replace(
            unit=section.replace(conditions=(SYSTEMD_BOOTED, *section.conditions))
        )
    return own


def boot_set(units: Mapping[str, Unit], roots: Iterable[str]) -> set[str]:
    """Every loaded unit `roots` pull in through Wants= and Requires=, transitively."""
    found: set[str] = set()
    todo = [name for name in roots if name in units]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        section = units[name].unit
        todo.extend(n for n in section.wants + section.requires if n in units and n not in found)
    return found
