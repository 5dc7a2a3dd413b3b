"""cinit's runtime directory: where its private sockets live (`/run/cinit` by default).

The directory is private to cinit: mode 0700 (0750 with a control group), owned by cinit's
own user. Nobody else may be able to replace what is in it, or the directory itself: a
user who could would answer `cinit is-ready` and receive `cinit stop`. So one check,
`open_trusted_dir`, is made by cinit before it binds there and by every client before it
connects: walking the path from `/`, each directory and symlink belongs to root or to
the caller's own user, no directory on the way is writable by another user (unless it
is sticky, as /tmp is: then others cannot rename what is not theirs), and the directory
itself is not a symlink and is writable by its owner only. A directory that fails is
refused with an `UntrustedDirectory` naming the path and the reason; cinit then binds no
socket there (its units still run), clients refuse to connect. A trusted directory of
ours with another mode (0755, say) is merely tightened to 0700: nobody else could write.
"""

from __future__ import annotations

import errno
import os
import stat

DEFAULT_RUNTIME_DIR = "/run/cinit"
RUNTIME_DIR_ENV = "CINIT_RUNTIME_DIR"
RUNTIME_DIR_MODE = 0o700
CONTROL_GROUP_ENV = "CINIT_CONTROL_GROUP"


def runtime_dir(explicit: str | None = None) -> str:
    """The runtime directory to use: `explicit` (--runtime-dir), else $CINIT_RUNTIME_DIR,
    else /run/cinit for root and, for another user (trying `cinit --example` on a
    workstation), $XDG_RUNTIME_DIR/cinit as systemd --user does. Empty counts as unset."""
    chosen = explicit or os.environ.get(RUNTIME_DIR_ENV)
    if chosen:
        return chosen
    user_dir = os.environ.get("XDG_RUNTIME_DIR")
    if user_dir and os.geteuid() != 0:
        return os.path.join(user_dir, "cinit")
    return DEFAULT_RUNTIME_DIR


PARENT_MODE = 0o755  # missing parents are created as `mkdir -p` would (less the umask)
_MAX_SYMLINKS = 40  # as the kernel's own limit for one lookup (ELOOP beyond)
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


class UntrustedDirectory(OSError):
    """A socket directory another user could change (see the module doc); `str()` names
    the path and the reason."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(errno.EPERM, f"{path} is not safe for cinit's sockets: {reason}", path)
        self.reason = reason

    def __str__(self) -> str:
        return str(self.args[1])


def _components(path: str) -> list[str]:
    return [part for part in path.split("/") if part and part != "."]


def open_trusted_dir(path: str, create_mode: int | None = None) -> int:
    """An O_PATH fd of directory `path`, checked as the module doc says, component by
    component with openat (nothing is looked up twice by name, so nothing can be swapped
    between the check and the use); with `create_mode`, missing components are made on the
    way (parents PARENT_MODE, the last one `create_mode`), each in a directory already
    checked. Raises `UntrustedDirectory`, FileNotFoundError (a component is missing),
    NotADirectoryError, PermissionError (a component cannot be searched by this user) or
    another OSError."""
    trusted = {0, os.geteuid()}
    pending = _components(path if path.startswith("/") else os.path.join(os.getcwd(), path))
    flags = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open("/", flags | os.O_DIRECTORY)
    walked, links = "/", 0
    try:
        _check_step(os.fstat(fd), "/", trusted, last=not pending)
        while pending:
            name = pending.pop(0)
            last = not pending
            child_path = os.path.join(walked, name)
            try:
                child = os.open(name, flags, dir_fd=fd)
            except FileNotFoundError:
                if create_mode is None:
                    missing = f"{child_path} does not exist"
                    raise FileNotFoundError(errno.ENOENT, missing, path) from None
                try:  # noqa: SIM105 - contextlib would be one more import on the probe path
                    os.mkdir(name, create_mode if last else PARENT_MODE, dir_fd=fd)
                except FileExistsError:
                    pass  # made meanwhile by somebody else: checked below like any other
                child = os.open(name, flags, dir_fd=fd)
            info = os.fstat(child)
            if stat.S_ISLNK(info.st_mode):
                if last:
                    os.close(child)
                    raise UntrustedDirectory(path, "it is a symlink")
                owner = info.st_uid
                os.close(child)
                if owner not in trusted:
                    raise UntrustedDirectory(path, f"symlink {child_path} belongs to uid {owner}")
                links += 1
                if links > _MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, f"too many symlinks in {path}", path)
                target = os.readlink(name, dir_fd=fd)
                pending[:0] = _components(target)
                if target.startswith("/"):
                    os.close(fd)
                    fd = os.open("/", flags | os.O_DIRECTORY)
                    walked = "/"
                continue
            os.close(fd)
            fd, walked = child, child_path
            if not stat.S_ISDIR(info.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, f"{child_path} is not a directory", path)
            _check_step(info, path if last else child_path, trusted, last)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_step(info: os.stat_result, where: str, trusted: set[int], last: bool) -> None:
    """A directory on the way (or, `last`, the socket directory itself) is trusted."""
    if info.st_uid not in trusted:
        mine = "root" if trusted == {0} else f"root or uid {os.geteuid()}"
        raise UntrustedDirectory(where, f"it belongs to uid {info.st_uid}, not to {mine}")
    mode = stat.S_IMODE(info.st_mode)
    if mode & _OTHERS_WRITE and (last or not mode & stat.S_ISVTX):
        raise UntrustedDirectory(where, f"mode {mode:04o} lets other users write to it")


def check_trusted_dir(path: str) -> None:
    """Raise as `open_trusted_dir` does unless `path` is a trusted socket directory."""
    os.close(open_trusted_dir(path))


def ensure_runtime_dir(path: str, mode: int = RUNTIME_DIR_MODE) -> str:
    """Create `path` (and its parents) if needed, check it (`open_trusted_dir`), set its
    mode (0700), return `path`. Raises what `open_trusted_dir` raises."""
    fd = open_trusted_dir(path, create_mode=mode)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != mode:
            # An O_PATH fd cannot be chmod'ed: open the very same directory for that.
            readable = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
            try:
                os.fchmod(readable, mode)
            finally:
                os.close(readable)
    finally:
        os.close(fd)
    return path


def control_group_id(group: str | None) -> int | None:
    """The gid that may use the event and control sockets besides root (`--control-group`,
    else $CINIT_CONTROL_GROUP: a group name or number); None: root only. Raises
    `cinit.io.userdb.UserDbError` for a group name that does not exist."""
    name = group or os.environ.get(CONTROL_GROUP_ENV, "")
    if not name:
        return None
    from cinit.io.userdb import lookup_group

    return lookup_group(name)


def share_with_group(path: str, gid: int | None, mode: int) -> None:
    """Give `path` to group `gid` with `mode` (0750 for the directory, 0660 for a socket);
    with no group, `mode` less its group bits."""
    if gid is None:
        os.chmod(path, mode & 0o700)
        return
    os.chown(path, -1, gid, follow_symlinks=False)
    os.chmod(path, mode)
