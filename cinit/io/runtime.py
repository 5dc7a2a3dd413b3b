"""cinit's runtime directory: where its private sockets live (`/run/cinit` by default).

The directory is private to cinit: mode 0700, owned by cinit's own user. It is created
with its parents when missing and its mode is forced back to 0700 when it already exists
with another one. A path that exists but is not a real directory (a file, or a symlink,
which could point anywhere) and a directory owned by another user (who could change its
mode again later) are refused with an `OSError` naming the path.
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


def ensure_runtime_dir(path: str, mode: int = RUNTIME_DIR_MODE) -> str:
    """Create `path` (and its parents) if needed, set its mode (0700), return `path`.

    Parents are created with mode 0755 (less the umask), as `mkdir -p` does. Raises
    OSError when the path cannot be created, is not a directory, is a symlink, or belongs
    to another user.
    """
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        pass
    except FileNotFoundError:
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, 0o755, exist_ok=True)
        try:  # noqa: SIM105 - contextlib would be one more import on the boot path
            os.mkdir(path, mode)
        except FileExistsError:
            pass  # created meanwhile by somebody else: checked below like any existing one
    # O_NOFOLLOW|O_DIRECTORY: the mode is set on this very directory, never through a link.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ENOTDIR, errno.ELOOP):
            kind = "a symlink" if os.path.islink(path) else "not a directory"
            raise NotADirectoryError(
                errno.ENOTDIR, f"runtime directory {path} exists and is {kind}", path
            ) from None
        raise
    try:
        info = os.fstat(fd)
        if info.st_uid != os.geteuid():
            raise PermissionError(
                errno.EPERM,
                f"runtime directory {path} belongs to uid {info.st_uid}, not to cinit's "
                f"uid {os.geteuid()}",
                path,
            )
        if stat.S_IMODE(info.st_mode) != mode:
            os.fchmod(fd, mode)
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
