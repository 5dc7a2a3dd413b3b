"""tmpfiles.d(5) configuration: text in, typed entries and their order of application out.

Pure: the caller (`cinit.io.tmpfiles`) lists the configuration directories, reads the files
and gathers the specifier values (machine id, host name, ...); this module decides which
files count (systemd's override rules), what each line says, which lines a run takes
(`--boot`, `--prefix`, `--exclude-prefix`), which duplicates lose, and in what order the
entries are carried out. A bad line is a `Diagnostic` naming file and line; the other lines
still count.

Every line type is carried out. The age field is parsed and checked, but ageing (`--clean`)
is not part of `--create`/`--remove`/`--boot`, so nothing acts on it. Brace expansion in
globs (`{a,b}`) is not supported.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence

from cinit.units.commands import _unescape_one, _WordBuilder  # systemd's C escapes, shared
from cinit.units.diagnostics import Diagnostic, Severity, ValueFormError
from cinit.units.frozen import Frozen
from cinit.units.specifiers import substitute
from cinit.units.values import parse_octal_mode, parse_timespan

# Configuration directories, highest precedence first (tmpfiles.d(5)): a file name in an
# earlier one hides the same name in every later one.
CONFIG_DIRS = (
    "/etc/tmpfiles.d",
    "/run/tmpfiles.d",
    "/usr/local/lib/tmpfiles.d",
    "/usr/lib/tmpfiles.d",
    "/lib/tmpfiles.d",
)
CONFIG_SUFFIX = ".conf"

# Line types. `F` is the old spelling of `f+` (systemd still reads it).
CREATE_FILE, WRITE, DIRECTORY, EMPTY_DIRECTORY, ADJUST_DIRECTORY = "f", "w", "d", "D", "e"
SUBVOLUMES = frozenset("vqQ")  # a plain directory without btrfs subvolumes: as `d`
FIFO, SYMLINK, CHAR_DEVICE, BLOCK_DEVICE, COPY = "p", "L", "c", "b", "C"
IGNORE, IGNORE_DIRECTORY, REMOVE, REMOVE_RECURSIVE = "x", "X", "r", "R"
ADJUST, ADJUST_RECURSIVE = "z", "Z"
XATTRS, XATTRS_RECURSIVE = "t", "T"
ATTRIBUTES, ATTRIBUTES_RECURSIVE = "h", "H"
ACLS, ACLS_RECURSIVE = "a", "A"
KNOWN_TYPES = frozenset("fFwdDevqQpLcbCxXrRzZtThHaA")
# acl(5)'s text form: the tag words and the permission letters.
ACL_TAGS = {
    "u": "user",
    "user": "user",
    "g": "group",
    "group": "group",
    "m": "mask",
    "mask": "mask",
    "o": "other",
    "other": "other",
}
ACL_PERMISSIONS = {"r": 4, "w": 2, "x": 1}
# chattr(1)'s letters -> the kernel's FS_*_FL bits (linux/fs.h), for h/H lines.
ATTRIBUTE_BITS = {
    "a": 0x00000020,  # append only
    "A": 0x00000080,  # no atime updates
    "c": 0x00000004,  # compressed
    "C": 0x00800000,  # no copy on write
    "d": 0x00000040,  # no dump
    "D": 0x00010000,  # synchronous directory updates
    "e": 0x00080000,  # extents
    "i": 0x00000010,  # immutable
    "j": 0x00004000,  # data journalling
    "P": 0x20000000,  # project hierarchy
    "s": 0x00000001,  # secure deletion
    "S": 0x00000008,  # synchronous updates
    "t": 0x00008000,  # no tail merging
    "T": 0x00020000,  # top of directory hierarchy
    "u": 0x00000002,  # undeletable
}
# Types whose path is a shell-style glob.
GLOB_TYPES = frozenset("weXxrRzZtThHaA")
# Types that create a node of their own (a line of one of them claims its path).
CREATING = frozenset("fFdDvqQpLcbC")
# Types that say what a path is; two of them on one path must agree (systemd's
# "takes ownership"), or the later line is ignored as a duplicate.
OWNING = CREATING | frozenset("ewxXrR")
# Types that need the argument column.
NEEDS_ARGUMENT = frozenset("wcbtThHaA")
# Types that may take `+` (and what it means: truncate, append, replace, or add).
PLUS_TYPES = frozenset("fwpLcbaA")
CONTENT_TYPES = frozenset("fFw")  # the argument is data to write: C escapes, `~`, `^`
MODIFIERS = frozenset("+!-=~^")
DEFAULT_DIRECTORY_MODE = 0o755
DEFAULT_FILE_MODE = 0o644
FACTORY_DIR = "/usr/share/factory"  # where L and C without an argument take their source

# What specifiers tmpfiles.d(5) defines; the caller supplies their values.
SPECIFIER_LETTERS = frozenset("abBCgGhHlLmoStTuUvVwW")  # %M, %A: newer than systemd 252


class TmpfilesEntry(Frozen):
    """One line of a tmpfiles.d file, parsed: what to do at which path."""

    kind: str  # the type letter (`F` is read as `f` with `plus`)
    path: str  # absolute, normalised, specifiers expanded
    source: str  # the file it came from
    line: int
    plus: bool = False  # `+`: truncate (f), append (w), replace what is there (p L c b)
    boot: bool = False  # `!`: only with --boot
    lenient: bool = False  # `-`: a failure to create does not count as one
    retype: bool = False  # `=`: remove an object of the wrong type, parents included
    decode: bool = False  # `~`: the argument was base64 (already decoded into `data`)
    credential: bool = False  # `^`: the argument names a credential
    mode: int | None = None
    mode_masked: bool = False  # `~MODE`: keep the existing node's absent r/w/x classes out
    mode_on_create: bool = False  # `:MODE`: only for a node this run creates
    user: str | None = None
    user_on_create: bool = False
    group: str | None = None
    group_on_create: bool = False
    age: float | None = None  # seconds (parsed; nothing ages files in --create/--remove)
    argument: str | None = None  # specifiers expanded (not for `~` lines)
    data: bytes | None = None  # what f/F/w write: C escapes or base64 decoded
    xattrs: tuple[tuple[str, bytes], ...] = ()  # t/T: (name, value) pairs
    attributes: tuple[int, int] | None = None  # h/H: (value, mask) of FS_*_FL bits
    # a/A: (default ACL?, tag: user|group|mask|other, qualifier ("" for the owner's), perms)
    acl: tuple[tuple[bool, str, str, int], ...] = ()

    @property
    def where(self) -> str:
        """`file:line`, for messages."""
        return f"{self.source}:{self.line}"

    @property
    def is_glob(self) -> bool:
        """Whether the path is a glob pattern (the type takes globs)."""
        return self.kind in GLOB_TYPES

    def owner_fields(self) -> tuple[object, ...]:
        """What two owning lines on one path must agree on (the type is not part of it:
        systemd lets `r` and `d` share a path, the first removing, the second creating)."""
        return (
            self.argument,
            self.data,
            self.mode,
            self.mode_masked,
            self.mode_on_create,
            self.user,
            self.user_on_create,
            self.group,
            self.group_on_create,
            self.age,
        )


class ConfigFile(Frozen):
    """A configuration file found in one of the directories (see `choose_config_files`)."""

    name: str
    path: str
    rank: int  # index in CONFIG_DIRS: lower wins
    masked: bool = False  # a link to /dev/null (or an empty file): hides the name, adds nothing


def choose_config_files(found: Iterable[ConfigFile]) -> list[ConfigFile]:
    """The files that count, by name in lexical order: for each name, the one of the
    highest-precedence directory (a masked one hides the name and is dropped)."""
    best: dict[str, ConfigFile] = {}
    for candidate in found:
        held = best.get(candidate.name)
        if held is None or candidate.rank < held.rank:
            best[candidate.name] = candidate
    return [best[name] for name in sorted(best) if not best[name].masked]


# --- one line --------------------------------------------------------------------------------


class _LineError(Exception):
    """A line that cannot be used; the message says why."""


class _Unresolvable(_LineError):
    """A line naming a specifier this system has no value for (`%m` without a machine id):
    skipped with a hint, as systemd-tmpfiles skips it, not an error."""


def unescape(text: str) -> str:
    """Resolve C-style escapes (`\\n`, `\\x20`, `\\040`, `\\u00e9`, ...) as systemd does: a
    `\\xNN` or octal byte is a byte (undecodable ones kept as surrogate escapes)."""
    if "\\" not in text:
        return text
    word = _WordBuilder()
    index = 0
    while index < len(text):
        char = text[index]
        if char != "\\":
            word.add(char)
            index += 1
            continue
        index += 1 + _add_escape(word, text, index + 1)
    return word.value()


def _add_escape(word: _WordBuilder, text: str, start: int) -> int:
    """Add the escape whose letter is at `start` (after its backslash); its length."""
    decoded = _unescape_one(text, start) if start < len(text) else None
    if decoded is None:
        shown = text[start - 1 : start + 3] if start < len(text) else "\\"
        raise _LineError(f"bad escape {shown!r}")
    value, used = decoded
    if isinstance(value, int):
        word.add_byte(value)
    else:
        word.add(value)
    return used


def split_line(line: str) -> tuple[list[str], str]:
    """The first six whitespace-separated fields (quotes removed, escapes resolved) and the
    rest of the line, the argument, as written (it keeps its quotes and inner spaces)."""
    fields: list[str] = []
    index = 0
    while len(fields) < 6:
        word, index = _next_word(line, index)
        if word is None:
            return fields, ""
        fields.append(word)
    return fields, line[index:].strip(" \t")


def split_words(text: str) -> list[str]:
    """Every word of `text`, with quotes and C escapes as in the first fields."""
    words: list[str] = []
    index = 0
    while True:
        word, index = _next_word(text, index)
        if word is None:
            return words
        words.append(word)


def _next_word(line: str, index: int) -> tuple[str | None, int]:
    """The word that starts at or after `index`, and where it ends; None at the end."""
    end = len(line)
    while index < end and line[index] in " \t":
        index += 1
    if index >= end:
        return None, index
    word = _WordBuilder()
    quote = ""
    while index < end:
        char = line[index]
        if quote:
            if char == quote:
                quote = ""
                index += 1
                continue
        elif char in " \t":
            break
        elif char in "\"'":
            quote = char
            index += 1
            continue
        if char == "\\":
            index += 1 + _add_escape(word, line, index + 1)
            continue
        word.add(char)
        index += 1
    if quote:
        raise _LineError("unbalanced quotes")
    return word.value(), index


def expand_specifiers(text: str, values: Mapping[str, str]) -> str:
    """`text` with each `%X` replaced by its value; `%%` is `%`. An unknown or unresolvable
    specifier (no value given) makes the line unusable, as under systemd."""

    def resolve(letter: str) -> str:
        if letter == "%":
            return "%"
        if letter in values:
            return values[letter]
        if letter in SPECIFIER_LETTERS:
            raise _Unresolvable(f"skipped: specifier %{letter} has no value here")
        raise _LineError(f"unknown specifier %{letter or '(end of line)'}")

    return substitute(text, resolve)


def normalize_path(path: str) -> str:
    """An absolute path without `//`, `.` components or a trailing slash; `..` is refused
    (tmpfiles acts on the very path it names, never on one a `..` leads to)."""
    if not path.startswith("/"):
        raise _LineError(f"path {path!r} is not absolute")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise _LineError(f"path {path!r} contains '..'")
    return "/" + "/".join(parts)


def parse_age(text: str) -> float:
    """The age column in seconds: `10d`, `1h 30min`, `~2w`, `mA:1h` (the `~` and the
    age-by letters are accepted; nothing ages files here)."""
    value = text.lstrip("~")
    head, colon, tail = value.partition(":")
    if colon:
        if not head or any(letter not in "abcmABCM" for letter in head):
            raise _LineError(f"bad age-by letters {head!r}")
        value = tail
    try:
        return parse_timespan(value)
    except ValueFormError as exc:
        raise _LineError(f"bad age {text!r}: {exc}") from None


def _dash(field: str) -> bool:
    return field in ("", "-")


def _owner(field: str, what: str) -> tuple[str | None, bool]:
    if _dash(field):
        return None, False
    on_create = field.startswith(":")
    name = field[1:] if on_create else field
    if not name:
        raise _LineError(f"empty {what}")
    return name, on_create


def _mode(field: str) -> tuple[int | None, bool, bool]:
    if _dash(field):
        return None, False, False
    masked = on_create = False
    rest = field
    while rest[:1] in ("~", ":") and rest:
        masked |= rest[0] == "~"
        on_create |= rest[0] == ":"
        rest = rest[1:]
    try:
        return parse_octal_mode(rest), masked, on_create
    except ValueFormError as exc:
        raise _LineError(f"bad mode {field!r}: {exc}") from None


def parse_line(text: str, source: str, line: int, values: Mapping[str, str]) -> TmpfilesEntry:
    """One non-comment line; raises `_LineError` with the reason it cannot be used."""
    fields, argument_text = split_line(text)
    if len(fields) < 2:
        raise _LineError("a line needs at least a type and a path")
    fields += ["-"] * (6 - len(fields))
    action, raw_path, mode_field, user_field, group_field, age_field = fields
    letter, modifiers = action[:1], action[1:]
    if letter not in KNOWN_TYPES:
        raise _LineError(f"unknown line type {action!r}")
    unknown = set(modifiers) - MODIFIERS
    if unknown:
        raise _LineError(f"unknown modifier {''.join(sorted(unknown))!r} in {action!r}")
    plus = "+" in modifiers
    if letter == "F":  # the old spelling of f+
        letter, plus = CREATE_FILE, True
    if plus and letter not in PLUS_TYPES:
        raise _LineError(f"line type {letter!r} takes no '+'")
    decode, credential = "~" in modifiers, "^" in modifiers
    if (decode or credential) and letter not in CONTENT_TYPES:
        raise _LineError(f"'~' and '^' are for lines that write content (f, w), not {letter!r}")
    path = normalize_path(expand_specifiers(raw_path, values))
    mode, masked, mode_on_create = _mode(mode_field)
    user, user_on_create = _owner(user_field, "user")
    group, group_on_create = _owner(group_field, "group")
    age = None if _dash(age_field) else parse_age(age_field)
    argument: str | None = None if _dash(argument_text) else argument_text
    data: bytes | None = None
    if argument is not None and not credential:
        if decode:
            try:
                data = base64.b64decode("".join(argument.split()).encode(), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise _LineError(f"argument is not base64: {exc}") from None
        else:
            argument = expand_specifiers(argument, values)
            if letter in CONTENT_TYPES:
                argument = unescape(argument)
                data = argument.encode("utf-8", "surrogateescape")
    if argument is None and letter in NEEDS_ARGUMENT:
        raise _LineError(f"line type {letter!r} needs an argument")
    if letter in (CHAR_DEVICE, BLOCK_DEVICE) and argument is not None:
        _device_numbers(argument)
    if letter in (SYMLINK, COPY) and argument is None:
        argument = FACTORY_DIR + path
    xattrs = _xattrs(argument or "") if letter in (XATTRS, XATTRS_RECURSIVE) else ()
    attributes = None
    if letter in (ATTRIBUTES, ATTRIBUTES_RECURSIVE):
        attributes = _attributes(argument or "")
    acl = _acl(argument or "") if letter in (ACLS, ACLS_RECURSIVE) else ()
    return TmpfilesEntry(
        kind=letter,
        path=path,
        source=source,
        line=line,
        plus=plus,
        boot="!" in modifiers,
        lenient="-" in modifiers,
        retype="=" in modifiers,
        decode=decode,
        credential=credential,
        mode=mode,
        mode_masked=masked,
        mode_on_create=mode_on_create,
        user=user,
        user_on_create=user_on_create,
        group=group,
        group_on_create=group_on_create,
        age=age,
        argument=argument,
        data=data,
        xattrs=xattrs,
        attributes=attributes,
        acl=acl,
    )


def _xattrs(argument: str) -> tuple[tuple[str, bytes], ...]:
    """`t` arguments: `namespace.name=value` words (a value may be quoted)."""
    pairs = []
    for word in split_words(argument):
        name, equals, value = word.partition("=")
        if not equals or "." not in name.strip(".") or not name.isprintable():
            raise _LineError(f"extended attributes are namespace.name=value, not {word!r}")
        pairs.append((name, value.encode("utf-8", "surrogateescape")))
    return tuple(pairs)


def _acl(argument: str) -> tuple[tuple[bool, str, str, int], ...]:
    """`a` arguments, acl(5)'s text form: `[d[efault]:]TAG:[QUALIFIER]:PERMS` entries
    separated by commas (`group:adm:r-x,d:group::r-x`, `u:www:rw`, `m::rx`, `o::-`)."""
    entries = []
    for text in (word for part in argument.split(",") for word in part.split()):
        item = text
        default = item.startswith(("d:", "default:"))
        if default:
            item = item.partition(":")[2]
        fields = item.split(":")
        tag = ACL_TAGS.get(fields[0])
        if tag in ("mask", "other") and len(fields) == 2:
            fields.insert(1, "")
        if tag is None or len(fields) != 3 or (tag in ("mask", "other") and fields[1]):
            raise _LineError(
                f"ACL entries are [d:]user|group|mask|other:[NAME]:PERMS, not {text!r}"
            )
        perms = fields[2]
        letters = perms.replace("-", "")
        if len(set(letters)) != len(letters) or any(c not in ACL_PERMISSIONS for c in letters):
            raise _LineError(f"ACL permissions are r, w, x (or -), not {perms!r} in {text!r}")
        value = sum(ACL_PERMISSIONS[c] for c in letters)
        entries.append((default, tag, fields[1], value))
    if not entries:
        raise _LineError("an ACL line needs entries")
    return tuple(entries)


def _attributes(argument: str) -> tuple[int, int]:
    """`h` arguments: `[+-=]LETTERS` -> (value, mask): the bits to set among those to touch."""
    how, letters = (argument[0], argument[1:]) if argument[:1] in "+-=" else ("+", argument)
    unknown = sorted(set(letters) - set(ATTRIBUTE_BITS))
    if unknown or (not letters and how != "="):
        raise _LineError(
            f"file attributes are [+-=] and letters of aAcCdDeijPsStTu, not {argument!r}"
        )
    bits = 0
    for letter in letters:
        bits |= ATTRIBUTE_BITS[letter]
    if how == "=":
        mask = 0
        for bit in ATTRIBUTE_BITS.values():
            mask |= bit
        return bits, mask
    return (bits if how == "+" else 0), bits


def _device_numbers(argument: str) -> tuple[int, int]:
    major, colon, minor = argument.partition(":")
    if not colon or not major.isdigit() or not minor.isdigit():
        raise _LineError(f"device numbers must be MAJOR:MINOR, not {argument!r}")
    return int(major), int(minor)


def device_numbers(entry: TmpfilesEntry) -> tuple[int, int]:
    """(major, minor) of a `c`/`b` line (checked when parsed)."""
    return _device_numbers(entry.argument or "")


def parse_tmpfiles(
    text: str, source: str, values: Mapping[str, str]
) -> tuple[list[TmpfilesEntry], list[Diagnostic]]:
    """Every usable line of one file, and a diagnostic per line that is not (file:line)."""
    entries: list[TmpfilesEntry] = []
    diagnostics: list[Diagnostic] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            entry = parse_line(stripped, source, number, values)
        except _LineError as exc:
            severity = Severity.HINT if isinstance(exc, _Unresolvable) else Severity.ERROR
            diagnostics.append(Diagnostic(severity, str(exc), source, number))
            continue
        if entry.path.startswith("/var/run/"):  # /var/run itself is the link to /run
            fixed = "/run" + entry.path.removeprefix("/var/run")
            message = f"{entry.path} is below the legacy /var/run; using {fixed}"
            diagnostics.append(Diagnostic(Severity.HINT, message, source, number))
            entry = entry.replace(path=fixed)
        entries.append(entry)
    return entries, diagnostics


# --- the lines a run takes, and their order -----------------------------------------------


def _under(path: str, prefix: str) -> bool:
    prefix = prefix.rstrip("/") or "/"
    return prefix == "/" or path == prefix or path.startswith(prefix + "/")


def select_entries(
    entries: Iterable[TmpfilesEntry],
    *,
    boot: bool,
    prefixes: Sequence[str] = (),
    exclude_prefixes: Sequence[str] = (),
) -> list[TmpfilesEntry]:
    """The entries this run takes: `!` lines only with `boot`; paths under a prefix (if any
    is given) and under no excluded one. Done before duplicates are settled, as systemd
    does: a skipped `!` line leaves its path to the next line naming it."""
    return [
        entry
        for entry in entries
        if (boot or not entry.boot)
        and (not prefixes or any(_under(entry.path, p) for p in prefixes))
        and not any(_under(entry.path, p) for p in exclude_prefixes)
    ]


def merge_entries(
    entries: Iterable[TmpfilesEntry],
) -> tuple[list[list[TmpfilesEntry]], list[Diagnostic]]:
    """Group the entries by path, lines with globs apart from the others (in order of first
    appearance; files come in lexical order, so the earliest file wins). A later line that
    claims a path an earlier one claimed with other attributes is dropped with a hint; an
    exact repeat is dropped silently. Within a group the claiming lines come first, then
    the others by type (a fixed order, as systemd's)."""
    groups: dict[tuple[bool, str], list[TmpfilesEntry]] = {}
    diagnostics: list[Diagnostic] = []
    for entry in entries:
        group = groups.setdefault((entry.is_glob, entry.path), [])
        fields = entry.owner_fields()
        if entry.kind in OWNING:
            rival = next(
                (e for e in group if e.kind in OWNING and e.owner_fields() != fields), None
            )
            if rival is not None:
                message = f"duplicate line for {entry.path} (first at {rival.where}); ignored"
                diagnostics.append(Diagnostic(Severity.HINT, message, entry.source, entry.line))
                continue
        same = (
            e
            for e in group
            if (e.kind, e.plus, e.owner_fields()) == (entry.kind, entry.plus, fields)
        )
        if next(same, None) is not None:
            continue
        group.append(entry)
    ordered = []
    for group in groups.values():
        group.sort(key=lambda e: (e.kind not in OWNING, e.kind))
        ordered.append(group)
    return ordered, diagnostics


REMOVE_PHASE, CREATE_PHASE = "remove", "create"
REMOVING = frozenset("DrR")  # what --remove acts on (D: the directory's contents)
CREATING_PHASE_TYPES = KNOWN_TYPES - frozenset("xXrRF")  # what --create acts on


def plan(
    groups: Sequence[Sequence[TmpfilesEntry]], *, create: bool, remove: bool
) -> list[tuple[str, TmpfilesEntry]]:
    """(phase, entry) in the order they are carried out.

    Removal comes first (the ground is cleared, then built on), then creation. In each
    phase paths without globs come before globs; a path's nearest ancestor that has lines
    of its own is created before it, and removed after it.
    """
    ordered = [g for g in groups if g and not g[0].is_glob] + [
        g for g in groups if g and g[0].is_glob
    ]
    keys = [(g[0].is_glob, g[0].path) for g in ordered]
    by_key = dict(zip(keys, ordered, strict=True))
    children: dict[tuple[bool, str], list[tuple[bool, str]]] = {}
    parent_of: dict[tuple[bool, str], tuple[bool, str]] = {}
    for key in keys:
        ancestor = key[1]
        while ancestor != "/":
            ancestor = ancestor.rsplit("/", 1)[0] or "/"
            found = next((k for k in ((False, ancestor), (True, ancestor)) if k in by_key), None)
            if found is not None:
                parent_of[key] = found
                children.setdefault(found, []).append(key)
                break
    steps: list[tuple[str, TmpfilesEntry]] = []
    visited: set[tuple[bool, str]] = set()

    def removal(key: tuple[bool, str]) -> None:
        if key in visited:
            return
        visited.add(key)
        for child in children.get(key, ()):
            removal(child)
        steps.extend((REMOVE_PHASE, e) for e in by_key[key] if e.kind in REMOVING)

    def creation(key: tuple[bool, str]) -> None:
        if key in visited:
            return
        visited.add(key)
        if key in parent_of:
            creation(parent_of[key])
        steps.extend((CREATE_PHASE, e) for e in by_key[key] if e.kind in CREATING_PHASE_TYPES)

    if remove:
        for key in keys:
            removal(key)
    visited.clear()
    if create:
        for key in keys:
            creation(key)
    return steps
