"""systemctl's unit-file verbs, decided: enable, disable, mask, preset, is-enabled, ...

Works on the unit files below a root directory (`/` in an image, `--root=DIR` otherwise),
the way `systemctl --root=DIR` does (systemd 252, Debian 12: the tests compare with it):

- the search path is systemd's (systemd.unit(5)), highest precedence first; the first
  directory holding a name decides what it is (`systemd_layout.SEARCH_DIRS`, plus
  /usr/local/lib/systemd/system, the transient and the generator directories);
- `enable` reads the unit's [Install] section (systemd.unit(5)): `Alias=` makes
  /etc/systemd/system/ALIAS, `WantedBy=T` /etc/systemd/system/T.wants/NAME, `RequiredBy=`
  T.requires/, `UpheldBy=` T.upholds/; `Also=` enables those units too; a template
  (`foo@.service`) is enabled for its `DefaultInstance=`, an instance (`foo@bar.service`)
  for itself. Every link points at the unit file's path in the search path (not the file
  it may link to);
- `disable` removes every link below /etc/systemd/system named like the unit, or pointing at
  its file (or at a file of its name), for the unit and its `Also=` units;
- `mask` links /etc/systemd/system/NAME to /dev/null, `unmask` removes such a link (or an
  empty file) there;
- the presets are systemd.preset(5)'s: `*.preset` files (a name in a higher directory hides the
  same name below), read in file-name order, the first matching line decides; no line: enable.

Only the [Install] section is read (not the unit through `loader`): every unit type has one
(`.timer`, `.mount`, ... too), and a unit whose other sections cinit would reject can still be
enabled, as with systemctl.

This module decides only: it reads directories, links and files below the root (as
`systemd_layout` does) and returns `Plan`s of link operations; `cinit.io.unit_links` carries
them out, safely, below the root.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath

from cinit.boot_path import TYPE_CHECKING
from cinit.units._files import read_regular_file
from cinit.units.scan import read_unit_file
from cinit.units.syntax import parse_syntax
from cinit.units.systemd_layout import LOADED_SUFFIXES, OTHER_SUFFIXES, SEARCH_DIRS
from cinit.units.unit_names import is_instance, is_template, split_name, template_of

if TYPE_CHECKING:
    from collections.abc import Iterable

CONFIG_DIR = SEARCH_DIRS[0]  # /etc/systemd/system: where enable and mask write
RUNTIME_DIR = SEARCH_DIRS[1]  # /run/systemd/system
# (directory, kind): systemd 252's system search path, highest precedence first.
SEARCH_PATH: tuple[tuple[str, str], ...] = (
    ("/run/systemd/transient", "transient"),
    ("/run/systemd/generator.early", "generated"),
    (CONFIG_DIR, "config"),
    (RUNTIME_DIR, "runtime"),
    ("/run/systemd/generator", "generated"),
    ("/usr/local/lib/systemd/system", "vendor"),
    *((directory, "vendor") for directory in SEARCH_DIRS[2:]),
    ("/run/systemd/generator.late", "generated"),
)
PRESET_DIRS = (
    "/etc/systemd/system-preset",
    "/run/systemd/system-preset",
    "/usr/local/lib/systemd/system-preset",
    "/lib/systemd/system-preset",
    "/usr/lib/systemd/system-preset",
)
DEV_NULL = "/dev/null"
UNIT_SUFFIXES = LOADED_SUFFIXES + OTHER_SUFFIXES  # every unit type systemctl names
LINK_DIRS = {"wanted_by": ".wants", "required_by": ".requires", "upheld_by": ".upholds"}
# is-enabled exits 0 for these states, 1 for the others (systemctl(1), and systemctl 252).
ENABLED_STATES = frozenset(
    {"enabled", "enabled-runtime", "static", "indirect", "alias", "generated", "transient"}
)
# systemctl's note for a unit with nothing to enable (the blank line holds one space, as there).
NO_INSTALL_NOTE = "\n".join(
    (
        "The unit files have no installation config (WantedBy=, RequiredBy=, Also=,",
        "Alias= settings in the [Install] section, and DefaultInstance= for template",
        "units). This means they are not meant to be enabled using systemctl.",
        " ",
        "Possible reasons for having this kind of units are:",
        "\u2022 A unit may be statically enabled by being symlinked from another unit's",
        "  .wants/ or .requires/ directory.",
        "\u2022 A unit's purpose may be to act as a helper for some other unit which has",
        "  a requirement dependency on it.",
        "\u2022 A unit may be started when needed via activation (socket, path, timer,",
        "  D-Bus, udev, scripted systemctl call, ...).",
        "\u2022 In case of template units, the unit is meant to be enabled with some",
        "  instance name specified.",
    )
)
_MAX_HOPS = 16
_PRESET_LIMIT = 1024 * 1024  # a preset file larger than this is read that far


class Found:
    """A name's deciding entry in the search path."""

    __slots__ = ("directory", "kind", "link", "masked", "name", "path")

    def __init__(
        self, name: str, directory: str, kind: str, link: str | None, masked: bool
    ) -> None:
        self.name = name  # the name looked up (for an instance: its template's file name)
        self.directory = directory  # inside the root
        self.kind = kind  # SEARCH_PATH's kind
        self.path = f"{directory}/{name}"  # inside the root
        self.link = link  # where the entry links to (inside the root), None: a file
        self.masked = masked


