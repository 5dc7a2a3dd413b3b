"""Helpers shared by the spawn tests of `cinit.io.spawn` (prepared and held children)."""

from __future__ import annotations

import os


def read_all(fd: int) -> str:
    """Everything until end of file on `fd`, which is closed then."""
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode()
