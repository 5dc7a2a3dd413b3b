"""Carrying out tmpfiles.d: find the files, gather the specifiers, create and remove.

`cinit.units.tmpfiles` parses and orders; this module touches the file system, always
below a `root` (`/` at boot; a temporary tree in tests and with `cinit tmpfiles --root`,
like `systemd-tmpfiles --root`). Paths are walked one component at a time from a directory
fd of the root: a symlink among the parents is followed but resolved inside the root (an
absolute target starts again at the root, `..` never climbs above it), and the last
component is never followed (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`) except by `w` lines, which
systemd documents as following symlinks. Removal and recursive changes stop at every mount
point, bind mounts included (a volume mounted below `D /tmp` is not emptied).

Users and groups come from the root's /etc/passwd and /etc/group (`cinit.io.userdb`): no
NSS module is loaded into PID 1, and a tree under `--root` uses its own users.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import re
import stat
import struct
from collections.abc import Callable, Iterator, Sequence

from cinit.io.host_facts import read_host_facts
from cinit.io.userdb import UserDbError, lookup_group, lookup_user
from cinit.units._files import NotRegularFileError, read_regular_file
from cinit.units.diagnostics import Diagnostic, Severity
from cinit.units.tmpfiles import (
    ACLS,
    ACLS_RECURSIVE,
    ADJUST,
    ADJUST_DIRECTORY,
    ADJUST_RECURSIVE,
    ATTRIBUTES,
    ATTRIBUTES_RECURSIVE,
    BLOCK_DEVICE,
    CHAR_DEVICE,
    CONFIG_DIRS,
    CONFIG_SUFFIX,
    COPY,
    CREATE_FILE,
    CREATE_PHASE,
    DEFAULT_DIRECTORY_MODE,
    DEFAULT_FILE_MODE,
    EMPTY_DIRECTORY,
    FIFO,
    REMOVE_RECURSIVE,
    SUBVOLUMES,
    SYMLINK,
    WRITE,
    XATTRS,
    XATTRS_RECURSIVE,
    ConfigFile,
    TmpfilesEntry,
    choose_config_files,
    device_numbers,
    merge_entries,
    parse_tmpfiles,
    plan,
    select_entries,
)

EXIT_OK = 0
EXIT_BAD_LINES = 65  # systemd-tmpfiles: some lines were unusable, the rest applied (EX_DATAERR)
EXIT_CANNOT_CREATE = 73  # systemd-tmpfiles: some lines could not be carried out (EX_CANTCREAT)
_CONFIG_LIMIT = 4 * 1024 * 1024  # a configuration file larger than this is refused
_MAX_LINKS = 40  # symlinks followed in one path before giving up (ELOOP), as the kernel
_PATH_FLAGS = os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW
_DIR_FLAGS = _PATH_FLAGS | os.O_DIRECTORY
_CAP_MKNOD = 27


class TmpfilesError(Exception):
    """A line that could not be carried out; the message says why (the entry says where)."""


class Notice(Exception):
    """Something a line found in its way that systemd-tmpfiles reports without failing
    (a node of another type where a directory should be, say)."""


class Unsupported(Exception):
    """What the file system cannot do (a chattr flag tmpfs or ext4 lacks): systemd-tmpfiles
    goes on silently; cinit says so in a hint."""


class TmpfilesRun:
    """What a run found and did: counts, and one diagnostic per problem (file:line)."""

    __slots__ = ("applied", "bad_lines", "diagnostics", "failed", "files")

    def __init__(self) -> None:
        self.files = 0  # configuration files read
        self.applied = 0  # entries carried out
        self.failed = 0  # entries that could not be carried out
        self.bad_lines = 0  # lines that could not be used at all
        self.diagnostics: list[Diagnostic] = []

    @property
    def exit_status(self) -> int:
        """systemd-tmpfiles' exit status for the same outcome."""
        if self.bad_lines:  # systemd-tmpfiles puts this one first too
            return EXIT_BAD_LINES
        return EXIT_CANNOT_CREATE if self.failed else EXIT_OK

    def summary(self) -> str:
        """The one line cinit logs at boot."""
        return (
            f"tmpfiles: {self.applied} entries applied from {self.files} files "
            f"({self.failed + self.bad_lines} failed)"
        )


# --- finding and reading the configuration --------------------------------------------------


def _inside(root: str, path: str) -> str:
    return os.path.join(root, path.lstrip("/")) if root not in ("", "/") else path


def find_config_files(root: str, names: Sequence[str] = ()) -> tuple[list[ConfigFile], list[str]]:
    """The configuration files a run reads, in order; and the names asked for that exist in
    no directory. With no `names`: every *.conf of the directories (systemd's rules).
    A name with a slash is that file (outside the root, as systemd-tmpfiles takes it);
    a bare name is looked up in the directories, highest precedence first."""
    found: list[ConfigFile] = []
    for rank, directory in enumerate(CONFIG_DIRS):
        real = _inside(root, directory)
        try:
            with os.scandir(real) as listing:
                entries = [e for e in listing if e.name.endswith(CONFIG_SUFFIX)]
        except OSError:
            continue
        for entry in entries:
            found.append(ConfigFile(entry.name, entry.path, rank, _masked(entry.path, root)))
    if not names:
        return choose_config_files(found), []
    chosen: list[ConfigFile] = []
    missing: list[str] = []
    for name in names:
        if "/" in name or name == STDIN:
            chosen.append(ConfigFile(os.path.basename(name), name, -1))
            continue
        candidates = choose_config_files(f for f in found if f.name == name)
        if candidates:
            chosen.extend(candidates)
        elif not any(f.name == name for f in found):
            missing.append(name)
    return chosen, missing


