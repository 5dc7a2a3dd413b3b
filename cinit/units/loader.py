"""Loading: unit directories and files in, a validated `UnitSet` out.

Reads the core directory and the drop-in directory (`scan`: a drop-in with the same full
filename replaces the core unit; any other is added), parses every file through the
directive table (`parse_unit`), runs the per-unit (`unit_checks`) and cross-unit
(`cross_checks`) checks, and collects *every* diagnostic: one bad file never hides another's.
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Mapping

from cinit.boot_path import TYPE_CHECKING
from cinit.units import environment, schema
from cinit.units.cross_checks import check_units
from cinit.units.diagnostics import Diagnostic, Severity, UnitError, ValueFormError
from cinit.units.frozen import Frozen
from cinit.units.graph import DependencyGraph, build_graph
from cinit.units.model import (
    INFINITY,
    InstallSection,
    ServiceSection,
    ServiceType,
    SocketSection,
    Unit,
    UnitKind,
    UnitSection,
    UnitSource,
)
from cinit.units.scan import Override, choose_files, read_unit_file
from cinit.units.syntax import WHITESPACE, scan_syntax
from cinit.units.unit_checks import check_service, check_socket

if TYPE_CHECKING:
    from typing import Any


DEFAULT_UNITS_DIR = "/etc/container-init/units/"
DEFAULT_DROP_IN_DIR = "/etc/container-init.d/"

# Past this many findings in one file, the rest is summarised in one line.
MAX_DIAGNOSTICS_PER_FILE = 100
# Readings one load keeps for reuse: enough for every common assignment, while a large
# load's one-off values (descriptions, ports) do not pile up in memory.
MAX_SHARED_READINGS = 1024
SUFFIXES = {".service": UnitKind.SERVICE, ".socket": UnitKind.SOCKET}
# systemd's unit name alphabet: letters, digits, ":-_.\\" and one "@" for templates.
_UNIT_NAME = re.compile(r"[A-Za-z0-9:_.\\-]+(@[A-Za-z0-9:_.\\-]*)?\.(service|socket)")
SECTION_CLASSES: dict[str, Any] = {
    schema.UNIT: UnitSection,
    schema.SERVICE: ServiceSection,
    schema.SOCKET: SocketSection,
    schema.INSTALL: InstallSection,
}


class UnitSet(Frozen):
    """Every loaded unit, what was said about them, and their dependency graph.

    `ok` is False when there is an error, or (with `strict`) any warning. Hints never
    count. Units whose files had errors are still present (bad directives ignored) so
    that cross-unit checks see them; a supervisor must refuse to boot a set that is not ok.
    """

    units: Mapping[str, Unit]
    graph: DependencyGraph
    diagnostics: tuple[Diagnostic, ...] = ()
    overrides: tuple[Override, ...] = ()
    strict: bool = False
    ignored_files: tuple[str, ...] = ()

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors and not (self.strict and self.warnings)

    def start_order(self) -> list[str]:
        """Every unit, each after all units it is ordered after."""
        return self.graph.start_order()

    def stop_order(self) -> list[str]:
        """The reverse of `start_order`."""
        return self.graph.stop_order()

    def raise_for_errors(self) -> None:
        """Raise `UnitError` with the fatal diagnostics when the set is not ok."""
        if not self.ok:
            fatal = self.errors + (self.warnings if self.strict else [])
            raise UnitError(fatal)


def is_unit_filename(name: str) -> bool:
    """Whether `name` is a valid .service/.socket unit filename."""
    return _UNIT_NAME.fullmatch(name) is not None


def parse_unit(
    name: str,
    text: str,
    *,
    path: str = "",
    environ: Mapping[str, str] | None = None,
    hostname: str | None = None,
    source: UnitSource = UnitSource.CORE,
) -> tuple[Unit | None, list[Diagnostic]]:
    """Parse one unit file's text into a `Unit` plus its diagnostics.

    `environ` is what `${VAR}` / `${VAR:-default}` expand against (cinit's own
    environment by default); `hostname` is `%H`. Returns None for the unit only when
    the name is not a unit filename.
    """
    env = os.environ if environ is None else environ
    host = os.uname().nodename if hostname is None else hostname
    return _parse_unit(name, text, path or name, env, host, source, {})


def _parse_unit(
    name: str,
    text: str,
    path: str,
    env: Mapping[str, str],
    host: str,
    source: UnitSource,
    readings: dict[tuple[str, str, str], _Reading],
) -> tuple[Unit | None, list[Diagnostic]]:
    """`parse_unit`, sharing `readings` with the other files of one load.

    A value without `%` reads the same in every unit of a load (`env` and `host` are
    fixed for it), and most assignments repeat across units: each is read once.
    """
    if not is_unit_filename(name):
        message = f"{name!r} is not a valid unit name (expected NAME.service or NAME.socket)"
        return None, [Diagnostic(Severity.ERROR, message, path)]
    kind = SUFFIXES[name[name.rindex(".") :]]
    sections, rows, diags = scan_syntax(text, path)
    allowed = schema.SECTIONS[kind]
    fields: dict[str, dict[str, Any]] = {target: {} for target in SECTION_CLASSES}
    lines: dict[str, int] = {}
    grown: list[tuple[dict[str, Any], str]] = []  # list fields assigned more than once
    warned_sections: set[str] = set()

    for section, line in sections:
        if section in allowed or section.startswith("X-") or section in warned_sections:
            continue
        warned_sections.add(section)
        where = "unknown section" if section not in ("Service", "Socket") else "section"
        message = f"{where} [{section}] is not valid in a {kind.value} unit; ignored"
        diags.append(Diagnostic(Severity.WARNING, message, path, line, section))

    not_applied: dict[str, int] = {}  # accepted, not carried out: name -> first line
    for section, key, raw, line in rows:
        if section not in allowed:
            continue
        if (section, key) in _NOT_APPLIED:
            not_applied.setdefault(key, line)
            continue
        triple = (section, key, raw)
        reading = readings.get(triple)
        if reading is None:
            reading = _read_assignment(section, key, raw, name, host, env)
            if "%" not in raw:  # specifiers make a value the unit's own
                if len(readings) >= MAX_SHARED_READINGS:
                    readings.clear()  # mostly values seen once: the common ones come back
                readings[triple] = reading
        if reading.notes:
            for severity, message in reading.notes:
                diags.append(Diagnostic(severity, message, path, line, section, key))
        directive = reading.directive
        if directive is None:
            continue
        lines[directive] = line
        values = fields[reading.target]
        field, found = reading.field, reading.value
        if found is _RESET:
            values.pop(field, None)  # an empty assignment resets to the default
        elif found is _INVALID:
            continue
        elif not reading.multi:
            values[field] = found
        else:
            # A list field keeps its one assignment's tuple; a list only when several add up.
            earlier = values.get(field)
            if earlier is None:
                values[field] = found
            elif type(earlier) is tuple:
                values[field] = [*earlier, *found]
                grown.append((values, field))
            else:
                earlier.extend(found)

    for values, field in grown:
        if type(values.get(field)) is list:  # not reset (and then set once) since
            values[field] = tuple(values[field])
    if not_applied:  # one note per unit, at the first of them
        listed = ", ".join(f"{key}=" for key in not_applied)
        message = f"not applied in a container (accepted, see docs/directives.md): {listed}"
        first = min(not_applied.values())
        diags.append(Diagnostic(Severity.NOTE, message, path, first))
    unit = _build_unit(name, path, kind, fields, lines, source, diags)
    if len(diags) > MAX_DIAGNOSTICS_PER_FILE:
        hidden = len(diags) - MAX_DIAGNOSTICS_PER_FILE
        diags = diags[:MAX_DIAGNOSTICS_PER_FILE]
        message = f"{hidden} more diagnostics in this file not shown"
        diags.append(Diagnostic(diags[-1].severity, message, path))
    return unit, diags


# Outcomes of reading one assignment other than a value.
_RESET, _INVALID = object(), object()


class _Reading:
    """What one `Key=value` in one section reads as, wherever it stands (shared by every
    unit of a load that has the same line): the findings about it as (severity, message)
    pairs, each made a Diagnostic at every place it occurs; the directive's name as the
    table spells it (None: not a directive cinit reads; one string shared by every unit's
    directive_lines), its target section, field and whether values accumulate there; the
    value (or _RESET / _INVALID). A plain slotted class: the loader makes one per distinct
    line of a load and reads it once per line of every file."""

    __slots__ = ("directive", "field", "multi", "notes", "target", "value")

    def __init__(
        self,
        notes: tuple[tuple[Severity, str], ...],
        directive: str | None,
        target: str = "",
        field: str = "",
        multi: bool = False,
        value: Any = _INVALID,
    ) -> None:
        self.notes = notes
        self.directive = directive
        self.target = target
        self.field = field
        self.multi = multi
        self.value = value
_DIRECTIVES = schema.DIRECTIVES
_NOT_APPLIED = schema.NOT_APPLIED


def _read_assignment(
    section: str, key: str, raw: str, name: str, host: str, env: Mapping[str, str]
) -> _Reading:
    """Read `key=raw` in `[section]`: what it sets and what is said about it (`_Reading`)."""
    row = _DIRECTIVES.get((section, key))
    if row is None:
        if key.startswith("X-"):
            return _Reading((), None)  # systemd ignores X- directives silently
        message = f"[{section}] unknown directive {key}="
        hint = schema.suggest(section, key)
        message += f", did you mean {hint}?" if hint else "; ignored"
        return _Reading(((Severity.WARNING, message),), None)
    if raw == "":
        return _Reading((), row.name, row.target, row.field, row.multi, _RESET)
    # Most values hold neither a specifier nor a variable: skip both expansions then.
    warnings: list[str] = []
    value = raw
    result: Any = _INVALID
    error: str | None = None
    try:
        if "%" in raw:
            value, warnings = environment.expand_specifiers(raw, name, host)
        if row.expand and "$" in value:
            # An empty variable can leave whitespace at an end: strip it as in the file.
            value = environment.expand_vars(value, env).strip(WHITESPACE)
        result = row.parse(value, warnings) if row.warns else row.parse(value)
    except ValueFormError as exc:
        error = str(exc)
    except Exception as exc:  # a parser bug: said at this file:line, the load goes on
        result = _INVALID
        error = f"cannot read this value (internal error: {_describe(exc)})"
    if row.multi and result is not _INVALID:
        result = tuple(result)  # shared between units: never a list one of them could change
    if error is None and not warnings:
        return _Reading((), row.name, row.target, row.field, row.multi, result)
    notes = [] if error is None else [(Severity.ERROR, f"[{section}] {key}={_short(raw)}: {error}")]
    for warning in warnings:
        notes.append((Severity.WARNING, f"[{section}] {key}={_short(raw)}: {warning}"))
    return _Reading(tuple(notes), row.name, row.target, row.field, row.multi, result)


def _build_unit(
    name: str,
    path: str,
    kind: UnitKind,
    fields: dict[str, dict[str, Any]],
    lines: dict[str, int],
    source: UnitSource,
    diags: list[Diagnostic],
) -> Unit:
    """Assemble the typed sections, fill resolved defaults, run the per-unit checks."""
    body = SERVICE_TARGET if kind is UnitKind.SERVICE else SOCKET_TARGET
    values = fields[body]
    for key, default in resolved_defaults(name, kind, values).items():
        values.setdefault(key, default)
    # Every list field already holds a tuple (see _parse_unit).
    built = {
        target: SECTION_CLASSES[target](**fields[target])
        for target in (schema.UNIT, schema.INSTALL, body)
    }
    unit = Unit(
        name=name,
        path=path,
        kind=kind,
        unit=built[schema.UNIT],
        service=built[body] if kind is UnitKind.SERVICE else None,
        socket=built[body] if kind is UnitKind.SOCKET else None,
        install=built[schema.INSTALL],
        source=source,
        directive_lines=lines,
    )
    if unit.service is not None:
        check_service(unit, unit.service, diags)
    if unit.socket is not None:
        check_socket(unit, unit.socket, diags)
    return unit


SERVICE_TARGET, SOCKET_TARGET = schema.SERVICE, schema.SOCKET


def resolved_defaults(name: str, kind: UnitKind, values: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults that depend on the unit itself rather than being constants of the section."""
    if kind is UnitKind.SERVICE:
        if values.get("type") is ServiceType.ONESHOT:
            return {"timeout_start_sec": INFINITY}  # systemd: a oneshot has no start timeout
        return {}
    stem = name.rsplit(".", 1)[0]
    # ':' separates names in LISTEN_FDNAMES, so it cannot stand in a default name.
    return {"service": f"{stem}.service", "file_descriptor_name": name.replace(":", "_")}


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _describe(exc: BaseException) -> str:
    """`TypeName: message`, one short line, for an exception no parser should raise."""
    return _short(f"{type(exc).__name__}: {exc}".replace("\n", " "), 200)