class Install:
    """A unit file's [Install] section (values with their specifiers expanded)."""

    __slots__ = ("alias", "also", "default_instance", "required_by", "upheld_by", "wanted_by")

    def __init__(self) -> None:
        self.wanted_by: list[str] = []
        self.required_by: list[str] = []
        self.upheld_by: list[str] = []
        self.alias: list[str] = []
        self.also: list[str] = []
        self.default_instance = ""

    def links_anything(self) -> bool:
        """Whether enable would make a link (static units make none)."""
        return bool(self.wanted_by or self.required_by or self.upheld_by or self.alias)


class Op:
    """One link operation: `target` None removes `path`, else links `path` -> `target`
    (replacing what is there when `replace`). Paths are inside the root."""

    __slots__ = ("directory", "path", "replace", "target")

    def __init__(
        self, path: str, target: str | None, replace: bool = False, directory: bool = False
    ) -> None:
        self.path = path
        self.target = target
        self.replace = replace
        self.directory = directory  # remove the (empty) directory `path`

    def __repr__(self) -> str:
        return f"Op({self.path!r}, {self.target!r})"


class Plan:
    """What a verb does: steps (link operations, and notes to print on stderr between them,
    as systemctl prints them), and an error (exit 1; the steps before it are carried out,
    as systemctl makes them too)."""

    __slots__ = ("error", "soft_error", "steps")

    def __init__(self) -> None:
        self.steps: list[Op | str] = []
        self.error = ""  # exit 1
        self.soft_error = ""  # printed, exit 0 (systemctl disable of an unknown unit)

    @property
    def ops(self) -> list[Op]:
        """The link operations alone."""
        return [step for step in self.steps if isinstance(step, Op)]

    def extend(self, other: Plan) -> None:
        """Append `other`'s steps and errors (reenable, preset: two plans in one)."""
        self.steps.extend(other.steps)
        self.error = self.error or other.error
        self.soft_error = self.soft_error or other.soft_error


def mangle(name: str, suffix: str = ".service") -> str:
    """A unit name as systemctl completes it: `nginx` -> `nginx.service` (a path: its
    file name)."""
    if "/" in name:
        return name
    return name if name.endswith(UNIT_SUFFIXES) else name + suffix


