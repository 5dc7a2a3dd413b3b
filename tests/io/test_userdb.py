"""`cinit.io.userdb`: /etc/passwd and /etc/group parsing with a root prefix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cinit.io.userdb import UserDbError, home_directory, lookup_user, resolve_credentials


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text(
        "# comment\n"
        "root:x:0:0:root:/root:/bin/bash\n"
        "broken line without colons\n"
        "bad:x:notanumber:1:::\n"
        "+nisuser::::::\n"
        "app:x:1000:1000:App:/home/app:/bin/sh\n"
        "1234:x:2000:2000:numeric name:/home/n:/bin/sh\n"
    )
    (tmp_path / "etc/group").write_text(
        "root:x:0:\napp:x:1000:\nwheel:x:10:root,app\naudio:x:29:app\nvideo:x:44:other\n"
    )
    return tmp_path


def test_user_with_supplementary_groups(root: Path) -> None:
    creds = resolve_credentials("app", "", str(root))
    assert (creds.uid, creds.gid, creds.groups) == (1000, 1000, (10, 29, 1000))
    assert creds.home == "/home/app"


def test_group_overrides_primary_gid(root: Path) -> None:
    creds = resolve_credentials("app", "video", str(root))
    assert (creds.gid, creds.groups) == (44, (10, 29, 44))


def test_numeric_values(root: Path) -> None:
    assert resolve_credentials("1000", "", str(root)).user == "app"
    # A name made of digits is a name first, as systemd resolves it.
    assert lookup_user("1234", str(root)).uid == 2000
    bare = resolve_credentials("5555", "5555", str(root))
    assert (bare.uid, bare.gid, bare.groups, bare.home) == (5555, 5555, (5555,), "/")
    with pytest.raises(UserDbError, match="unknown user '5555'"):
        resolve_credentials("5555", "", str(root))


def test_group_only_keeps_own_uid(root: Path) -> None:
    creds = resolve_credentials("", "audio", str(root))
    assert (creds.uid, creds.gid, creds.groups) == (os.getuid(), 29, (29,))


def test_unknown_names_and_malformed_lines(root: Path) -> None:
    with pytest.raises(UserDbError, match=r"unknown user 'bad' \(not in .*etc/passwd\)"):
        lookup_user("bad", str(root))
    with pytest.raises(UserDbError, match="unknown user"):
        lookup_user("nisuser", str(root))
    with pytest.raises(UserDbError, match="unknown group 'nope'"):
        resolve_credentials("app", "nope", str(root))


def test_files_are_read_at_each_call(root: Path) -> None:
    with pytest.raises(UserDbError):
        lookup_user("late", str(root))
    with open(root / "etc/passwd", "a") as f:
        f.write("late:x:3000:3000::/srv/late:/bin/sh\n")
    assert home_directory("late", str(root)) == "/srv/late"
