"""systemctl's unit-file verbs: cat, is-enabled, list-unit-files, enable, disable, reenable,
mask, unmask, preset, get-default, set-default.

They work on the files, with or without a running cinit (`RUN systemctl enable nginx` in an
image build, a chroot, `--root=DIR`), and make exactly the links `systemctl --root=DIR`
makes: `cinit.units.install` decides, `cinit.io.unit_links` writes below the root. Messages
go to stderr as systemctl's do ("Created symlink A → B.", 'Removed "A".'); -q silences them.

Units in cinit's own directories (/etc/container-init/units, /etc/container-init.d) all
start at boot: is-enabled says "enabled", enable is a no-op with a note, disable and mask
refuse (remove the file instead). See docs/systemctl.md, "Unit files".
"""

from __future__ import annotations

import os
import sys

from cinit.boot_path import TYPE_CHECKING
from cinit.cli.systemctl import EXIT_FAILED, EXIT_OK
from cinit.io.unit_links import LinkError, apply, host_path
from cinit.units import install
from cinit.units.loader import DEFAULT_DROP_IN_DIR, DEFAULT_UNITS_DIR

if TYPE_CHECKING:
    from collections.abc import Callable

    from cinit.cli.systemctl import Call

OWN_DIRS = (DEFAULT_UNITS_DIR, DEFAULT_DROP_IN_DIR)


def _files(call: Call) -> install.UnitFiles | None:
    """The unit files the call works on (None: it failed, and said why)."""
    paths = [name for name in call.units if "/" in name]
    if paths and call.verb != "set-default":
        call.fail(
            f"Failed to {call.verb} {paths[0]}: unit files given by path (systemctl link) "
            "are not supported by cinit: copy the file to /etc/systemd/system"
        )
        return None
    root = call.text("root") or "/"
    if not os.path.isdir(root):
        call.fail(f"--root={root}: no such directory")
        return None
    return install.UnitFiles(os.path.abspath(root), OWN_DIRS)


def _say(call: Call) -> Callable[[str], None]:
    def say(line: str) -> None:
        if not call.flag("quiet"):
            sys.stderr.write(line + "\n")

    return say


def _carry_out(call: Call, files: install.UnitFiles, plan: install.Plan) -> int:
    """Make `plan`'s links, print its lines; the exit status."""
    say = _say(call)
    for step in plan.steps:
        if isinstance(step, str):
            say(step)
            continue
        try:
            apply(files.root, [step], say)
        except LinkError as exc:
            return call.fail(f"Failed to change {exc.filename}: {exc.strerror}")
        except OSError as exc:
            return call.fail(f"Failed to change {host_path(files.root, step.path)}: {exc.strerror}")
    if plan.error:
        return call.fail(plan.error)
    if plan.soft_error:
        call.fail(plan.soft_error)
    return EXIT_OK


def _on_files(verb: Callable[[Call, install.UnitFiles], int]) -> Callable[[Call], int]:
    """A verb's handler: `verb(call, files)` once the unit files are read (1 if they cannot be)."""

    def handler(call: Call) -> int:
        files = _files(call)
        return EXIT_FAILED if files is None else verb(call, files)

    handler.__name__, handler.__doc__ = verb.__name__, verb.__doc__
    return handler


def _own_units(call: Call, files: install.UnitFiles, verb: str) -> tuple[list[str], int]:
    """The names that are systemd's (the others are in cinit's own directories: a note for
    enable, an error for disable and mask); the status so far."""
    kept: list[str] = []
    status = EXIT_OK
    for name in call.units:
        unit = install.mangle(name)
        own = files.own_unit(unit) if files.find(unit) is None else None
        if own is None:
            kept.append(name)
        elif verb == "enable":
            _say(call)(f"{unit} is in {own.rpartition('/')[0]}: cinit starts every unit there "
                       "at boot (nothing to enable).")  # fmt: skip
        else:
            status = call.fail(
                f"Failed to {verb} unit: {unit} is in {own.rpartition('/')[0]}, whose units "
                f"cinit starts at boot: remove {host_path(files.root, own)} instead."
            )
    return kept, status


@_on_files
def enable(call: Call, files: install.UnitFiles) -> int:
    """`systemctl enable UNIT...`: the [Install] links."""
    names, status = _own_units(call, files, "enable")
    if not names:
        return status
    return _carry_out(call, files, install.enable(files, names, force=call.flag("force")))


@_on_files
def disable(call: Call, files: install.UnitFiles) -> int:
    """`systemctl disable UNIT...`: remove the [Install] links."""
    names, status = _own_units(call, files, "disable")
    if status != EXIT_OK:
        return status
    return _carry_out(call, files, install.disable(files, names))


@_on_files
def reenable(call: Call, files: install.UnitFiles) -> int:
    """`systemctl reenable UNIT...`: disable, then enable."""
    names, status = _own_units(call, files, "enable")
    if not names:
        return status
    plan = install.disable(files, names)
    plan.soft_error = ""
    status = _carry_out(call, files, plan)
    if status != EXIT_OK:
        return status
    return _carry_out(call, files, install.enable(files, names, force=call.flag("force")))


@_on_files
def mask(call: Call, files: install.UnitFiles) -> int:
    """`systemctl mask UNIT...`: link to /dev/null."""
    names, status = _own_units(call, files, "mask")
    if status != EXIT_OK:
        return status
    return _carry_out(call, files, install.mask(files, names, force=call.flag("force")))


@_on_files
def unmask(call: Call, files: install.UnitFiles) -> int:
    """`systemctl unmask UNIT...`: remove the /dev/null links."""
    return _carry_out(call, files, install.unmask(files, call.units))


