"""`cinit validate` / `cinit --validate`: load the unit directories, report, exit.

Diagnostics go to stderr as `file:line: severity: message` (like `systemd-analyze verify`);
the summary goes to stdout. Exit status: 0 clean, 1 errors (or warnings under
--strict-units). `--json` prints one document on stdout instead.

Besides the units themselves, the programs and users they name are looked for on the
machine validate runs on (`cinit.io.host_checks`: warnings); `--no-host-checks` leaves
that out, for a unit set checked outside the image it is meant for.
"""

from __future__ import annotations

import os
import sys

from cinit import PROG, example_dirs
from cinit.cli.args import Command, Option, read_command_line
from cinit.units import Severity, UnitKind, UnitSet, load_units
from cinit.units.diagnostics import Diagnostic
from cinit.units.loader import DEFAULT_DROP_IN_DIR, DEFAULT_UNITS_DIR, promote_warning

EXIT_OK, EXIT_INVALID = 0, 1

VALIDATE = Command(
    "validate",
    "Check the unit files: file:line diagnostics, a summary.",
    [f"{PROG} validate [options]"],
    "Parse and validate the unit files; print file:line diagnostics (stderr) and a summary.\n"
    "Exit 0 when clean, 1 on errors (or on any warning with --strict-units), 2 on usage errors.",
    [
        Option("--units", f"core unit directory (default: {DEFAULT_UNITS_DIR})", "DIR"),
        Option("--drop-in", f"drop-in directory (default: {DEFAULT_DROP_IN_DIR})", "DIR"),
        Option("--strict-units", "treat every warning as an error"),
        Option("--json", "print one JSON document instead of text"),
        Option("--example", "validate the example unit set embedded in cinit"),
        Option(
            "--systemd",
            "also systemd's unit directories, as `cinit --systemd` boots them\n"
            "(findings about units outside the boot set are listed too)",
        ),
        Option(
            "--systemd-root",
            "read systemd's directories under DIR instead of /\n"
            "(default: $CINIT_SYSTEMD_ROOT, else /)",
            "DIR",
        ),
        Option(
            "--no-host-checks", "do not look for the units' programs and users\non this machine"
        ),
    ],
)


def main(args: list[str]) -> int:
    """`cinit validate [options]`: parse the options, validate, return the exit code."""
    parsed = read_command_line(VALIDATE, args)
    if isinstance(parsed, int):
        return parsed
    values = parsed.values
    units = parsed.text_or("units", DEFAULT_UNITS_DIR)
    drop_in = parsed.text_or("drop_in", DEFAULT_DROP_IN_DIR)
    if values["example"]:
        units, drop_in = example_dirs()
    strict, as_json = bool(values["strict_units"]), bool(values["json"])
    root = None
    if values["systemd"]:
        from cinit.units.systemd_layout import systemd_root

        root = parsed.text("systemd_root") or systemd_root(os.environ)
    elif parsed.text("systemd_root") is not None:
        print(f"{PROG} validate: --systemd-root goes with --systemd", file=sys.stderr)
        return 2
    checks = not values["no_host_checks"]
    return run_validate(units, drop_in, strict, as_json, checks, systemd_root=root)


def run_validate(
    units_dir: str,
    drop_in_dir: str,
    strict: bool,
    as_json: bool = False,
    host_checks: bool = True,
    *,
    systemd_root: str | None = None,
) -> int:
    """Validate the two directories; print diagnostics and a summary; return the exit code.

    With `host_checks`, the units' programs and users are also looked for on this machine.
    With `systemd_root`, systemd's unit directories under it are loaded too, as
    `cinit --systemd` does.
    """
    from cinit.io.host_facts import read_host_facts

    if systemd_root is not None:
        from cinit.units.loader import load_systemd_units

        unit_set = load_systemd_units(
            systemd_root, units_dir, drop_in_dir, strict=strict, facts=read_host_facts
        )
    else:
        unit_set = load_units(units_dir, drop_in_dir, strict=strict, facts=read_host_facts)
    if host_checks and unit_set.units:
        from cinit.io.host_checks import check_against_host

        found = check_against_host(unit_set)
        if strict:
            found = [promote_warning(d) for d in found]
        unit_set = unit_set.replace(diagnostics=unit_set.diagnostics + tuple(found))
    missing: list[Diagnostic] = []
    if systemd_root is None and not os.path.isdir(units_dir) and not os.path.isdir(drop_in_dir):
        message = f"no unit directories: neither {units_dir} nor {drop_in_dir} exists"
        missing.append(Diagnostic(Severity.ERROR, message, units_dir))
    diagnostics = list(unit_set.diagnostics) + missing
    ok = unit_set.ok and not missing
    if as_json:
        import json  # only for --json: keeps the common path's start-up short

        print(json.dumps(_document(unit_set, diagnostics, ok, units_dir, drop_in_dir), indent=2))
        return EXIT_OK if ok else EXIT_INVALID
    for override in unit_set.overrides:
        print(override.log_line(PROG), file=sys.stderr)
    for line in unit_set.snippet_lines(PROG):
        print(line, file=sys.stderr)
    for diagnostic in diagnostics:
        print(diagnostic.format(), file=sys.stderr)
    print(_summary(unit_set, diagnostics, ok, systemd_root is not None))
    return EXIT_OK if ok else EXIT_INVALID