def load_units(
    units_dir: str = DEFAULT_UNITS_DIR,
    drop_in_dir: str = DEFAULT_DROP_IN_DIR,
    *,
    strict: bool = False,
    environ: Mapping[str, str] | None = None,
    hostname: str | None = None,
) -> UnitSet:
    """Load and validate the core units and the drop-ins into a `UnitSet`.

    A directory that does not exist contributes nothing (the caller decides whether that
    is an error). With `strict`, every warning is reported as an error.
    """
    # The loader makes many small objects and no cycles: the cyclic GC only costs time here.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _load(units_dir, drop_in_dir, strict, environ, hostname)
    finally:
        if paused:
            gc.enable()


def _load(
    units_dir: str,
    drop_in_dir: str,
    strict: bool,
    environ: Mapping[str, str] | None,
    hostname: str | None,
) -> UnitSet:
    diags: list[Diagnostic] = []
    ignored: list[str] = []
    chosen, overrides, regular = choose_files(units_dir, drop_in_dir, diags, ignored)
    core_paths = {override.name: override.core_path for override in overrides}
    units: dict[str, Unit] = {}
    env = os.environ if environ is None else environ
    host = os.uname().nodename if hostname is None else hostname
    readings: dict[tuple[str, str, str], _Reading] = {}
    for name, path, source in chosen:
        text, read_diags = read_unit_file(path, path in regular)
        diags.extend(read_diags)
        if text is None:
            continue
        try:
            unit, unit_diags = _parse_unit(name, text, path, env, host, source, readings)
        except Exception as exc:  # a loader bug: this file is reported, the others still read
            message = f"cannot load this unit file (internal error: {_describe(exc)})"
            diags.append(Diagnostic(Severity.ERROR, message, path))
            continue
        diags.extend(unit_diags)
        if unit is not None:
            if name in core_paths:
                unit = unit.replace(overrides=core_paths[name])
            units[name] = unit
    graph = build_graph(units)
    diags.extend(check_units(units, graph))
    if strict:
        diags = [promote_warning(d) for d in diags]
    return UnitSet(units, graph, tuple(diags), overrides, strict, tuple(ignored))


def promote_warning(diagnostic: Diagnostic) -> Diagnostic:
    """`diagnostic` as --strict-units reports it: a warning becomes an error, marked so."""
    if diagnostic.severity is not Severity.WARNING:
        return diagnostic
    return diagnostic.replace(
        severity=Severity.ERROR, message=diagnostic.message + " [--strict-units]"
    )
