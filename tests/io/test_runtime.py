"""`cinit.io.runtime`: choosing and preparing the runtime directory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cinit.io.runtime import (
    DEFAULT_RUNTIME_DIR,
    UntrustedDirectory,
    check_trusted_dir,
    ensure_runtime_dir,
    runtime_dir,
)

pytestmark = pytest.mark.timeout(30)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_explicit_beats_environment_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CINIT_RUNTIME_DIR", raising=False)
    assert runtime_dir() == DEFAULT_RUNTIME_DIR == "/run/cinit"
    assert runtime_dir("") == "/run/cinit"
    monkeypatch.setenv("CINIT_RUNTIME_DIR", "/tmp/from-env")
    assert runtime_dir() == "/tmp/from-env"
    assert runtime_dir(None) == "/tmp/from-env"
    assert runtime_dir("/tmp/explicit") == "/tmp/explicit"
    monkeypatch.setenv("CINIT_RUNTIME_DIR", "")
    assert runtime_dir() == "/run/cinit"


def test_another_user_defaults_to_their_xdg_runtime_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CINIT_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert runtime_dir() == "/run/user/1000/cinit"
    assert runtime_dir("/tmp/explicit") == "/tmp/explicit"
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert runtime_dir() == "/run/cinit"  # root keeps /run/cinit, as system services do
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert runtime_dir() == "/run/cinit"


def test_creates_missing_parents_and_the_directory_0700(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "cinit"
    assert ensure_runtime_dir(str(target)) == str(target)
    assert target.is_dir()
    assert mode(target) == 0o700
    old_umask = os.umask(0o022)
    os.umask(old_umask)
    assert mode(tmp_path / "a") == 0o755 & ~old_umask


def test_an_existing_directory_is_forced_to_0700(tmp_path: Path) -> None:
    target = tmp_path / "run"
    target.mkdir()
    target.chmod(0o755)  # nobody else could write to it: tightened, not refused
    (target / "kept").write_text("contents are left alone")
    ensure_runtime_dir(str(target))
    assert mode(target) == 0o700
    assert (target / "kept").read_text() == "contents are left alone"
    ensure_runtime_dir(str(target))  # idempotent
    assert mode(target) == 0o700


def test_a_umask_does_not_weaken_or_change_the_mode(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        ensure_runtime_dir(str(tmp_path / "masked"))
    finally:
        os.umask(old)
    assert mode(tmp_path / "masked") == 0o700


def test_a_file_in_the_way_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("not a directory")
    with pytest.raises(NotADirectoryError, match="is not a directory"):
        ensure_runtime_dir(str(target))
    assert target.read_text() == "not a directory"


def test_a_symlink_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o755)
    real.chmod(0o755)
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(OSError, match="is a symlink"):
        ensure_runtime_dir(str(link))
    assert mode(real) == 0o755


def test_a_parent_that_is_a_file_raises(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    with pytest.raises(OSError):
        ensure_runtime_dir(str(tmp_path / "plain" / "cinit"))


def test_a_directory_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give a directory away")
    target = tmp_path / "theirs"
    target.mkdir(mode=0o755)
    os.chown(target, 65534, 65534)
    with pytest.raises(UntrustedDirectory, match="belongs to uid 65534"):
        ensure_runtime_dir(str(target))


def test_a_custom_mode_for_shared_directories(tmp_path: Path) -> None:
    target = tmp_path / "shared"
    ensure_runtime_dir(str(target), 0o755)
    assert mode(target) == 0o755


# ---- issue 13 item 2: a directory another user could change is never used ----------------

NOBODY = 65534


def needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give files to another user")


def test_a_writable_directory_of_root_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    for bits in (0o777, 0o770, 0o1777):
        target = tmp_path / f"open-{bits:o}"
        target.mkdir()
        target.chmod(bits)
        with pytest.raises(UntrustedDirectory, match=f"mode {bits:04o} lets other users write"):
            ensure_runtime_dir(str(target))
        assert stat.S_IMODE(os.lstat(target).st_mode) == bits
        with pytest.raises(UntrustedDirectory):
            check_trusted_dir(str(target))


def test_a_0777_directory_of_nobody_is_refused(tmp_path: Path) -> None:
    needs_root()
    target = tmp_path / "theirs"
    target.mkdir()
    target.chmod(0o777)
    os.chown(target, NOBODY, NOBODY)
    with pytest.raises(UntrustedDirectory, match="belongs to uid 65534, not to root"):
        ensure_runtime_dir(str(target))
    with pytest.raises(UntrustedDirectory, match="belongs to uid 65534"):
        check_trusted_dir(str(target))


def test_a_symlink_to_a_directory_of_nobody_is_refused(tmp_path: Path) -> None:
    needs_root()
    real = tmp_path / "theirs"
    real.mkdir(mode=0o700)
    os.chown(real, NOBODY, NOBODY)
    link = tmp_path / "run"
    link.symlink_to(real)
    with pytest.raises(UntrustedDirectory, match="is a symlink"):
        ensure_runtime_dir(str(link))
    with pytest.raises(UntrustedDirectory, match="is a symlink"):
        check_trusted_dir(str(link))


def test_a_parent_others_can_write_is_refused_unless_sticky(tmp_path: Path) -> None:
    parent = tmp_path / "shared"
    parent.mkdir()
    parent.chmod(0o777)  # anybody could rename the runtime dir away and put theirs there
    with pytest.raises(UntrustedDirectory, match=f"{parent} is not safe"):
        ensure_runtime_dir(str(parent / "run"))
    assert not (parent / "run").exists(), "created inside an untrusted directory"
    parent.chmod(0o1777)  # sticky, as /tmp: others cannot rename what is not theirs
    ensure_runtime_dir(str(parent / "run"))
    check_trusted_dir(str(parent / "run"))


def test_a_parent_of_another_user_is_refused_even_when_closed(tmp_path: Path) -> None:
    needs_root()
    parent = tmp_path / "home-of-nobody"
    parent.mkdir(mode=0o755)
    (parent / "run").mkdir(mode=0o700)
    os.chown(parent, NOBODY, NOBODY)  # its owner may rename `run` and put another there
    with pytest.raises(UntrustedDirectory, match=r"home-of-nobody is not safe.*uid 65534"):
        check_trusted_dir(str(parent / "run"))


def test_a_symlink_on_the_way_counts_as_its_owner_and_target(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "run").mkdir(parents=True, mode=0o700)
    (tmp_path / "alias").symlink_to("real")  # root's link in root's directory: followed
    check_trusted_dir(str(tmp_path / "alias" / "run"))
    (tmp_path / "absolute").symlink_to(real)
    check_trusted_dir(str(tmp_path / "absolute" / "run"))
    check_trusted_dir(str(tmp_path / "real" / ".." / "alias" / "." / "run"))
    if os.geteuid() != 0:
        return
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    theirs = sticky / "link"
    theirs.symlink_to(real)
    os.chown(theirs, NOBODY, NOBODY, follow_symlinks=False)  # nobody may swap it any time
    with pytest.raises(UntrustedDirectory, match=r"symlink .*link belongs to uid 65534"):
        check_trusted_dir(str(theirs / "run"))


def test_a_relative_path_is_walked_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ensure_runtime_dir("rel/run")
    assert mode(tmp_path / "rel" / "run") == 0o700
    check_trusted_dir("rel/run")


def test_the_check_alone_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_trusted_dir(str(tmp_path / "missing" / "run"))
    assert not (tmp_path / "missing").exists()


def test_a_symlink_loop_is_an_error_not_a_hang(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(OSError, match="too many symlinks"):
        check_trusted_dir(str(tmp_path / "a" / "run"))
