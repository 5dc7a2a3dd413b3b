"""Loading: unit directories and files in, a validated `UnitSet` out.

Reads the core directory and the drop-in directory (`scan`: a drop-in with the same full
filename replaces the core unit; any other is added), parses every file through the
directive table (`parse_unit`), runs the per-unit (`unit_checks`) and cross-unit
(`cross_checks`) checks, and collects *every* diagnostic: one bad file never hides another's.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Mapping

from cinit.boot_path import TYPE_CHECKING
from cinit.units import aliases, environment, schema, unit_names
from cinit.units._text import UNIT_NAME_CHARS
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
    TimerSection,
    Unit,
    UnitKind,
    UnitSection,
    UnitSource,
)
from cinit.units.scan import Override, Scan, read_unit_file, scan_dirs
from cinit.units.syntax import WHITESPACE, scan_syntax
from cinit.units.targets import implicit_targets, target_unit
from cinit.units.unit_checks import check_service, check_socket, check_timer

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence
    from typing import Any

    from cinit.units.specifiers import HostFacts
    from cinit.units.systemd_layout import SystemdBoot


DEFAULT_UNITS_DIR = "/etc/container-init/units/"
DEFAULT_DROP_IN_DIR = "/etc/container-init.d/"

# Past this many findings in one file, the rest is summarised in one line.
MAX_DIAGNOSTICS_PER_FILE = 100
# Readings one load keeps for reuse: enough for every common assignment, while a large
# load's one-off values (descriptions, ports) do not pile up in memory.
MAX_SHARED_READINGS = 1024
SUFFIXES = {
    ".service": UnitKind.SERVICE,
    ".socket": UnitKind.SOCKET,
    ".target": UnitKind.TARGET,
    ".timer": UnitKind.TIMER,
}
# systemd's unit name alphabet: letters, digits, ":-_.\\" and one "@" for templates.
_UNIT_KINDS = frozenset({"service", "socket", "target", "timer"})
SECTION_CLASSES: dict[str, Any] = {
    schema.UNIT: UnitSection,
    schema.SERVICE: ServiceSection,
    schema.SOCKET: SocketSection,
    schema.TIMER: TimerSection,
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
    # The unit language (issue 15): alias -> the unit's own name; masked names -> their
    # link; the templates read (never units themselves).
    aliases: Mapping[str, str] = {}
    masked: Mapping[str, str] = {}
    templates: Mapping[str, str] = {}

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors and not (self.strict and self.warnings)

    def resolve(self, name: str) -> str | None:
        """The loaded unit `name` means (itself, or the unit it is an alias of), or None."""
        if name in self.units:
            return name
        real = self.aliases.get(name)
        return real if real in self.units else None

    def snippet_lines(self, prog: str = "cinit") -> list[str]:
        """One line per snippet applied, in unit then application order, logged at startup
        beside the drop-in override lines."""
        return [
            f"{prog}: unit {name}: applied snippet {path}"
            for name in sorted(self.units)
            for path in self.units[name].snippets
        ]

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
    """Whether `name` is a valid .service/.socket/.target unit filename."""
    # `[A-Za-z0-9:_.\\-]+(@[A-Za-z0-9:_.\\-]*)?\.(service|socket|target)`, in string tests
    # (no `re` before the first exec): a type has no dot, so its own is the last one.
    stem, _, kind = name.rpartition(".")
    prefix, _, instance = stem.partition("@")
    return (
        kind in _UNIT_KINDS
        and bool(prefix)
        and UNIT_NAME_CHARS.issuperset(prefix)
        and UNIT_NAME_CHARS.issuperset(instance)
    )


def parse_unit(
    name: str,
    text: str,
    *,
    path: str = "",
    environ: Mapping[str, str] | None = None,
    hostname: str | None = None,
    source: UnitSource = UnitSource.CORE,
    snippets: Sequence[tuple[str, str]] = (),
    facts: Callable[[], HostFacts] | None = None,
) -> tuple[Unit | None, list[Diagnostic]]:
    """Parse one unit file's text into a `Unit` plus its diagnostics.

    `environ` is what `${VAR}` / `${VAR:-default}` expand against (cinit's own
    environment by default); `hostname` is `%H` (and `facts`, when given, every host
    specifier: see `cinit.units.specifiers`). `snippets` are (path, text) of `.d/*.conf`
    files, applied in order after the unit file. Returns None for the unit only when the
    name is not a unit filename.
    """
    env = os.environ if environ is None else environ
    provider = facts if facts is not None else default_facts(hostname)
    sources = [(path or name, text), *snippets]
    return _parse_unit(name, sources, env, _Facts(provider), source, {})


def default_facts(hostname: str | None = None) -> Callable[[], HostFacts]:
    """Host facts without reading any file: the hostname and kernel release (uname)."""

    def facts() -> HostFacts:
        from cinit.units.specifiers import HostFacts

        uname = os.uname()
        host = uname.nodename if hostname is None else hostname
        return HostFacts(hostname=host, kernel_release=uname.release)

    return facts


class _Facts:
    """The host facts of one load, asked for once, and only if a specifier needs them."""

    __slots__ = ("_facts", "_provider")

    def __init__(self, provider: Callable[[], HostFacts]) -> None:
        self._provider = provider
        self._facts: HostFacts | None = None

    def __call__(self) -> HostFacts:
        if self._facts is None:
            self._facts = self._provider()
        return self._facts


def _parse_unit(
    name: str,
    sources: Sequence[tuple[str, str]],
    env: Mapping[str, str],
    facts: Callable[[], HostFacts],
    source: UnitSource,
    readings: dict[tuple[str, str, str], _Reading],
) -> tuple[Unit | None, list[Diagnostic]]:
    """`parse_unit` over (path, text) sources (the unit file, then its snippets), sharing
    `readings` with the other files of one load.

    A value without `%` reads the same in every unit of a load (`env` and the host are
    fixed for it), and most assignments repeat across units: each is read once. The
    snippets continue the unit file, as systemd reads them: a list grows, a single value
    is replaced, an empty assignment resets either.
    """
    path = sources[0][0]
    if not is_unit_filename(name):
        expected = "NAME.service, NAME.socket, NAME.target or NAME.timer"
        message = f"{name!r} is not a valid unit name (expected {expected})"
        return None, [Diagnostic(Severity.ERROR, message, path)]
    kind = SUFFIXES[name[name.rindex(".") :]]
    allowed = schema.SECTIONS[kind]
    fields: dict[str, dict[str, Any]] = {target: {} for target in SECTION_CLASSES}
    lines: dict[str, int] = {}
    files: dict[str, str] = {}
    grown: list[tuple[dict[str, Any], str]] = []  # list fields assigned more than once
    diags: list[Diagnostic] = []
    # Accepted, not carried out (schema.NOT_APPLIED): name -> (file, line) of its first use.
    not_applied: dict[str, tuple[str, int]] = {}
    for file_path, text in sources:
        sections, rows, file_diags = scan_syntax(text, file_path)
        diags.extend(file_diags)
        warned_sections: set[str] = set()
        for section, line in sections:
            if section in allowed or section.startswith("X-") or section in warned_sections:
                continue
            warned_sections.add(section)
            known = ("Service", "Socket", "Timer")
            where = "unknown section" if section not in known else "section"
            message = f"{where} [{section}] is not valid in a {kind.value} unit; ignored"
            diags.append(Diagnostic(Severity.WARNING, message, file_path, line, section))
        snippet = file_path != path
        for section, key, raw, line in rows:
            if section not in allowed:
                continue
            if (section, key) in _NOT_APPLIED:
                not_applied.setdefault(key, (file_path, line))
                continue
            triple = (section, key, raw)
            reading = readings.get(triple)
            if reading is None:
                reading = _read_assignment(section, key, raw, name, path, facts, env)
                if "%" not in raw:  # specifiers make a value the unit's own
                    if len(readings) >= MAX_SHARED_READINGS:
                        readings.clear()  # mostly values seen once: the common ones come back
                    readings[triple] = reading
            if reading.notes:
                for severity, message in reading.notes:
                    diags.append(Diagnostic(severity, message, file_path, line, section, key))
            directive = reading.directive
            if directive is None:
                continue
            lines[directive] = line
            if snippet:
                files[directive] = file_path
            else:
                files.pop(directive, None)
            values = fields[reading.target]
            field, found = reading.field, reading.value
            if found is _RESET:
                values.pop(field, None)  # an empty assignment resets to the default
            elif found is _INVALID:
                continue
            elif not reading.multi:
                earlier = values.get(field) if reading.merges else None
                values[field] = found if earlier is None else earlier.union(found)
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
    if not_applied:  # one note per unit, where the first of them stands
        listed = ", ".join(f"{key}=" for key in not_applied)
        message = f"not applied in a container (accepted, see docs/directives.md): {listed}"
        first_file, first_line = next(iter(not_applied.values()))
        diags.append(Diagnostic(Severity.NOTE, message, first_file, first_line))
    unit = _build_unit(name, path, kind, fields, lines, source, diags, files)
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

    __slots__ = ("directive", "field", "merges", "multi", "notes", "target", "value")

    def __init__(
        self,
        notes: tuple[tuple[Severity, str], ...],
        directive: str | None,
        target: str = "",
        field: str = "",
        multi: bool = False,
        value: Any = _INVALID,
        merges: bool = False,
    ) -> None:
        self.notes = notes
        self.directive = directive
        self.target = target
        self.field = field
        self.multi = multi
        self.value = value
        self.merges = merges  # several assignments join (`union`): SuccessExitStatus= & co


_DIRECTIVES = schema.DIRECTIVES
_NOT_APPLIED = schema.NOT_APPLIED


def _read_assignment(
    section: str,
    key: str,
    raw: str,
    name: str,
    path: str,
    facts: Callable[[], HostFacts],
    env: Mapping[str, str],
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
        return _Reading((), row.name, row.target, row.field, row.multi, _RESET, row.merges)
    # Most values hold neither a specifier nor a variable: skip both expansions then.
    warnings: list[str] = []
    value = raw
    result: Any = _INVALID
    error: str | None = None
    try:
        # systemd expands the specifiers of a command line and of Environment= in each
        # word once it is split: an instance "a b" (%I of a\x20b) stays one argument.
        by_word = "%" in raw and (row.name.startswith("Exec") or row.name == "Environment")
        if "%" in raw and not by_word:
            value, warnings = _expand(raw, name, path, facts)
        if row.expand and "$" in value:
            # An empty variable can leave whitespace at an end: strip it as in the file.
            value = environment.expand_vars(value, env).strip(WHITESPACE)
        result = row.parse(value, warnings) if row.warns else row.parse(value)
        if by_word:
            result = _expand_words(result, name, path, facts, warnings)
    except ValueFormError as exc:
        error = str(exc)
    except Exception as exc:  # a parser bug: said at this file:line, the load goes on
        result = _INVALID
        error = f"cannot read this value (internal error: {_describe(exc)})"
    if row.multi and result is not _INVALID:
        result = tuple(result)  # shared between units: never a list one of them could change
    if error is None and not warnings:
        return _Reading((), row.name, row.target, row.field, row.multi, result, row.merges)
    notes = [] if error is None else [(Severity.ERROR, f"[{section}] {key}={_short(raw)}: {error}")]
    for warning in warnings:
        notes.append((Severity.WARNING, f"[{section}] {key}={_short(raw)}: {warning}"))
    return _Reading(tuple(notes), row.name, row.target, row.field, row.multi, result, row.merges)


def _expand(
    text: str, name: str, path: str, facts: Callable[[], HostFacts]
) -> tuple[str, list[str]]:
    """`specifiers.expand`, its module imported by the first value that holds a `%`: a
    boot whose units have none does without it."""
    from cinit.units.specifiers import expand

    return expand(text, name, path, facts)


def _expand_words(
    items: list[Any],
    name: str,
    path: str,
    facts: Callable[[], HostFacts],
    warnings: list[str],
) -> list[Any]:
    """Exec*= commands or Environment= pairs with the specifiers of each word expanded."""

    def expand(word: str) -> str:
        if "%" not in word:
            return word
        text, found = _expand(word, name, path, facts)
        warnings.extend(w for w in found if w not in warnings)
        return text

    expanded: list[Any] = []
    for item in items:
        if isinstance(item, tuple):  # Environment=: (name, value)
            expanded.append((item[0], expand(item[1])))
        else:
            expanded.append(item.replace(words=tuple(expand(word) for word in item.words)))
    return expanded


def _build_unit(
    name: str,
    path: str,
    kind: UnitKind,
    fields: dict[str, dict[str, Any]],
    lines: dict[str, int],
    source: UnitSource,
    diags: list[Diagnostic],
    files: dict[str, str] | None = None,
) -> Unit:
    """Assemble the typed sections, fill resolved defaults, run the per-unit checks."""
    if kind is UnitKind.TARGET:
        unit_section = UnitSection(**fields[schema.UNIT])
        target = target_unit(name, path, unit_section, source)
        return target.replace(
            install=InstallSection(**fields[schema.INSTALL]), directive_lines=lines
        )
    body = _BODIES[kind]
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
        timer=built[body] if kind is UnitKind.TIMER else None,
        install=built[schema.INSTALL],
        source=source,
        directive_lines=lines,
        directive_files=files or {},
    )
    if unit.service is not None:
        check_service(unit, unit.service, diags)
    if unit.socket is not None:
        check_socket(unit, unit.socket, diags)
    if unit.timer is not None:
        check_timer(unit, unit.timer, diags)
    return unit


SERVICE_TARGET, SOCKET_TARGET = schema.SERVICE, schema.SOCKET
# The section that holds each kind's own settings.
_BODIES = {
    UnitKind.SERVICE: schema.SERVICE,
    UnitKind.SOCKET: schema.SOCKET,
    UnitKind.TIMER: schema.TIMER,
}


def resolved_defaults(name: str, kind: UnitKind, values: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults that depend on the unit itself rather than being constants of the section."""
    if kind is UnitKind.SERVICE:
        both = values.get("timeout_sec")
        if both is not None:
            # TimeoutSec= is both timeouts at once; an explicit TimeoutStartSec=/
            # TimeoutStopSec= wins over it wherever it stands in the file.
            return {"timeout_start_sec": both, "timeout_stop_sec": both}
        if values.get("type") is ServiceType.ONESHOT:
            return {"timeout_start_sec": INFINITY}  # systemd: a oneshot has no start timeout
        return {}
    if kind is UnitKind.TARGET:
        return {}
    stem = name.rsplit(".", 1)[0]
    if kind is UnitKind.TIMER:
        return {"unit": f"{stem}.service"}
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
    facts: Callable[[], HostFacts] | None = None,
    instances: Collection[str] = (),
) -> UnitSet:
    """Load and validate the core units and the drop-ins into a `UnitSet`.

    A directory that does not exist contributes nothing (the caller decides whether that
    is an error). With `strict`, every warning is reported as an error. `facts` gives
    the host specifiers (`cinit.io.host_facts.read_host_facts`); without it, only the
    hostname and the kernel release are known. `instances`: instances asked for by name
    (`systemctl start x@a`), made from their templates when those are loaded.
    """
    return load_unit_dirs(
        [drop_in_dir, units_dir],
        strict=strict,
        environ=environ,
        hostname=hostname,
        facts=facts,
        instances=instances,
    )