@_on_files
def preset(call: Call, files: install.UnitFiles) -> int:
    """`systemctl preset UNIT...`: enable or disable each as the preset files say."""
    names, status = _own_units(call, files, "enable")
    rules = install.preset_rules(files)
    wanted = [n for n in names if install.preset_of(rules, install.mangle(n)) == "enable"]
    unwanted = [n for n in names if n not in wanted]
    plan = install.Plan()
    if unwanted:
        disabled = install.disable(files, unwanted, verb="preset")
        disabled.error, disabled.soft_error = disabled.soft_error, ""  # unknown: exit 1 here
        plan.extend(disabled)
    if wanted:
        enabled = install.enable(files, wanted, force=call.flag("force"), verb="preset")
        enabled.steps = [s for s in enabled.steps if s != install.NO_INSTALL_NOTE]
        plan.extend(enabled)
    return _carry_out(call, files, plan) or status


@_on_files
def set_default(call: Call, files: install.UnitFiles) -> int:
    """`systemctl set-default TARGET`: the default.target link."""
    return _carry_out(call, files, install.set_default(files, call.units[0]))


@_on_files
def get_default(call: Call, files: install.UnitFiles) -> int:
    """`systemctl get-default`: the target default.target names."""
    target = install.get_default(files)
    if target is None:
        return call.fail("Failed to get default target: No such file or directory")
    sys.stdout.write(target + "\n")
    return EXIT_OK


@_on_files
def is_enabled(call: Call, files: install.UnitFiles) -> int:
    """`systemctl is-enabled UNIT...`: each unit's state; 0 when one is enabled-like."""
    good = False
    for name in call.units:
        unit = install.mangle(name)
        value = install.state(files, unit)
        if value is None:
            return call.fail(f"Failed to get unit file state for {unit}: No such file or directory")
        if not call.flag("quiet"):
            sys.stdout.write(value + "\n")
        good = good or install.is_enabled_ok(value)
    return EXIT_OK if good else EXIT_FAILED


@_on_files
def list_unit_files(call: Call, files: install.UnitFiles) -> int:
    """`systemctl list-unit-files [PATTERN...]`: every unit file, its state and preset."""
    import fnmatch

    rows = install.list_unit_files(files)
    known = {row[0] for row in rows}
    for name in sorted(_own_names(files)):
        if name not in known:
            rows.append((name, "enabled", "-"))
    rows.sort(key=lambda row: (row[0].rpartition(".")[2].lower(), row[0].lower()))
    if call.units:
        rows = [r for r in rows if any(fnmatch.fnmatchcase(r[0], p) for p in call.units)]
    states = call.listed("state")
    if states:
        rows = [r for r in rows if r[1] in states]
    types = [t.lstrip(".") for t in call.listed("type")]
    if types:
        rows = [r for r in rows if r[0].rpartition(".")[2] in types]
    legend = not call.flag("no_legend")
    table = [("UNIT FILE", "STATE", "PRESET"), *rows] if legend else rows
    out = sys.stdout
    if table:
        widths = [max(len(row[i]) for row in table) for i in range(2)]
        for row in table:
            out.write(f"{row[0]:<{widths[0]}} {row[1]:<{widths[1]}} {row[2]}\n")
    if legend:
        out.write(f"\n{len(rows)} unit files listed.\n")
    return EXIT_OK if rows else EXIT_FAILED  # none listed: 1, as systemctl 252


def _own_names(files: install.UnitFiles) -> list[str]:
    names: list[str] = []
    for directory in files.extra_dirs:
        try:
            entries = os.listdir(files.host(directory))
        except OSError:
            continue
        names.extend(
            e
            for e in entries
            if e.endswith(install.UNIT_SUFFIXES) and os.path.isfile(files.host(f"{directory}/{e}"))
        )
    return names


@_on_files
def cat(call: Call, files: install.UnitFiles) -> int:
    """`systemctl cat UNIT...`: each unit's file ("# PATH", its text), then its drop-ins."""
    status = EXIT_OK
    first = True
    for name in call.units:
        unit = install.mangle(name)
        found = files.find(unit)
        if found is not None and found.masked:
            status = call.fail(f"Unit {unit} is masked.")
            continue
        path = found.path if found is not None else files.own_unit(unit)
        if path is None:
            status = call.fail(f"No files found for {unit}.")
            continue
        shown = [path, *_drop_ins(files, unit, found is None)]
        for index, piece in enumerate(shown):
            text = _read(files, piece)
            if text is None:
                status = call.fail(f"Failed to read {host_path(files.root, piece)}.")
                continue
            if not first or index:
                sys.stdout.write("\n")
            first = False
            sys.stdout.write(f"# {piece}\n{text}")
            if text and not text.endswith("\n"):
                sys.stdout.write("\n")
    return status


def _drop_ins(files: install.UnitFiles, unit: str, own: bool) -> list[str]:
    """The drop-in files of `unit` (NAME.d/*.conf, its template's), a name in a higher
    directory hiding the same name below, in file-name order."""
    from cinit.units.unit_names import template_of

    stems = [s for s in (template_of(unit), unit) if s]
    dirs = [d for d, _k in files.dirs] if not own else list(files.extra_dirs)
    chosen: dict[str, str] = {}
    for stem in stems:
        for directory in dirs:
            folder = f"{directory}/{stem}.d"
            try:
                entries = os.listdir(files.host(folder))
            except OSError:
                continue
            for entry in entries:
                if entry.endswith(".conf") and entry not in chosen:
                    chosen[entry] = f"{folder}/{entry}"
    return [chosen[e] for e in sorted(chosen)]


def _read(files: install.UnitFiles, path: str) -> str | None:
    from cinit.units.scan import read_unit_file

    resolved = files.resolve(path)
    if resolved is None:
        return None
    text, _diags = read_unit_file(files.host(resolved), known_regular=False)
    return text
