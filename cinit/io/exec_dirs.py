"""A service's exec directories (systemd.exec(5)): RuntimeDirectory=, StateDirectory=,
CacheDirectory=, LogsDirectory=, ConfigurationDirectory=.

Created by cinit itself (root), not by the child: the child may already run as User=,
and the directory must be created, and given to that user, by someone who may. Each name
is a relative path under its kind's root (/run, /var/lib, /var/cache, /var/log, /etc);
missing parents are created root-owned with mode 0755; the innermost directory gets its
kind's *DirectoryMode= (umask or not) and, except for ConfigurationDirectory=, the
service's User= and Group= as owner. An existing directory is given the mode again, and
when its owner is not the service's, it and its contents are given to the service (as
systemd does when User= changed; symlinks are not followed). The service finds them in
$RUNTIME_DIRECTORY, $STATE_DIRECTORY, ... (colon-separated, as systemd sets them).

RuntimeDirectory= is removed again when the unit stops (`remove_runtime_directories`),
unless RuntimeDirectoryPreserve= says otherwise (the unit's machine decides when).
"""

from __future__ import annotations

import os
import stat

from cinit.units.model import DIRECTORY_ROOTS, DirectoryKind, ServiceSection

# systemd's exit statuses when a directory cannot be set up (EXIT_RUNTIME_DIRECTORY, ...).
EXIT_CODES = {
    DirectoryKind.RUNTIME: 233,
    DirectoryKind.STATE: 238,
    DirectoryKind.CACHE: 239,
    DirectoryKind.LOGS: 240,
    DirectoryKind.CONFIGURATION: 241,
}
_PARENT_MODE = 0o755


class DirectoryError(Exception):
    """A directory that could not be set up; `str()` is the line to log (without the
    unit's name), `exit_code` systemd's status for it."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def prepare_directories(
    service: ServiceSection, uid: int, gid: int, root: str = "/"
) -> dict[str, str]:
    """Create (or fix up) every exec directory of `service`, owned by `uid`/`gid` (-1:
    leave as created, root's); the environment variables that name them. `root` is for
    tests (a temporary tree standing for /). Raises DirectoryError."""
    env: dict[str, str] = {}
    for kind in DirectoryKind:
        names = service.directories(kind)
        if not names:
            continue
        base = DIRECTORY_ROOTS[kind]
        mode = service.directory_mode(kind)
        owner = (-1, -1) if kind is DirectoryKind.CONFIGURATION else (uid, gid)
        paths = []
        for name in names:
            path = os.path.join(base, name)
            try:
                _make(os.path.join(root, path.lstrip("/")), mode, owner)
            except OSError as exc:
                reason = exc.strerror or str(exc)
                raise DirectoryError(
                    f"cannot set up {kind.value}Directory={name} ({path}): {reason}",
                    EXIT_CODES[kind],
                ) from None
            paths.append(path)
        env[f"{kind.name}_DIRECTORY"] = ":".join(paths)
    return env


def _make(path: str, mode: int, owner: tuple[int, int]) -> None:
    missing = []
    parent = os.path.dirname(path)
    while parent and not os.path.isdir(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    for directory in reversed(missing):  # root's, 0755 whatever the umask (`mkdir -p`)
        try:
            os.mkdir(directory)
        except FileExistsError:
            continue  # made meanwhile (another unit sharing the parent)
        os.chmod(directory, _PARENT_MODE)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        if not stat.S_ISDIR(os.stat(path).st_mode):
            raise NotADirectoryError(20, "exists and is not a directory") from None
    # Explicitly: mkdir's mode is cut by the umask, and an existing directory keeps its own.
    os.chmod(path, mode)
    if owner == (-1, -1):
        return
    info = os.stat(path)
    uid = info.st_uid if owner[0] < 0 else owner[0]
    gid = info.st_gid if owner[1] < 0 else owner[1]
    if (info.st_uid, info.st_gid) != (uid, gid):
        # A new directory, or User= changed: what is inside goes to the user too, as
        # systemd does (a state directory the old user filled must stay usable).
        _chown_tree(path, uid, gid)


def _chown_tree(path: str, uid: int, gid: int) -> None:
    """`path` and everything under it to uid:gid; symlinks themselves, never followed."""
    os.chown(path, uid, gid)
    for top, dirs, files in os.walk(path):  # does not descend through symlinks
        for name in dirs + files:
            os.chown(os.path.join(top, name), uid, gid, follow_symlinks=False)


def remove_runtime_directories(service: ServiceSection, root: str = "/") -> list[str]:
    """Remove the service's RuntimeDirectory= trees (never a parent: another unit may
    share it); a symlink is removed, not followed. The problems, as lines to log."""
    import shutil  # only units with a runtime directory, at stop: off the boot path

    problems: list[str] = []
    base = DIRECTORY_ROOTS[DirectoryKind.RUNTIME]
    for name in service.runtime_directory:
        path = os.path.join(root, base.lstrip("/"), name)
        try:
            if os.path.islink(path):
                os.unlink(path)
            elif os.path.isdir(path):  # anything else there was never ours to remove
                shutil.rmtree(path)
        except OSError as exc:
            problems.append(f"cannot remove RuntimeDirectory={name}: {exc}")
    return problems