def load_unit_dirs(
    directories: Sequence[str],
    *,
    strict: bool = False,
    environ: Mapping[str, str] | None = None,
    hostname: str | None = None,
    facts: Callable[[], HostFacts] | None = None,
    instances: Collection[str] = (),
) -> UnitSet:
    """`load_units` over any list of unit directories, highest precedence first (as
    systemd lists its search path): the first directory with an entry for a name decides
    it; every directory's `NAME.d/*.conf` snippets apply. The last directory's units are
    `UnitSource.CORE`, the others' `UnitSource.DROP_IN`.
    """
    # The loader makes many small objects and no cycles: the cyclic GC only costs time here.
    paused = gc.isenabled()
    gc.disable()
    try:
        provider = facts if facts is not None else default_facts(hostname)
        return _load(list(directories), strict, environ, _Facts(provider), instances=instances)
    finally:
        if paused:
            gc.enable()


class _Loading:
    """One load's state: the files found, the units parsed so far, what was said."""

    def __init__(
        self,
        scan: Scan,
        env: Mapping[str, str],
        facts: Callable[[], HostFacts],
        diags: list[Diagnostic],
    ) -> None:
        self.scan = scan
        self.env = env
        self.facts = facts
        self.diags = diags
        self.readings: dict[tuple[str, str, str], _Reading] = {}
        self.texts: dict[str, str | None] = {}
        self.units: dict[str, Unit] = {}
        self.link_aliases: dict[str, list[str]] = {}  # unit -> its alias symlinks
        self.used_stems: set[str] = set()
        self.has_snippets = any(scan.snippets)

    def text(self, path: str) -> str | None:
        """A file's text, read once per load (a template serves all its instances)."""
        if path not in self.texts:
            text, read_diags = read_unit_file(path, path in self.scan.regular)
            self.diags.extend(read_diags)
            self.texts[path] = text
        return self.texts[path]

    def parse(self, name: str, path: str, source: UnitSource, template: str = "") -> Unit | None:
        """Parse `name` from the file `path` (a template's, for an instance) with its
        snippets; the unit is also kept in `units` unless it is a template."""
        text = self.text(path)
        if text is None:
            return None
        sources: list[tuple[str, str]] = [(path, text)]
        snippet_paths: list[str] = []
        if self.has_snippets:  # most unit sets have none: no per-unit work then
            aliases = self.link_aliases.get(name, ())
            from cinit.units import snippets

            self.used_stems.update(snippets.snippet_stems(name, aliases))
            snippet_paths = snippets.snippets_for(name, self.scan.snippets, aliases)
        for snippet in snippet_paths:
            snippet_text = self.text(snippet)
            if snippet_text is not None:
                sources.append((snippet, snippet_text))
        try:
            unit, unit_diags = _parse_unit(
                name, sources, self.env, self.facts, source, self.readings
            )
        except Exception as exc:  # a loader bug: this file is reported, the others still read
            message = f"cannot load this unit file (internal error: {_describe(exc)})"
            self.diags.append(Diagnostic(Severity.ERROR, message, path))
            return None
        self.diags.extend(unit_diags)
        if unit is None:
            return None
        applied = tuple(p for p, _text in sources[1:])
        if applied or template:
            unit = unit.replace(snippets=applied, template=template)
        if not unit_names.is_template(name):
            self.units[name] = unit
        return unit


