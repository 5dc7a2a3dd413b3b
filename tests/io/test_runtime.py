"""`cinit.io.runtime`: choosing and preparing the runtime directory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cinit.io.runtime import DEFAULT_RUNTIME_DIR, ensure_runtime_dir, runtime_dir

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
    target.chmod(0o777)
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
    with pytest.raises(NotADirectoryError, match="exists and is not a directory"):
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
    with pytest.raises(PermissionError, match="belongs to uid 65534"):
        ensure_runtime_dir(str(target))


def test_a_custom_mode_for_shared_directories(tmp_path: Path) -> None:
    target = tmp_path / "shared"
    ensure_runtime_dir(str(target), 0o755)
    assert mode(target) == 0o755