def _masked(path: str, root: str) -> bool:
    """A link to /dev/null masks a file name (tmpfiles.d(5)); so does an empty file."""
    try:
        if os.path.islink(path):
            return os.readlink(path) == "/dev/null"
        return os.stat(path).st_size == 0
    except OSError:
        return False


STDIN = "-"  # a CONFIG of "-": lines from standard input, as systemd-tmpfiles


def _read_stdin() -> str:
    import sys

    return sys.stdin.buffer.read(_CONFIG_LIMIT).decode("utf-8", "surrogateescape")


def read_config(path: str) -> str:
    """A configuration file's text (a regular file; undecodable bytes kept as escapes)."""
    data = read_regular_file(path, _CONFIG_LIMIT)
    if len(data) >= _CONFIG_LIMIT:
        raise OSError(errno.EFBIG, "larger than 4 MiB", path)
    return data.decode("utf-8", "surrogateescape")


def specifier_values(root: str = "/") -> dict[str, str]:
    """The values of tmpfiles.d(5)'s specifiers for this system: the host facts the unit
    specifiers use (`cinit.io.host_facts`), the system manager's directories, and `%T`/`%V`
    from $TMPDIR as systemd-tmpfiles takes them. A fact that is not known (no
    /etc/machine-id) leaves its letter out: a line using it is skipped, with a hint."""
    facts = read_host_facts(root)
    values = {
        "t": "/run",
        "S": "/var/lib",
        "C": "/var/cache",
        "L": "/var/log",
        "T": _temp_dir("/tmp"),
        "V": _temp_dir("/var/tmp"),
        "U": str(facts.uid),
        "u": facts.user_name,
        "h": facts.home,
        "G": str(facts.gid),
        "g": facts.group_name,
        "o": facts.os_id,
        "w": facts.os_version_id,
        "W": facts.os_variant_id,
        "B": facts.os_build_id,
    }
    known = {
        "H": facts.hostname,
        "l": facts.hostname.split(".")[0],
        "m": facts.machine_id,
        "b": facts.boot_id,
        "v": facts.kernel_release,
        "a": facts.architecture,
    }
    values.update((letter, value) for letter, value in known.items() if value)
    return values


def _temp_dir(default: str) -> str:
    for name in ("TMPDIR", "TEMP", "TMP"):
        value = os.environ.get(name, "")
        if value.startswith("/"):
            return value
    return default


def load(
    root: str,
    configs: Sequence[str] = (),
    *,
    boot: bool,
    prefixes: Sequence[str] = (),
    exclude_prefixes: Sequence[str] = (),
    run: TmpfilesRun | None = None,
) -> tuple[list[list[TmpfilesEntry]], TmpfilesRun]:
    """Read and parse the configuration; the entries grouped by path, and the run so far
    (files counted, unusable lines reported)."""
    run = run or TmpfilesRun()
    files, missing = find_config_files(root, configs)
    for name in missing:
        run.diagnostics.append(Diagnostic(Severity.ERROR, "no such configuration file", name))
        run.bad_lines += 1
    values = specifier_values(root)
    entries: list[TmpfilesEntry] = []
    for config in files:
        try:
            text = _read_stdin() if config.path == STDIN else read_config(config.path)
        except (NotRegularFileError, OSError) as exc:
            reason = exc.strerror or str(exc)
            run.diagnostics.append(
                Diagnostic(Severity.ERROR, f"cannot read: {reason}", config.path)
            )
            run.bad_lines += 1
            continue
        run.files += 1
        source = "<stdin>" if config.path == STDIN else config.path
        parsed, diagnostics = parse_tmpfiles(text, source, values)
        run.bad_lines += sum(1 for d in diagnostics if d.severity is Severity.ERROR)
        run.diagnostics.extend(diagnostics)
        entries.extend(parsed)
    chosen = select_entries(
        entries, boot=boot, prefixes=prefixes, exclude_prefixes=exclude_prefixes
    )
    groups, duplicates = merge_entries(chosen)
    run.diagnostics.extend(duplicates)
    return groups, run


# --- walking paths inside the root ----------------------------------------------------------