def _load(
    directories: list[str],
    strict: bool,
    environ: Mapping[str, str] | None,
    facts: Callable[[], HostFacts],
    systemd: SystemdBoot | None = None,
    instances: Collection[str] = (),
) -> UnitSet:
    diags: list[Diagnostic] = [] if systemd is None else list(systemd.findings)
    ignored: list[str] = []
    systemd_dirs = systemd.layout.dirs if systemd is not None else ()
    scan = scan_dirs(directories, diags, ignored, systemd_dirs)
    core_paths = {override.name: override.core_path for override in scan.overrides}
    env = os.environ if environ is None else environ
    loading = _Loading(scan, env, facts, diags)
    templates: dict[str, tuple[str, UnitSource]] = {}
    files: dict[str, tuple[str, UnitSource]] = {}
    for name, path, source in scan.chosen:
        if unit_names.is_template(name):
            templates[name] = (path, source)
        else:
            files[name] = (path, source)
    # Links: an instance of a template (x@a.service -> x@.service), else an alias. A link
    # to a name no directory holds is that unit's file, as systemd loads it.
    alias_map: dict[str, str] = {}
    instance_links: list[tuple[str, str, str]] = []
    for name, (target, link_path) in sorted(scan.links.items()):
        elsewhere = target not in files and target not in templates and target not in scan.links
        if elsewhere and link_path in scan.dangling:
            # systemd: a unit that is not found. Said, but not a reason to refuse the boot.
            message = f"{name} links to {target}, which does not exist: ignored"
            diags.append(Diagnostic(Severity.WARNING, message, link_path))
            continue
        if elsewhere:
            where = templates if unit_names.is_template(target) else files
            where[target] = (link_path, UnitSource.CORE)
        if unit_names.is_template(target) and unit_names.template_of(name) == target:
            instance_links.append((name, target, link_path))
            continue
        alias_map[name] = target
        loading.link_aliases.setdefault(target, []).append(name)
    for name, (path, source) in files.items():
        unit = loading.parse(name, path, source)
        if unit is not None and name in core_paths:
            loading.units[name] = unit.replace(overrides=core_paths[name])
    for name, target, link_path in instance_links:
        _instantiate(loading, name, target, templates, link_path)
    aliases.install_aliases(loading.units, alias_map, diags)
    if loading.has_snippets:
        _reread_for_alias_snippets(loading, alias_map)
    if systemd is not None:  # .wants/ links, before the instances they may name are made
        systemd.link(loading.units, alias_map)
    # Instances asked for by name (made on demand, as systemd does), and those named by a
    # dependency (Requires=x@a.service), come from their template; each may name more.
    for name in sorted(instances):
        real = aliases.resolve(name, alias_map)
        template = unit_names.template_of(real)
        if real not in loading.units and template in templates:
            _instantiate(loading, real, template, templates)
    pending = sorted(loading.units)
    while pending:
        unit = loading.units[pending.pop()]
        for named in aliases.pulled_names(unit):
            real = aliases.resolve(named, alias_map)
            if real in loading.units or not unit_names.is_instance(real):
                continue
            template = unit_names.template_of(real)
            if template in templates and _instantiate(loading, real, template, templates):
                pending.append(real)
    for template, (path, source) in sorted(templates.items()):
        if not any(u.template == template for u in loading.units.values()):
            loading.parse(template, path, source)  # never started: read for its diagnostics
    for name, path in sorted(scan.masked.items()):
        message = f"{name} is masked (a link to /dev/null): not loaded"
        diags.append(Diagnostic(Severity.HINT, message, path))
    _note_unused_snippets(scan, loading.used_stems, diags)
    units = _with_aliases(loading.units, alias_map)
    units.update(implicit_targets(units))  # a target named but defined by no file
    boot: set[str] | None = None
    if systemd is not None:  # cinit --systemd: what starts at boot, what is left out
        boot = systemd.settle(units, diags)
    graph = build_graph(units, boot)
    found = check_units(units, graph)
    if systemd is not None:
        found = systemd.soften(found, units, boot)
    diags.extend(found)
    diags = list(dict.fromkeys(diags))  # a template's or a shared snippet's findings once
    if strict:
        diags = [promote_warning(d) for d in diags]
    template_paths = {name: path for name, (path, _source) in templates.items()}
    return UnitSet(
        units,
        graph,
        tuple(diags),
        scan.overrides,
        strict,
        tuple(ignored),
        aliases={a: r for a, r in alias_map.items() if not unit_names.is_template(a)},
        masked=dict(scan.masked),
        templates=template_paths,
    )


