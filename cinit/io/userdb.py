"""User= and Group= resolution from /etc/passwd and /etc/group, read at spawn time.

The files are parsed here rather than through `pwd`/`grp`, so that the answer always
reflects the files as they are now (an earlier oneshot unit may have just created the
user), so that no NSS module is loaded into PID 1, and so that tests can point at another
root (`root=` prefix). Malformed lines are skipped, as the C library does.
"""

from __future__ import annotations

import os


class UserDbError(Exception):
    """A User=/Group= value that cannot be resolved; the message says which and why.

    `stage` is `user` or `group`: which one failed (systemd's 217/USER or 216/GROUP)."""

    def __init__(self, message: str, stage: str) -> None:
        super().__init__(message)
        self.stage = stage


class UserRecord:
    """One /etc/passwd entry."""

    __slots__ = ("gid", "home", "name", "shell", "uid")

    def __init__(self, name: str, uid: int, gid: int, home: str, shell: str) -> None:
        self.name = name
        self.uid = uid
        self.gid = gid
        self.home = home
        self.shell = shell


class GroupRecord:
    """One /etc/group entry."""

    __slots__ = ("gid", "members", "name")

    def __init__(self, name: str, gid: int, members: tuple[str, ...]) -> None:
        self.name = name
        self.gid = gid
        self.members = members


class Credentials:
    """What a child switches to before exec: uid, primary gid, supplementary groups."""

    __slots__ = ("gid", "groups", "home", "uid", "user")

    def __init__(self, uid: int, gid: int, groups: tuple[int, ...], home: str, user: str) -> None:
        self.uid = uid
        self.gid = gid
        self.groups = groups  # sorted, includes gid
        self.home = home
        self.user = user

    def __repr__(self) -> str:
        ids = f"uid={self.uid}, gid={self.gid}, groups={self.groups}"
        return f"Credentials(user={self.user!r}, {ids})"


def _rows(path: str, width: int) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    rows = []
    for line in text.splitlines():
        if not line or line.startswith(("#", "+", "-")):
            continue  # comments and NIS compat entries
        fields = line.split(":")
        if len(fields) >= width:
            rows.append(fields)
    return rows


def read_passwd(root: str = "/") -> list[UserRecord]:
    """Every well-formed entry of `<root>/etc/passwd`."""
    users = []
    for f in _rows(os.path.join(root, "etc/passwd"), 7):
        try:
            users.append(UserRecord(f[0], int(f[2]), int(f[3]), f[5], f[6]))
        except ValueError:
            continue
    return users


def read_group(root: str = "/") -> list[GroupRecord]:
    """Every well-formed entry of `<root>/etc/group`."""
    groups = []
    for f in _rows(os.path.join(root, "etc/group"), 4):
        try:
            members = tuple(m for m in f[3].split(",") if m)
            groups.append(GroupRecord(f[0], int(f[2]), members))
        except ValueError:
            continue
    return groups


def lookup_user(user: str, root: str = "/") -> UserRecord:
    """A user by name or numeric uid; a name is looked up first (like systemd)."""
    users = read_passwd(root)
    for record in users:
        if record.name == user:
            return record
    if user.isdigit():
        uid = int(user)
        for record in users:
            if record.uid == uid:
                return record
    passwd = os.path.join(root, "etc/passwd")
    raise UserDbError(f"unknown user {user!r} (not in {passwd})", "user")


def lookup_group(group: str, root: str = "/", groups: list[GroupRecord] | None = None) -> int:
    """A group's gid by name or number (a number needs no entry)."""
    for record in groups if groups is not None else read_group(root):
        if record.name == group:
            return record.gid
    if group.isdigit():
        return int(group)
    group_file = os.path.join(root, "etc/group")
    raise UserDbError(f"unknown group {group!r} (not in {group_file})", "group")


def resolve_credentials(user: str, group: str, root: str = "/") -> Credentials:
    """Credentials for User=/Group= (either may be empty).

    With User=: uid and home from passwd; gid from Group= or else the passwd entry;
    supplementary groups are the gid plus every group that lists the user (initgroups).
    A numeric uid without a passwd entry is accepted only together with Group=.
    With only Group=: cinit's own uid, that gid, no other supplementary groups.
    """
    all_groups = read_group(root)
    if not user:
        gid = lookup_group(group, root, all_groups)
        uid = os.getuid()
        return Credentials(uid, gid, (gid,), _home_of_uid(uid, root), str(uid))
    try:
        record = lookup_user(user, root)
    except UserDbError:
        if not (user.isdigit() and group):
            raise
        gid = lookup_group(group, root, all_groups)
        return Credentials(int(user), gid, (gid,), "/", user)
    gid = lookup_group(group, root, all_groups) if group else record.gid
    supplementary = {g.gid for g in all_groups if record.name in g.members}
    supplementary.add(gid)
    return Credentials(record.uid, gid, tuple(sorted(supplementary)), record.home, record.name)


def _home_of_uid(uid: int, root: str) -> str:
    for record in read_passwd(root):
        if record.uid == uid:
            return record.home
    return "/"


def home_directory(user: str, root: str = "/") -> str:
    """The home of `user` (or of cinit's own uid when empty), for WorkingDirectory=~."""
    if not user:
        return _home_of_uid(os.getuid(), root)
    return lookup_user(user, root).home