class Tree:
    """A root directory, and paths below it walked without leaving it."""

    def __init__(self, root: str) -> None:
        self.root = root or "/"
        self.fd = os.open(self.root, _DIR_FLAGS & ~os.O_NOFOLLOW)

    def close(self) -> None:
        """Release the root's fd."""
        os.close(self.fd)

    def show(self, path: str) -> str:
        """`path` as it is on this machine (for messages)."""
        return _inside(self.root, path)

    def open_parent(
        self, path: str, *, create: bool = False, retype: bool = False
    ) -> tuple[int, str]:
        """An fd of the directory that holds `path`'s last component, and that component.

        Symlinks among the parents are resolved inside the root. `create` makes missing
        parents (mode 0755, owned by the caller, as systemd-tmpfiles); `retype` replaces a
        parent that is not a directory by one (the `=` modifier). The caller closes the fd.
        """
        parts = [p for p in path.split("/") if p]
        if not parts:
            raise TmpfilesError("the root itself is not a path a line can create")
        return self._walk(parts[:-1], create, retype), parts[-1]

    def open_path(self, path: str) -> int:
        """An O_PATH fd of `path` itself, every symlink resolved inside the root."""
        return self._walk([p for p in path.split("/") if p], False, False, final=True)

    def _walk(self, parts: list[str], create: bool, retype: bool, final: bool = False) -> int:
        todo = list(parts)
        where: list[str] = []  # real directories from the root: `..` goes back along them
        fd = os.dup(self.fd)
        links = 0
        try:
            while todo:
                name = todo.pop(0)
                if name in ("", "."):
                    continue
                if name == "..":
                    if where:
                        where.pop()
                        os.close(fd)
                        fd = self._reopen(where)
                    continue
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    if not create:
                        raise
                    _make_directory(fd, name, DEFAULT_DIRECTORY_MODE)
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    links += 1
                    if links > _MAX_LINKS:
                        raise OSError(errno.ELOOP, "too many levels of symbolic links", name)
                    target = os.readlink(name, dir_fd=fd)
                    todo[:0] = target.split("/")
                    if target.startswith("/"):
                        where.clear()
                        os.close(fd)
                        fd = os.dup(self.fd)
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    if not todo and final:  # the path itself: any kind of node will do
                        new = os.open(name, _PATH_FLAGS, dir_fd=fd)
                        os.close(fd)
                        return new
                    if not retype:
                        raise NotADirectoryError(errno.ENOTDIR, "not a directory", name)
                    os.unlink(name, dir_fd=fd)
                    _make_directory(fd, name, DEFAULT_DIRECTORY_MODE)
                new = os.open(name, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = new
                where.append(name)
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _reopen(self, where: list[str]) -> int:
        fd = os.dup(self.fd)
        for name in where:
            new = os.open(name, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = new
        return fd

    def expand(self, pattern: str) -> list[str]:
        """The existing paths that a glob `pattern` names, sorted (`*`, `?`, `[...]`; a
        leading dot is matched only by a pattern component that starts with one)."""
        matches = [""]
        for part in (p for p in pattern.split("/") if p):
            following: list[str] = []
            for prefix in matches:
                if not _has_magic(part):
                    following.append(f"{prefix}/{part}")
                    continue
                following.extend(f"{prefix}/{name}" for name in self._list(prefix or "/", part))
            matches = following
        return sorted(m for m in matches if m and self.exists(m))

    def _list(self, directory: str, part: str) -> list[str]:
        try:
            fd = self.open_path(directory)
        except OSError:
            return []
        try:
            listing_fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
        except OSError:
            return []
        finally:
            os.close(fd)
        try:
            names = os.listdir(listing_fd)
        finally:
            os.close(listing_fd)
        hidden = part.startswith(".")
        return sorted(n for n in names if fnmatch.fnmatchcase(n, part) and (hidden or n[0] != "."))

    def exists(self, path: str) -> bool:
        """Whether `path` exists (its last component not followed)."""
        try:
            parent, name = self.open_parent(path)
        except OSError:
            return False
        try:
            os.stat(name, dir_fd=parent, follow_symlinks=False)
            return True
        except OSError:
            return False
        finally:
            os.close(parent)


def _has_magic(part: str) -> bool:
    return any(c in part for c in "*?[")


def _make_directory(parent: int, name: str, mode: int) -> None:
    os.mkdir(name, mode, dir_fd=parent)
    fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    try:
        _chmod(fd, mode)  # the umask does not decide: the line (or systemd's default) does
    finally:
        os.close(fd)


def _chmod(fd: int, mode: int) -> None:
    """chmod through an O_PATH fd (the node, never a symlink it could be swapped for)."""
    try:
        os.chmod(f"/proc/self/fd/{fd}", mode)
    except FileNotFoundError:
        _need_proc()
        raise


def _chown(fd: int, uid: int, gid: int) -> None:
    """chown through an O_PATH fd, as `_chmod`."""
    try:
        os.chown(f"/proc/self/fd/{fd}", uid, gid)
    except FileNotFoundError:
        _need_proc()
        raise


def _need_proc() -> None:
    if not os.path.isdir("/proc/self/fd"):  # a chroot without /proc (an image build step)
        raise TmpfilesError("setting modes and owners needs /proc mounted (/proc/self/fd)")


# --- carrying the entries out ---------------------------------------------------------------


class _Owners:
    """User and group names resolved in the root's passwd and group files, once each."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.cache: dict[tuple[str, str], int] = {}

    def ids(self, entry: TmpfilesEntry) -> tuple[int | None, int | None]:
        uid = None if entry.user is None else self.id_of("user", entry.user)
        gid = None if entry.group is None else self.id_of("group", entry.group)
        return uid, gid

    def id_of(self, kind: str, name: str) -> int:
        """The uid or gid of `name` (a number is taken as it is)."""
        key = (kind, name)
        if key not in self.cache:
            if name.isdigit():  # a number needs no entry, as systemd-tmpfiles
                self.cache[key] = int(name)
            elif kind == "user":
                self.cache[key] = lookup_user(name, self.root).uid
            else:
                self.cache[key] = lookup_group(name, self.root)
        return self.cache[key]


def _mask_mode(wanted: int, current: int, is_dir: bool) -> int:
    """`~MODE`: a class of bits (r, w, x) the node has nowhere stays off; no setuid, setgid
    or sticky bit but on a directory."""
    mode = wanted
    for bits in (0o444, 0o222, 0o111):
        if not current & bits:
            mode &= ~bits
    if not is_dir:
        mode &= 0o777
    return mode


class Applier:
    """Carries entries out inside one `Tree`."""

    def __init__(self, tree: Tree, owners: _Owners) -> None:
        self.tree = tree
        self.owners = owners
        self.can_mknod = _has_capability(_CAP_MKNOD)

    # The permissions every kind of node gets (systemd's fd_set_perms).
    def settle(
        self,
        fd: int,
        entry: TmpfilesEntry,
        created: bool,
        default_mode: int | None,
        at: tuple[int, str] | None = None,
    ) -> None:
        """Owner and mode of the node `fd` (an O_PATH fd) as the line asks; `at` (its
        directory's fd and its name) lets a symlink change owner (never mode)."""
        st = os.fstat(fd)
        uid, gid = self.owners.ids(entry)
        if entry.user_on_create and not created:
            uid = None
        if entry.group_on_create and not created:
            gid = None
        if (uid is not None and uid != st.st_uid) or (gid is not None and gid != st.st_gid):
            new_uid, new_gid = -1 if uid is None else uid, -1 if gid is None else gid
            if stat.S_ISLNK(st.st_mode):
                if at is not None:
                    os.chown(at[1], new_uid, new_gid, dir_fd=at[0], follow_symlinks=False)
                return
            _chown(fd, new_uid, new_gid)  # before chmod: a chown clears setuid and setgid
        if stat.S_ISLNK(st.st_mode):
            return  # a symlink has no mode of its own
        mode: int | None = entry.mode
        if mode is not None and entry.mode_on_create and not created:
            mode = None
        if mode is None:
            mode = default_mode if created else None
        elif entry.mode_masked:
            mode = _mask_mode(mode, st.st_mode, stat.S_ISDIR(st.st_mode))
        if mode is not None and (created or stat.S_IMODE(os.fstat(fd).st_mode) != mode):
            _chmod(fd, mode)

    def create(self, entry: TmpfilesEntry) -> None:
        """The create phase of one entry."""
        kind = entry.kind
        if entry.credential and self._data(entry) is None:
            return  # as systemd: a line whose credential is not set is skipped
        if kind == CREATE_FILE:
            self._file(entry)
        elif kind == WRITE:
            for path in self.tree.expand(entry.path):
                self._write(entry, path)
        elif kind in ("d", EMPTY_DIRECTORY) or kind in SUBVOLUMES:
            self._directory(entry)
        elif kind == ADJUST_DIRECTORY:
            for path in self.tree.expand(entry.path):
                self._adjust(entry, path, directories_only=True)
        elif kind == FIFO:
            self._node(entry, stat.S_IFIFO, 0)
        elif kind == SYMLINK:
            self._symlink(entry)
        elif kind in (CHAR_DEVICE, BLOCK_DEVICE):
            if not self.can_mknod:
                return  # as systemd: no CAP_MKNOD (a container), no device nodes
            major, minor = device_numbers(entry)
            kind_bits = stat.S_IFCHR if kind == CHAR_DEVICE else stat.S_IFBLK
            self._node(entry, kind_bits, os.makedev(major, minor))
        elif kind == COPY:
            self._copy(entry)
        elif kind in (ADJUST, ADJUST_RECURSIVE):
            for path in self.tree.expand(entry.path):
                self._adjust(entry, path, recursive=kind == ADJUST_RECURSIVE)
        elif kind in (XATTRS, XATTRS_RECURSIVE, ATTRIBUTES, ATTRIBUTES_RECURSIVE):
            recursive = kind in (XATTRS_RECURSIVE, ATTRIBUTES_RECURSIVE)
            act = _set_xattrs if kind in (XATTRS, XATTRS_RECURSIVE) else _set_attributes
            for path in self.tree.expand(entry.path):
                self._each_node(path, recursive, entry, act)
        elif kind in (ACLS, ACLS_RECURSIVE):
            for path in self.tree.expand(entry.path):
                self._each_node(path, kind == ACLS_RECURSIVE, entry, self._set_acls)

    def remove(self, entry: TmpfilesEntry) -> None:
        """The remove phase of one entry (D: its contents; r, R: the paths)."""
        if entry.kind == EMPTY_DIRECTORY:
            self._remove_contents(entry.path)
            return
        for path in self.tree.expand(entry.path):
            parent, name = self.tree.open_parent(path)
            try:
                if entry.kind == REMOVE_RECURSIVE:
                    _remove_tree(parent, name)
                else:
                    _remove_one(parent, name)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise TmpfilesError(
                    f"cannot remove {self.tree.show(path)}: {exc.strerror}"
                ) from None
            finally:
                os.close(parent)

    # -- the kinds of lines

    def _file(self, entry: TmpfilesEntry) -> None:
        flags = os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NOCTTY | os.O_NONBLOCK

        def make(parent: int, name: str) -> None:
            os.close(
                os.open(name, flags | os.O_CREAT | os.O_EXCL, DEFAULT_FILE_MODE, dir_fd=parent)
            )

        def fill(fd: int, created: bool) -> None:
            data = self._data(entry)
            if data and (created or entry.plus):
                _write_all(fd, data)

        # Without `+` an existing file keeps its content: only its mode and owner are
        # settled, through an O_PATH fd (a read-only file still counts).
        self._put(
            entry,
            make,
            lambda st: stat.S_ISREG(st.st_mode),
            replace=entry.retype,
            mismatch=TmpfilesError("exists and is not a regular file"),
            opened=lambda created: (
                flags if created else (os.O_TRUNC | flags if entry.plus else _PATH_FLAGS)
            ),
            default_mode=DEFAULT_FILE_MODE,
            fill=fill,
        )

    def _put(
        self,
        entry: TmpfilesEntry,
        make: Callable[[int, str], None],
        same: Callable[[os.stat_result], bool],
        *,
        replace: bool,
        mismatch: Exception,
        opened: Callable[[bool], int],
        default_mode: int,
        fill: Callable[[int, bool], None] | None = None,
    ) -> None:
        """Create `entry`'s path with `make(parent_fd, name)`, or keep what is there when it
        is `same` kind; another kind is replaced when `replace`, else `mismatch` (its text
        after the path) is raised. Then `fill` (the created flag) and settle mode and owner
        on the node opened with `opened(created)`: the one create-or-retype of f, d, p, c, b."""
        parent, name = self.tree.open_parent(entry.path, create=True, retype=entry.retype)
        try:
            created = True
            try:
                make(parent, name)
            except FileExistsError:
                if same(os.stat(name, dir_fd=parent, follow_symlinks=False)):
                    created = False
                elif replace:
                    _remove_tree(parent, name)
                    make(parent, name)
                else:
                    raise type(mismatch)(f"{self.tree.show(entry.path)} {mismatch}") from None
            fd = os.open(name, opened(created), dir_fd=parent)
            try:
                if fill is not None:
                    fill(fd, created)
                self.settle(fd, entry, created, default_mode)
            finally:
                os.close(fd)
        finally:
            os.close(parent)

    def _data(self, entry: TmpfilesEntry) -> bytes | None:
        if not entry.credential:
            return entry.data
        directory = os.environ.get("CREDENTIALS_DIRECTORY", "")
        name = entry.argument or ""
        if not directory or "/" in name or not name:
            return None
        try:
            data = read_regular_file(os.path.join(directory, name), _CONFIG_LIMIT)
        except OSError:
            return None
        if entry.decode:
            import base64
            import binascii

            try:
                return base64.b64decode(data)
            except (binascii.Error, ValueError):
                raise TmpfilesError(f"credential {name} is not base64") from None
        return data

    def _write(self, entry: TmpfilesEntry, path: str) -> None:
        data = self._data(entry)
        if data is None:
            return
        try:
            fd_path = self.tree.open_path(path)  # w follows symlinks (inside the root)
        except FileNotFoundError:
            return
        try:
            flags = os.O_WRONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
            fd = os.open(f"/proc/self/fd/{fd_path}", flags | (os.O_APPEND if entry.plus else 0))
        finally:
            os.close(fd_path)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)

    def _directory(self, entry: TmpfilesEntry) -> None:
        self._put(
            entry,
            lambda parent, name: os.mkdir(name, DEFAULT_DIRECTORY_MODE, dir_fd=parent),
            lambda st: stat.S_ISDIR(st.st_mode),
            replace=entry.retype,
            mismatch=Notice("already exists and is not a directory"),
            opened=lambda created: _DIR_FLAGS,
            default_mode=DEFAULT_DIRECTORY_MODE,
        )

    def _node(self, entry: TmpfilesEntry, kind_bits: int, device: int) -> None:
        what = "a FIFO" if kind_bits == stat.S_IFIFO else "the device node it names"
        self._put(
            entry,
            lambda parent, name: os.mknod(
                name, kind_bits | DEFAULT_FILE_MODE, device, dir_fd=parent
            ),
            lambda st: (
                stat.S_IFMT(st.st_mode) == kind_bits and (not device or st.st_rdev == device)
            ),
            replace=entry.plus or entry.retype,
            mismatch=Notice(f"already exists and is not {what}"),
            opened=lambda created: _PATH_FLAGS,
            default_mode=DEFAULT_FILE_MODE,
        )

    def _symlink(self, entry: TmpfilesEntry) -> None:
        target = entry.argument or ""
        parent, name = self.tree.open_parent(entry.path, create=True, retype=entry.retype)
        try:
            try:
                os.symlink(target, name, dir_fd=parent)
            except FileExistsError:
                try:
                    if os.readlink(name, dir_fd=parent) == target:
                        return
                except OSError:
                    pass  # not a symlink
                if not (entry.plus or entry.retype):
                    raise Notice(
                        f"{self.tree.show(entry.path)} already exists and is not a symlink to "
                        f"{target}"
                    ) from None
                _remove_tree(parent, name)
                os.symlink(target, name, dir_fd=parent)
        finally:
            os.close(parent)

    def _copy(self, entry: TmpfilesEntry) -> None:
        source = entry.argument or ""
        try:
            source_fd = self.tree.open_path(source)
        except FileNotFoundError:
            return  # as systemd-tmpfiles: nothing to copy (often a factory file not shipped)
        parent, name = self.tree.open_parent(entry.path, create=True, retype=entry.retype)
        try:
            try:
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is not None:
                if not stat.S_ISDIR(st.st_mode) or not stat.S_ISDIR(os.fstat(source_fd).st_mode):
                    return  # exists, and is not an empty directory to fill: left as it is
                fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
                try:
                    empty = not _names(fd)
                finally:
                    os.close(fd)
                if not empty:
                    return
                _copy_contents(source_fd, parent, name)
            else:
                _copy_node(source_fd, parent, name)
            fd = os.open(name, _PATH_FLAGS, dir_fd=parent)
            try:
                if entry.mode is not None or entry.user is not None or entry.group is not None:
                    self.settle(fd, entry, True, None)
            finally:
                os.close(fd)
        finally:
            os.close(parent)
            os.close(source_fd)

    def _adjust(
        self,
        entry: TmpfilesEntry,
        path: str,
        *,
        recursive: bool = False,
        directories_only: bool = False,
    ) -> None:
        parent, name = self.tree.open_parent(path)
        try:
            try:
                fd = os.open(name, _PATH_FLAGS, dir_fd=parent)
            except FileNotFoundError:
                return
            try:
                st = os.fstat(fd)
                if directories_only and not stat.S_ISDIR(st.st_mode):
                    raise Notice(f"{self.tree.show(path)} is not a directory")
                self.settle(fd, entry, False, None, (parent, name))
                if recursive and stat.S_ISDIR(st.st_mode):
                    for child_fd, directory, child in _walk_below(fd, st.st_dev):
                        try:
                            self.settle(child_fd, entry, False, None, (directory, child))
                        finally:
                            os.close(child_fd)
            finally:
                os.close(fd)
        finally:
            os.close(parent)

    def _set_acls(self, fd: int, entry: TmpfilesEntry) -> None:
        """`a`: the access ACL (and a directory's default ACL) of the node `fd`, as
        systemd-tmpfiles sets them: `a` replaces, `a+` merges into what is there; a mask
        is computed when named entries need one and none is given; the owner, group and
        other entries come from the node's mode when the line leaves them out."""
        st = os.fstat(fd)
        if stat.S_ISLNK(st.st_mode):
            return
        path = f"/proc/self/fd/{fd}"
        for default in (False, True):
            wanted = {
                self._acl_key(tag, qualifier): perms
                for is_default, tag, qualifier, perms in entry.acl
                if is_default == default
            }
            if not wanted or (default and not stat.S_ISDIR(st.st_mode)):
                continue
            if entry.plus:
                acl = _read_acl(path, default, st.st_mode)
                acl.update(wanted)
            else:
                acl = dict(wanted)
            _add_mask_if_needed(acl)  # `a`: before the base entries, as systemd
            for key, perms in _acl_from_mode(st.st_mode).items():
                acl.setdefault(key, perms)
            try:
                os.setxattr(path, _ACL_XATTRS[default], _encode_acl(acl))
            except OSError as exc:
                if exc.errno in (errno.EOPNOTSUPP, errno.ENOTSUP):
                    raise Unsupported(f"ACLs: {exc.strerror}") from None
                raise

    def _acl_key(self, tag: str, qualifier: str) -> tuple[int, int]:
        if tag == "user":
            if not qualifier:
                return _ACL_USER_OBJ, _ACL_NO_ID
            return _ACL_USER, self.owners.id_of("user", qualifier)
        if tag == "group":
            if not qualifier:
                return _ACL_GROUP_OBJ, _ACL_NO_ID
            return _ACL_GROUP, self.owners.id_of("group", qualifier)
        return (_ACL_MASK if tag == "mask" else _ACL_OTHER), _ACL_NO_ID

    def _each_node(
        self,
        path: str,
        recursive: bool,
        entry: TmpfilesEntry,
        act: Callable[[int, TmpfilesEntry], None],
    ) -> None:
        """`act(fd, entry)` on an O_PATH fd of `path` (not followed) and, when `recursive`,
        of everything below it on the same file system."""
        parent, name = self.tree.open_parent(path)
        try:
            try:
                fd = os.open(name, _PATH_FLAGS, dir_fd=parent)
            except FileNotFoundError:
                return
        finally:
            os.close(parent)
        try:
            act(fd, entry)
            st = os.fstat(fd)
            if recursive and stat.S_ISDIR(st.st_mode):
                for child_fd, _directory, _name in _walk_below(fd, st.st_dev):
                    try:
                        act(child_fd, entry)
                    finally:
                        os.close(child_fd)
        finally:
            os.close(fd)

    def _remove_contents(self, path: str) -> None:
        try:
            fd = self.tree.open_path(path)
        except (FileNotFoundError, NotADirectoryError):
            return
        try:
            st = os.fstat(fd)
            if not stat.S_ISDIR(st.st_mode) or _is_symlink_path(self.tree, path):
                return
            for name in _names(fd):
                try:
                    _remove_tree(fd, name, st.st_dev)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    shown = self.tree.show(f"{path}/{name}")
                    raise TmpfilesError(f"cannot remove {shown}: {exc.strerror}") from None
        finally:
            os.close(fd)


# POSIX ACLs as the kernel takes them in system.posix_acl_access/_default: a version, then
# (tag, permissions, id) entries sorted by tag and id (linux/posix_acl_xattr.h).
_ACL_XATTRS = {False: "system.posix_acl_access", True: "system.posix_acl_default"}
_ACL_VERSION = 2
_ACL_USER_OBJ, _ACL_USER, _ACL_GROUP_OBJ, _ACL_GROUP, _ACL_MASK, _ACL_OTHER = (
    0x01,
    0x02,
    0x04,
    0x08,
    0x10,
    0x20,
)
_ACL_NO_ID = 0xFFFFFFFF


def _acl_from_mode(mode: int) -> dict[tuple[int, int], int]:
    """The three entries a mode stands for (owner, group, other)."""
    return {
        (_ACL_USER_OBJ, _ACL_NO_ID): mode >> 6 & 7,
        (_ACL_GROUP_OBJ, _ACL_NO_ID): mode >> 3 & 7,
        (_ACL_OTHER, _ACL_NO_ID): mode & 7,
    }


def _read_acl(path: str, default: bool, mode: int) -> dict[tuple[int, int], int]:
    """The node's ACL of that type; without one, the access ACL its mode stands for (and
    no default ACL), as libacl's acl_get_file."""
    try:
        data = os.getxattr(path, _ACL_XATTRS[default])
    except OSError as exc:
        if exc.errno != errno.ENODATA:
            raise
        return {} if default else _acl_from_mode(mode)
    acl = {}
    for offset in range(4, len(data) - 7, 8):
        tag, perms, ident = struct.unpack_from("<HHI", data, offset)
        acl[(tag, ident)] = perms
    return acl


def _add_mask_if_needed(acl: dict[tuple[int, int], int]) -> None:
    """Named entries need a mask: when none is there, the union of the group class."""
    if any(tag == _ACL_MASK for tag, _ in acl):
        return
    if not any(tag in (_ACL_USER, _ACL_GROUP) for tag, _ in acl):
        return
    mask = 0
    for (tag, _ident), perms in acl.items():
        if tag in (_ACL_USER, _ACL_GROUP_OBJ, _ACL_GROUP):
            mask |= perms
    acl[(_ACL_MASK, _ACL_NO_ID)] = mask


def _encode_acl(acl: dict[tuple[int, int], int]) -> bytes:
    entries = b"".join(
        struct.pack("<HHI", tag, perms, ident) for (tag, ident), perms in sorted(acl.items())
    )
    return struct.pack("<I", _ACL_VERSION) + entries


def _set_xattrs(fd: int, entry: TmpfilesEntry) -> None:
    """`t`: the extended attributes of the node `fd` (a symlink is left alone)."""
    if stat.S_ISLNK(os.fstat(fd).st_mode):
        return
    for name, value in entry.xattrs:
        try:
            os.setxattr(f"/proc/self/fd/{fd}", name, value)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.ENOTSUP):
                raise Unsupported(f"extended attribute {name}: {exc.strerror}") from None
            raise


# FS_IOC_GETFLAGS/SETFLAGS are _IOR/_IOW('f', 1|2, long): the size of a long is in them.
_LONG = struct.calcsize("l")
_GET_FLAGS = (2 << 30) | (_LONG << 16) | (ord("f") << 8) | 1
_SET_FLAGS = (1 << 30) | (_LONG << 16) | (ord("f") << 8) | 2


def _set_attributes(fd: int, entry: TmpfilesEntry) -> None:
    """`h`: chattr the node `fd` (regular files and directories only, as systemd)."""
    if entry.attributes is None or not _file_or_directory(os.fstat(fd).st_mode):
        return
    import fcntl

    value, mask = entry.attributes
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
    node = os.open(f"/proc/self/fd/{fd}", flags)
    try:
        buffer = bytearray(8)
        try:
            fcntl.ioctl(node, _GET_FLAGS, buffer, True)
            current = struct.unpack_from("i", buffer)[0]
            wanted = (current & ~mask) | (value & mask)
            if wanted != current:
                struct.pack_into("i", buffer, 0, wanted)
                fcntl.ioctl(node, _SET_FLAGS, buffer, True)
        except OSError as exc:  # as systemd-tmpfiles: logged, never a failure (ext4 refuses
            # to clear `e`, tmpfs has no flags, only btrfs knows `C`)
            raise Unsupported(f"file attributes {entry.argument}: {exc.strerror}") from None
    finally:
        os.close(node)


def _file_or_directory(mode: int) -> bool:
    return stat.S_ISREG(mode) or stat.S_ISDIR(mode)


def _is_symlink_path(tree: Tree, path: str) -> bool:
    parent, name = tree.open_parent(path)
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
    finally:
        os.close(parent)


def _has_capability(bit: int) -> bool:
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> bit & 1)
    except (OSError, ValueError, IndexError):
        pass
    return os.geteuid() == 0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _names(dir_fd: int) -> list[str]:
    """The names in the directory `dir_fd` (an O_PATH fd or any fd of it)."""
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        return os.listdir(fd)
    finally:
        os.close(fd)