def _reread_for_alias_snippets(loading: _Loading, alias_map: Mapping[str, str]) -> None:
    """Read again the units whose `Alias=` names have snippet directories: systemd applies
    `ALIAS.service.d/` to the unit once enabled, and cinit takes every unit as enabled."""
    extra: dict[str, list[str]] = {}
    for alias, real in alias_map.items():
        if alias in loading.link_aliases.get(real, ()):
            continue  # a link: its snippets were applied already
        if any(alias in listing for listing in loading.scan.snippets):
            extra.setdefault(real, []).append(alias)
    for real, names in sorted(extra.items()):
        unit = loading.units.get(real)
        if unit is None:
            continue  # a template's alias: its instances are read later, with it
        loading.link_aliases.setdefault(real, []).extend(names)
        again = loading.parse(real, unit.path, unit.source, unit.template)
        if again is not None and unit.overrides:
            loading.units[real] = again.replace(overrides=unit.overrides)


def _instantiate(
    loading: _Loading,
    name: str,
    template: str,
    templates: Mapping[str, tuple[str, UnitSource]],
    link_path: str = "",
) -> bool:
    """Load the instance `name` from its template; False when there is none to load."""
    found = templates.get(template)
    if found is None:
        message = f"{name} links to the template {template}, which is not loaded"
        loading.diags.append(Diagnostic(Severity.ERROR, message, link_path))
        return False
    path, source = found
    return loading.parse(name, path, source, template=template) is not None


