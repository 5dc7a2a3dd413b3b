"""Reading the files units name (unit files, EnvironmentFile=): regular files only.

The one place in cinit.units that opens files. A FIFO, socket or device named where a
regular file belongs is refused before anything reads it: opening a FIFO waits for a writer
(it would hold PID 1 or a unit's actor forever), and opening a device can act on it.
"""

from __future__ import annotations

import errno
import os
import stat

# O_NONBLOCK: opening a FIFO must not wait for a writer;
# O_NOCTTY: a terminal named there never becomes cinit's controlling terminal.
_OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
_READ_CHUNK = 64 * 1024


class NotRegularFileError(OSError):
    """A path that names something other than a regular file; `kind` says what it is."""

    def __init__(self, path: str, kind: str) -> None:
        code = errno.EISDIR if kind == "a directory" else errno.EINVAL
        super().__init__(code, f"is {kind}, not a regular file", path)
        self.kind = kind


_KINDS = (
    (stat.S_ISREG, "a regular file"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def file_kind(mode: int) -> str:
    """What kind of file `mode` (an st_mode) is, in words: "a FIFO (named pipe)", ..."""
    return next((kind for test, kind in _KINDS if test(mode)), "of an unknown kind")


def read_regular_file(path: str, limit: int, *, known_regular: bool = False) -> bytes:
    """Up to `limit` bytes of `path`, a regular file (else `NotRegularFileError`).

    What a directory listing did not show as a regular file (a symlink, say) is looked at
    before it is opened; the fstat after the open settles it for a file replaced in between.
    os.read costs half of open() for small files.
    """
    if not known_regular:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(path, file_kind(mode))
    fd = os.open(path, _OPEN_FLAGS)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(path, file_kind(mode))
        chunks: list[bytes] = []
        total = 0
        while total < limit:
            chunk = os.read(fd, min(_READ_CHUNK, limit - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