class UnitFiles:
    """The unit files below `root` (see the module docstring)."""

    def __init__(self, root: str = "/", extra_dirs: Iterable[str] = ()) -> None:
        self.root = root.rstrip("/") or "/"
        dirs: list[tuple[str, str]] = []
        seen: set[str] = set()
        for directory, kind in SEARCH_PATH:
            host = self.host(directory)
            if not os.path.isdir(host):
                continue
            real = os.path.realpath(host)
            if real not in seen:  # merged /usr: /lib is /usr/lib
                seen.add(real)
                dirs.append((directory, kind))
        self.dirs = tuple(dirs)
        self.extra_dirs = tuple(d.rstrip("/") for d in extra_dirs if os.path.isdir(self.host(d)))
        self._install: dict[str, Install | None] = {}

    # -- paths ----------------------------------------------------------------------------

    def host(self, path: str) -> str:
        """Where a path inside the root is on this machine."""
        return path if self.root == "/" else self.root + path

    def link_of(self, path: str) -> str | None:
        """The target of the symlink at `path` (inside the root, normalized), or None."""
        try:
            target = os.readlink(self.host(path))
        except OSError:
            return None
        return posixpath.normpath(posixpath.join(posixpath.dirname(path), target))

    def resolve(self, path: str) -> str | None:
        """`path` with symlinks followed inside the root (None: a loop)."""
        for _ in range(_MAX_HOPS):
            target = self.link_of(path)
            if target is None:
                return path
            path = target
        return None

    def is_masked(self, path: str, link: str | None) -> bool:
        """Whether the entry at `path` masks: a link to /dev/null, or an empty file."""
        if link == DEV_NULL:
            return True
        resolved = self.resolve(path)
        try:
            return resolved is not None and os.path.getsize(self.host(resolved)) == 0
        except OSError:
            return False

    # -- lookup ---------------------------------------------------------------------------

    def find(self, name: str) -> Found | None:
        """The deciding entry for `name` (for an instance without a file of its own: its
        template's), or None."""
        for lookup in (name, template_of(name)):
            if not lookup:
                continue
            for directory, kind in self.dirs:
                path = f"{directory}/{lookup}"
                if os.path.lexists(self.host(path)):
                    link = self.link_of(path)
                    return Found(lookup, directory, kind, link, self.is_masked(path, link))
        return None

    def names(self) -> list[str]:
        """Every unit name the search path holds (files and links, not directories)."""
        found: set[str] = set()
        for directory, _kind in self.dirs:
            try:
                entries = os.listdir(self.host(directory))
            except OSError:
                continue
            for entry in entries:
                path = self.host(f"{directory}/{entry}")
                # a directory named like a unit is no unit file; a link to one still names it
                if entry.endswith(UNIT_SUFFIXES) and (
                    os.path.islink(path) or not os.path.isdir(path)
                ):
                    found.add(entry)
        return sorted(found)

    def own_unit(self, name: str) -> str | None:
        """The file of `name` in cinit's own directories (every unit there starts at boot)."""
        for directory in self.extra_dirs:
            for lookup in (name, template_of(name)):
                if lookup and os.path.isfile(self.host(f"{directory}/{lookup}")):
                    return f"{directory}/{lookup}"
        return None

    def install(self, found: Found, instance_name: str) -> Install | None:
        """The [Install] section of `found`'s file, for the unit `instance_name` (None:
        unreadable)."""
        key = f"{found.path}\0{instance_name}"
        if key not in self._install:
            self._install[key] = self._read_install(found, instance_name)
        return self._install[key]

    def _read_install(self, found: Found, name: str) -> Install | None:
        resolved = self.resolve(found.path)
        if resolved is None:
            return None
        text, _diags = read_unit_file(self.host(resolved), known_regular=False)
        if text is None:
            return None
        info = Install()
        for row in parse_syntax(text, found.path).assignments:
            if row.section != "Install":
                continue
            value = _expand(row.value, name)
            if row.key == "DefaultInstance":
                info.default_instance = value.strip()
                continue
            field = _LIST_KEYS.get(row.key)
            if field is None:
                continue  # not a key enable reads
            held: list[str] = getattr(info, field)
            if value.strip():
                held.extend(value.split())
            else:
                held.clear()  # an empty assignment resets the list (systemd.unit(5))
        return info

    def count_entries(self, directory: str) -> int:
        """How many entries `directory` (inside the root) holds (-1: unreadable)."""
        try:
            return len(os.listdir(self.host(directory)))
        except OSError:
            return -1

    # -- the config links -----------------------------------------------------------------

    def config_links(self, directory: str) -> list[tuple[str, str]]:
        """Every symlink below `directory` (inside the root), recursively: (path, target)."""
        found: list[tuple[str, str]] = []
        host = self.host(directory)
        for parent, subdirs, files in os.walk(host):
            subdirs.sort()
            inner = directory + parent[len(host) :]
            for entry in sorted(files + [d for d in subdirs if os.path.islink(f"{parent}/{d}")]):
                path = f"{inner}/{entry}"
                target = self.link_of(path)
                if target is not None:
                    found.append((path, target))
        return found