def _with_aliases(units: dict[str, Unit], alias_map: Mapping[str, str]) -> dict[str, Unit]:
    """Every unit with its references by own names, and the aliases it answers to."""
    if not alias_map:
        return units
    names: dict[str, list[str]] = {}
    for alias in alias_map:
        real = aliases.resolve(alias, alias_map)
        if real in units and alias not in units:
            names.setdefault(real, []).append(alias)
    result: dict[str, Unit] = {}
    for name, unit in units.items():
        unit = aliases.with_own_names(unit, alias_map)
        if name in names:
            unit = unit.replace(aliases=tuple(sorted(names[name])))
        result[name] = unit
    return result


def _note_unused_snippets(scan: Scan, used: set[str], diags: list[Diagnostic]) -> None:
    """A hint for each snippet directory of a unit that is not loaded (systemd is silent)."""
    if not any(scan.snippets):
        return
    from cinit.units.snippets import is_shared_stem

    for listing in scan.snippets:
        for stem, found in sorted(listing.items()):
            if stem in used or is_shared_stem(stem) or not found:
                continue
            directory = found[0][1].rpartition("/")[0]
            message = f"snippets for {stem}, which is not loaded: not applied"
            diags.append(Diagnostic(Severity.HINT, message, directory))


def load_systemd_units(
    root: str = "/",
    units_dir: str = DEFAULT_UNITS_DIR,
    drop_in_dir: str = DEFAULT_DROP_IN_DIR,
    *,
    strict: bool = False,
    environ: Mapping[str, str] | None = None,
    hostname: str | None = None,
    facts: Callable[[], HostFacts] | None = None,
    instances: Collection[str] = (),
) -> UnitSet:
    """`cinit --systemd`: the units of systemd's search path under `root` (see
    `systemd_layout`), with `units_dir` and `drop_in_dir` on top (same name: theirs wins;
    their units start at boot as in the ordinary mode). Only the boot set starts at boot.

    A unit of the search path whose file has errors is not loaded, as systemd leaves a
    unit with a bad setting (a VM image carries many a container has no use for): its
    findings are reported as warnings, marked so, and the boot goes on without it.
    """
    from cinit.units.systemd_layout import SystemdBoot, read_layout

    paused = gc.isenabled()
    gc.disable()
    try:
        diags: list[Diagnostic] = []
        layout = read_layout(root, diags)
        systemd = SystemdBoot(layout, diags)
        provider = facts if facts is not None else default_facts(hostname)
        directories = [drop_in_dir, units_dir, *layout.dirs]
        return _load(directories, strict, environ, _Facts(provider), systemd, instances)
    finally:
        if paused:
            gc.enable()


def promote_warning(diagnostic: Diagnostic) -> Diagnostic:
    """`diagnostic` as --strict-units reports it: a warning becomes an error, marked so."""
    if diagnostic.severity is not Severity.WARNING:
        return diagnostic
    return diagnostic.replace(
        severity=Severity.ERROR, message=diagnostic.message + " [--strict-units]"
    )