def _remove_one(parent: int, name: str) -> None:
    st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    if stat.S_ISDIR(st.st_mode):
        os.rmdir(name, dir_fd=parent)
    else:
        os.unlink(name, dir_fd=parent)


def _remove_tree(parent: int, name: str, device: int | None = None) -> None:
    """rm -rf of `name` in `parent`: symlinks are removed, never followed; a mount point (a
    directory on another file system than `device`, or any mount, a bind mount of the
    same file system included) is left, contents and all, as systemd does."""
    st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=parent)
        return
    if device is not None and st.st_dev != device:
        return
    fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    try:
        if _is_mount_point(fd):
            return
        for child in _names(fd):
            with contextlib.suppress(FileNotFoundError):
                _remove_tree(fd, child, st.st_dev)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent)


def _walk_below(fd: int, device: int) -> Iterator[tuple[int, int, str]]:
    """Everything below the directory `fd` on the same file system, depth first: an O_PATH
    fd of each (the caller closes it), its directory's fd and its name. Symlinks are
    yielded, never followed; mount points are yielded, never entered."""
    for name in sorted(_names(fd)):
        try:
            child = os.open(name, _PATH_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            continue
        st = os.fstat(child)
        if stat.S_ISDIR(st.st_mode) and st.st_dev == device and not _is_mount_point(child):
            try:
                yield from _walk_below(child, device)
            except BaseException:
                os.close(child)
                raise
        yield child, fd, name


# The mount points of this mount namespace (read once per run: `apply` resets it).
_mounts: frozenset[str] | None = None


def _is_mount_point(fd: int) -> bool:
    """Whether the directory `fd` is a mount point, bind mounts of the same file system
    included (st_dev cannot tell those): its path is in /proc/self/mountinfo."""
    global _mounts
    if _mounts is None:
        _mounts = _read_mounts()
    try:
        return os.readlink(f"/proc/self/fd/{fd}") in _mounts
    except OSError:
        return False


def _read_mounts() -> frozenset[str]:
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError:
        return frozenset()
    points = set()
    for line in lines:
        fields = line.split(" ")
        if len(fields) > 4:
            points.add(_unescape_mount(fields[4]))
    return frozenset(points)


def _unescape_mount(text: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (\\040, ...)."""
    if "\\" not in text:
        return text
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def _copy_node(source: int, parent: int, name: str) -> None:
    """Copy what `source` (an O_PATH fd) is to `name` in `parent`: modes and owners kept,
    symlinks copied as symlinks, directories recursively."""
    st = os.fstat(source)
    if stat.S_ISDIR(st.st_mode):
        os.mkdir(name, 0o700, dir_fd=parent)
        _copy_contents(source, parent, name)
    elif stat.S_ISREG(st.st_mode):
        reader = os.open(f"/proc/self/fd/{source}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            writer = os.open(
                name,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW,
                0o600,
                dir_fd=parent,
            )
            try:
                while chunk := os.read(reader, 1 << 16):
                    _write_all(writer, chunk)
            finally:
                os.close(writer)
        finally:
            os.close(reader)
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink("", dir_fd=source), name, dir_fd=parent)  # readlinkat(fd, "")
        os.chown(name, st.st_uid, st.st_gid, dir_fd=parent, follow_symlinks=False)
        return
    else:
        os.mknod(name, st.st_mode, st.st_rdev, dir_fd=parent)
    fd = os.open(name, _PATH_FLAGS, dir_fd=parent)
    try:
        _chown(fd, st.st_uid, st.st_gid)
        _chmod(fd, stat.S_IMODE(st.st_mode))
    finally:
        os.close(fd)


def _copy_contents(source: int, parent: int, name: str) -> None:
    target = os.open(name, _DIR_FLAGS, dir_fd=parent)
    try:
        for child in sorted(_names(source)):
            child_fd = os.open(child, _PATH_FLAGS, dir_fd=source)
            try:
                _copy_node(child_fd, target, child)
            finally:
                os.close(child_fd)
    finally:
        os.close(target)


# --- a whole run ----------------------------------------------------------------------------


def apply(
    root: str = "/",
    configs: Sequence[str] = (),
    *,
    create: bool = True,
    remove: bool = False,
    boot: bool = False,
    prefixes: Sequence[str] = (),
    exclude_prefixes: Sequence[str] = (),
    report: Callable[[Diagnostic], None] | None = None,
) -> TmpfilesRun:
    """Read the configuration below `root` (or `configs`) and carry it out: what
    `systemd-tmpfiles [--create] [--remove] [--boot] --root=ROOT` does (every line type;
    no ageing). Never raises for bad input or a failing line: the run says what failed."""
    global _mounts
    _mounts = None  # read again: mounts may have changed since the last run
    groups, run = load(
        root, configs, boot=boot, prefixes=prefixes, exclude_prefixes=exclude_prefixes
    )
    owners = _Owners(root)
    groups = [_known_owners(group, owners, run) for group in groups]
    tree = Tree(root)
    applier = Applier(tree, owners)
    done: set[int] = set()
    try:
        for phase, entry in plan(groups, create=create, remove=remove):
            try:
                if phase == CREATE_PHASE:
                    applier.create(entry)
                else:
                    applier.remove(entry)
            except Notice as exc:
                run.diagnostics.append(_diagnostic(Severity.WARNING, str(exc), entry))
            except Unsupported as exc:
                message = f"{tree.show(entry.path)}: {exc} (not applied here)"
                run.diagnostics.append(_diagnostic(Severity.HINT, message, entry))
            except UserDbError as exc:
                run.diagnostics.append(_diagnostic(Severity.ERROR, str(exc), entry))
                run.bad_lines += 1
                continue
            except Exception as exc:  # one line's failure (or cinit's own bug) is that line's
                message = _failure(exc, tree, entry)
                if entry.lenient and phase == CREATE_PHASE:
                    run.diagnostics.append(
                        _diagnostic(Severity.HINT, message + " (ignored: '-')", entry)
                    )
                else:
                    run.diagnostics.append(_diagnostic(Severity.ERROR, message, entry))
                    run.failed += 1
                    continue
            if id(entry) not in done:
                done.add(id(entry))
                run.applied += 1
    finally:
        tree.close()
    if report is not None:
        for diagnostic in run.diagnostics:
            report(diagnostic)
    return run


def _known_owners(
    group: list[TmpfilesEntry], owners: _Owners, run: TmpfilesRun
) -> list[TmpfilesEntry]:
    """The entries whose user and group exist: an unknown one makes a line unusable (as
    systemd-tmpfiles decides when it reads the line, whatever the run does)."""
    kept = []
    for entry in group:
        try:
            owners.ids(entry)
        except UserDbError as exc:
            run.diagnostics.append(_diagnostic(Severity.ERROR, str(exc), entry))
            run.bad_lines += 1
            continue
        kept.append(entry)
    return kept


def _diagnostic(severity: Severity, message: str, entry: TmpfilesEntry) -> Diagnostic:
    return Diagnostic(severity, message, entry.source, entry.line, directive=entry.kind)


def _failure(exc: Exception, tree: Tree, entry: TmpfilesEntry) -> str:
    if isinstance(exc, TmpfilesError):
        return str(exc)
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
    else:  # a value the kernel cannot take (device numbers out of range, ...) or a bug
        reason = f"{type(exc).__name__}: {exc}"[:200]
    return f"{entry.kind} {tree.show(entry.path)}: {reason}"
