"""Making and removing the links of systemctl's unit-file verbs, below a root directory.

`cinit.units.install` decides (a list of `Op`s: link PATH -> TARGET, or remove PATH, with
paths inside the root); this carries them out. Never outside the root: every directory on
the way is opened with O_NOFOLLOW from the root's descriptor (made when missing, mode 0755),
so a symlink planted in the image (`/etc/systemd/system -> /`, a `.wants` link to the host's
/etc) makes the operation fail instead of writing elsewhere. The link's target is written as
given: an absolute path means the same inside the root, as `systemctl --root` writes it.
"""

from __future__ import annotations

import errno
import os

from cinit.boot_path import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from cinit.units.install import Op

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class LinkError(OSError):
    """An operation that could not be carried out (the message names the path)."""


def _open_parent(root: str, path: str, create: bool) -> tuple[int, str]:
    """A descriptor of `path`'s directory (inside `root`, no symlink followed) and the
    entry's name; directories are made on the way when `create`."""
    parts = [part for part in path.split("/") if part]
    if not parts or any(part in (".", "..") for part in parts):
        raise LinkError(errno.EINVAL, "not a plain absolute path", path)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            try:
                following = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o755, dir_fd=fd)
                following = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise LinkError(
                        exc.errno, "a directory on the way is a symlink or no directory", path
                    ) from None
                raise
            os.close(fd)
            fd = following
    except BaseException:
        os.close(fd)
        raise
    return fd, parts[-1]


def host_path(root: str, path: str) -> str:
    """Where `path` (inside the root) is on this machine, as messages name it."""
    return path if root in ("", "/") else root.rstrip("/") + path


def apply(root: str, ops: Iterable[Op], say: Callable[[str], None]) -> None:
    """Carry out `ops` below `root` in order, calling `say` with systemctl's line for each
    ("Created symlink A → B.", 'Removed "A".'); stops at the first failure (LinkError or
    OSError, with the path)."""
    for op in ops:
        shown = host_path(root, op.path)
        try:
            fd, name = _open_parent(root, op.path, create=op.target is not None)
        except OSError as exc:
            raise LinkError(exc.errno or errno.EIO, exc.strerror or str(exc), shown) from None
        try:
            if op.directory:  # an emptied directory: gone quietly (systemctl says nothing)
                try:
                    os.rmdir(name, dir_fd=fd)
                except OSError as exc:
                    if exc.errno not in (errno.ENOENT, errno.ENOTEMPTY):
                        raise
                continue
            if op.target is None or op.replace:
                try:
                    os.unlink(name, dir_fd=fd)
                except FileNotFoundError:
                    if op.target is None:
                        continue
                if op.target is None:
                    say(f'Removed "{shown}".')
                    continue
            os.symlink(op.target, name, dir_fd=fd)
            say(f"Created symlink {shown} \u2192 {op.target}.")
        except OSError as exc:
            raise LinkError(exc.errno or errno.EIO, exc.strerror or str(exc), shown) from None
        finally:
            os.close(fd)