# [Install] keys that hold lists of names -> Install's field.
_LIST_KEYS = {
    "WantedBy": "wanted_by",
    "RequiredBy": "required_by",
    "UpheldBy": "upheld_by",
    "Alias": "alias",
    "Also": "also",
}


def _expand(value: str, name: str) -> str:
    """The specifiers [Install] values use most: %n %N %p %i %j %%."""
    if "%" not in value:
        return value
    prefix, instance, suffix = split_name(name)
    table = {
        "n": name,
        "N": name[: -len(suffix)] if suffix else name,
        "p": prefix,
        "i": instance or "",
        "I": instance or "",
        "j": prefix.rpartition("-")[2],
        "%": "%",
    }
    out: list[str] = []
    index = 0
    while index < len(value):
        char = value[index]
        if char == "%" and index + 1 < len(value):
            out.append(table.get(value[index + 1], value[index : index + 2]))
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _with_instance(name: str, instance: str) -> str:
    prefix, _old, suffix = split_name(name)
    return f"{prefix}@{instance}{suffix}"


# -- the verbs ------------------------------------------------------------------------------


def enable(
    files: UnitFiles, names: Iterable[str], *, force: bool = False, verb: str = "enable"
) -> Plan:
    """`systemctl enable NAME...` (and `preset` for the names the presets enable: `verb`
    names it in the messages)."""
    plan = Plan()
    done: set[str] = set()
    todo = [mangle(n) for n in names]
    had_links = False
    while todo and not plan.error:
        name = todo.pop(0)
        if name in done:
            continue
        done.add(name)
        found = files.find(name)
        if found is None:
            plan.error = f"Failed to {verb} unit, unit {name} does not exist."
            break
        if found.masked:
            plan.error = f"Failed to {verb} unit, unit {files.host(found.path)} is masked."
            break
        if found.link is not None and posixpath.basename(found.link) != found.name:
            plan.error = f"Failed to {verb} unit, refusing to operate on linked unit file {name}."
            break
        info = files.install(found, name)
        if info is None:
            plan.error = f"Failed to {verb} unit: cannot read {files.host(found.path)}."
            break
        # A linked unit file (/etc/systemd/system/x.service -> /opt/x.service): the links
        # point at the file itself, as systemctl makes them.
        unit_path = (files.resolve(found.path) or found.path) if found.link else found.path
        own = name
        if is_template(name):
            own = _with_instance(name, info.default_instance) if info.default_instance else ""
        if info.links_anything():
            had_links = True
        for alias in info.alias:
            if is_template(alias) and is_instance(name):  # an instance's alias: the same one
                alias = _with_instance(alias, split_name(name)[1] or "")
            _link(files, plan, f"{CONFIG_DIR}/{alias}", unit_path, force, verb)
        for field, kind in LINK_DIRS.items():
            for target in getattr(info, field):
                if is_template(target):
                    continue
                if not own:
                    plan.error = (
                        f"Failed to enable {name}, destination unit {target} is a "
                        "non-template unit."
                    )
                    return plan
                _link(files, plan, f"{CONFIG_DIR}/{target}{kind}/{own}", unit_path, force, verb)
                if files.find(target) is None:
                    plan.steps.append(
                        f"Unit {files.host(found.path)} is added as a dependency to a "
                        f"non-existent unit {target}."
                    )
        if info.also:
            had_links = True
        todo.extend(mangle(n) for n in info.also)
    if not plan.error and not had_links:
        plan.steps.append(NO_INSTALL_NOTE)
    return plan


def _link(
    files: UnitFiles, plan: Plan, path: str, target: str, force: bool, verb: str = "enable"
) -> None:
    """Add the operation `path -> target` unless it is there (an error when something else
    is, without --force)."""
    host = files.host(path)
    if os.path.lexists(host):
        present = files.link_of(path)
        if present == target:
            return
        if not force:
            what = f"is a symlink to {present}" if present is not None else "exists"
            plan.error = f"Failed to {verb} unit: File {host} already {what}."
            return
        plan.steps.append(Op(path, target, replace=True))
        return
    if any(op.path == path for op in plan.ops):
        return
    plan.steps.append(Op(path, target))