def _count(diagnostics: list[Diagnostic], severity: Severity) -> int:
    return sum(1 for d in diagnostics if d.severity is severity)


def _summary(
    unit_set: UnitSet, diagnostics: list[Diagnostic], ok: bool, systemd: bool = False
) -> str:
    units = unit_set.units.values()
    services = sum(1 for u in units if u.kind is UnitKind.SERVICE)
    targets = sum(1 for u in units if u.kind is UnitKind.TARGET)
    timers = sum(1 for u in units if u.kind is UnitKind.TIMER)
    sockets = len(unit_set.units) - services - targets - timers
    kinds = f"{services} services, {sockets} sockets" + (f", {targets} targets" if targets else "")
    kinds += f", {timers} timers" if timers else ""
    errors = _count(diagnostics, Severity.ERROR)
    warnings = _count(diagnostics, Severity.WARNING)
    hints = _count(diagnostics, Severity.HINT)
    notes = _count(diagnostics, Severity.NOTE)
    lines = [
        f"{len(unit_set.units)} units ({kinds}), "
        f"{len(unit_set.overrides)} overrides, {warnings} warnings, {errors} errors"
        + (f", {hints} hints" if hints else "")
        + (f", {notes} notes" if notes else ""),
    ]
    if ok:
        lines.append("start order: " + (" ".join(unit_set.start_order()) or "(none)"))
        if systemd:  # most of an image's units do not start: say which do
            lines.append("boot set: " + (" ".join(unit_set.graph.boot_units()) or "(none)"))
        lines.append("ok")
    else:
        lines.append("invalid" + (" (--strict-units)" if unit_set.strict else ""))
    return "\n".join(lines)


def _document(
    unit_set: UnitSet,
    diagnostics: list[Diagnostic],
    ok: bool,
    units_dir: str,
    drop_in_dir: str,
) -> dict[str, object]:
    return {
        "ok": ok,
        "strict": unit_set.strict,
        "units_dir": units_dir,
        "drop_in_dir": drop_in_dir,
        "units": [
            {
                "name": unit.name,
                "kind": unit.kind.value,
                "path": unit.path,
                "source": unit.source.value,
                "overrides": unit.overrides or None,
                "snippets": list(unit.snippets),
                "aliases": list(unit.aliases),
                "template": unit.template or None,
            }
            for unit in unit_set.units.values()
        ],
        "overrides": [
            {"unit": o.name, "core_path": o.core_path, "drop_in_path": o.drop_in_path}
            for o in unit_set.overrides
        ],
        "diagnostics": [d.to_json() for d in diagnostics],
        "counts": {
            "units": len(unit_set.units),
            "errors": _count(diagnostics, Severity.ERROR),
            "warnings": _count(diagnostics, Severity.WARNING),
            "hints": _count(diagnostics, Severity.HINT),
            "notes": _count(diagnostics, Severity.NOTE),
        },
        "start_order": unit_set.start_order() if ok else [],
        "boot_units": unit_set.graph.boot_units() if ok else [],
        "ignored_files": list(unit_set.ignored_files),
        "aliases": dict(sorted(unit_set.aliases.items())),
        "templates": sorted(unit_set.templates),
        "masked": sorted(unit_set.masked),
    }