def disable(files: UnitFiles, names: Iterable[str], verb: str = "disable") -> Plan:
    """`systemctl disable NAME...`: see the module docstring (`verb`: as in `enable`)."""
    plan = Plan()
    marks: set[str] = set()
    done: set[str] = set()
    todo = [mangle(n) for n in names]
    while todo:
        name = todo.pop(0)
        if name in done:
            continue
        done.add(name)
        found = files.find(name)
        if found is None:
            plan.soft_error = f"Failed to {verb} unit, unit {name} does not exist."
            continue
        if found.masked:
            plan.steps.append(f"Unit {files.host(found.path)} is masked, ignoring.")
            continue
        marks.add(name)
        if not is_instance(name):
            marks.add(found.path)
        info = files.install(found, name)
        if info is not None:
            todo.extend(mangle(n) for n in info.also)
    if plan.soft_error and not marks:
        return plan
    emptied: dict[str, int] = {}
    for path, target in files.config_links(CONFIG_DIR):
        if target == DEV_NULL:
            continue
        if (
            posixpath.basename(path) in marks
            or target in marks
            or (posixpath.basename(target) in marks)
        ):
            plan.steps.append(Op(path, None))
            parent = posixpath.dirname(path)
            emptied[parent] = emptied.get(parent, 0) + 1
    # systemctl removes a .wants/ (or any) directory it emptied, not /etc/systemd/system.
    for parent, removed in emptied.items():
        if parent != CONFIG_DIR and files.count_entries(parent) == removed:
            plan.steps.append(Op(parent, None, directory=True))
    return plan


def mask(files: UnitFiles, names: Iterable[str], *, force: bool = False) -> Plan:
    """`systemctl mask NAME...`: /etc/systemd/system/NAME -> /dev/null."""
    plan = Plan()
    for raw in names:
        name = mangle(raw)
        path = f"{CONFIG_DIR}/{name}"
        host = files.host(path)
        if os.path.lexists(host):
            present = files.link_of(path)
            if present == DEV_NULL:
                continue
            if not force:
                plan.error = f"Failed to mask unit: File {host} already exists."
                return plan
            plan.steps.append(Op(path, DEV_NULL, replace=True))
            continue
        plan.steps.append(Op(path, DEV_NULL))
    return plan


def unmask(files: UnitFiles, names: Iterable[str]) -> Plan:
    """`systemctl unmask NAME...`: remove /etc/systemd/system/NAME when it masks (a link to
    /dev/null, or an empty file); a mask in /run stays (systemctl unmask without --runtime)."""
    plan = Plan()
    for raw in names:
        path = f"{CONFIG_DIR}/{mangle(raw)}"
        if os.path.lexists(files.host(path)) and files.is_masked(path, files.link_of(path)):
            plan.steps.append(Op(path, None))
    return plan


def set_default(files: UnitFiles, name: str) -> Plan:
    """`systemctl set-default NAME`: /etc/systemd/system/default.target -> its file."""
    plan = Plan()
    name = mangle(name, ".target")
    found = files.find(name)
    if found is None:
        plan.error = f"Failed to set default unit, unit {name} does not exist."
        return plan
    if found.masked:
        plan.error = f"Failed to set default unit, unit {files.host(found.path)} is masked."
        return plan
    path = f"{CONFIG_DIR}/default.target"
    present = files.link_of(path)
    if present == found.path:
        return plan
    if os.path.lexists(files.host(path)):
        plan.steps.append(Op(path, None))
    plan.steps.append(Op(path, found.path))
    return plan


def get_default(files: UnitFiles) -> str | None:
    """The target default.target names (None: there is no default.target)."""
    found = files.find("default.target")
    if found is None:
        return None
    if found.link is None:
        return "default.target"
    resolved = files.resolve(found.path)  # the last name in the chain of links
    return posixpath.basename(resolved if resolved is not None else found.link)


def state(files: UnitFiles, name: str) -> str | None:
    """What `systemctl is-enabled NAME` says (None: no such unit file)."""
    name = mangle(name)
    found = files.find(name)
    if found is None:
        return "enabled" if files.own_unit(name) else None
    if found.masked:
        return "masked-runtime" if found.kind == "runtime" else "masked"
    if found.kind in ("generated", "transient"):
        return found.kind
    if found.link is not None and posixpath.basename(found.link) != found.name:
        target = posixpath.basename(found.link)
        aliased = files.find(target)
        if aliased is not None and aliased.masked:  # the unit the alias names is masked
            return "masked-runtime" if aliased.kind == "runtime" else "masked"
        if not is_instance(name):
            return "alias"
        if is_template(target):  # an instance of a template's alias: that instance's state
            return state(files, _with_instance(target, split_name(name)[1] or ""))
    info = files.install(found, name)
    if info is None:
        return "bad"
    linked = _links_state(files, found, name, info)
    if linked:
        return linked
    if found.kind in ("config", "runtime") and found.link is not None:
        return "linked" if found.kind == "config" else "linked-runtime"
    if info.links_anything():
        return "disabled"
    if info.also or (is_template(name) and info.default_instance):
        return "indirect"
    return "static"


def _links_state(files: UnitFiles, found: Found, name: str, info: Install) -> str:
    """enabled / enabled-runtime / indirect from the links in /etc and /run, or ""."""
    best = ""
    file_name = found.name
    default = _with_instance(name, info.default_instance) if info.default_instance else ""
    for directory, kind in ((CONFIG_DIR, "enabled"), (RUNTIME_DIR, "enabled-runtime")):
        if not any(d == directory for d, _k in files.dirs):
            continue
        for path, target in files.config_links(directory):
            entry = posixpath.basename(path)
            parent = posixpath.dirname(path)
            if parent == directory:  # a top-level link: an alias
                if posixpath.basename(target) != file_name or entry == name:
                    continue
                if is_instance(name):
                    continue  # an instance's aliases do not make it enabled (systemd 252)
                verdict = kind if entry in info.alias else "indirect"
            else:
                if posixpath.basename(target) != file_name and entry != name:
                    continue
                if entry == name or (is_template(name) and entry == default):
                    verdict = kind
                elif is_template(name) and template_of(entry) == name:
                    verdict = "indirect"
                else:
                    continue
            if verdict == "enabled":
                return verdict
            if verdict == "enabled-runtime" or not best:
                best = verdict
    return best


def is_enabled_ok(value: str) -> bool:
    """Whether is-enabled exits 0 for this state."""
    return value in ENABLED_STATES


# -- presets ---------------------------------------------------------------------------------


def preset_rules(files: UnitFiles) -> list[tuple[str, str]]:
    """(action, pattern) lines of the preset files, in the order they apply."""
    chosen: dict[str, str] = {}
    for directory in PRESET_DIRS:
        host = files.host(directory)
        try:
            entries = os.listdir(host)
        except OSError:
            continue
        for entry in entries:
            if entry.endswith(".preset") and entry not in chosen:
                chosen[entry] = f"{host}/{entry}"
    rules: list[tuple[str, str]] = []
    for entry in sorted(chosen):
        try:
            data = read_regular_file(chosen[entry], _PRESET_LIMIT)
        except OSError:
            continue  # unreadable, or not a regular file: systemd skips it too
        lines = data.decode("utf-8", errors="replace").splitlines()
        for line in lines:
            words = line.split()
            if len(words) >= 2 and words[0] in ("enable", "disable") and line[0] not in "#;":
                rules.append((words[0], words[1]))
    return rules


def preset_of(rules: list[tuple[str, str]], name: str) -> str:
    """`enable` or `disable`: the first rule matching `name` (none: enable)."""
    for action, pattern in rules:
        if fnmatch.fnmatchcase(name, pattern):
            return action
    return "enable"


def list_unit_files(files: UnitFiles) -> list[tuple[str, str, str]]:
    """(name, state, preset) of every unit file, in systemctl's order (type, then name)."""
    rules = preset_rules(files)
    rows: list[tuple[str, str, str]] = []
    for name in files.names():
        value = state(files, name) or "bad"
        preset = "-"
        if value not in ("static", "alias", "generated", "transient", "bad"):
            preset = preset_of(rules, name) + "d"
        rows.append((name, value, preset))
    rows.sort(key=lambda row: (row[0].rpartition(".")[2].lower(), row[0].lower()))
    return rows
