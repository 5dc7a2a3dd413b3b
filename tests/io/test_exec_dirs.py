"""`cinit.io.exec_dirs` on a temporary tree standing for /: what each kind of directory
becomes, and what removing the runtime ones touches (only theirs, never through a link)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cinit.io.exec_dirs import DirectoryError, prepare_directories, remove_runtime_directories
from cinit.units import parse_unit
from cinit.units.model import ServiceSection

pytestmark = pytest.mark.timeout(30)


def service(body: str) -> ServiceSection:
    unit, diags = parse_unit("a.service", f"[Service]\nExecStart=/bin/true\n{body}", environ={})
    assert diags == [] and unit is not None and unit.service is not None
    return unit.service


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_each_kind_lands_under_its_root_owned_as_systemd_says(tmp_path: Path) -> None:
    svc = service(
        "RuntimeDirectory=web/sub\nRuntimeDirectoryMode=2750\nStateDirectory=web\n"
        "CacheDirectory=web\nLogsDirectory=web\nConfigurationDirectory=web\n"
    )
    old = os.umask(0o077)  # the modes are given whatever the umask
    try:
        env = prepare_directories(svc, 65534, 65534, str(tmp_path))
    finally:
        os.umask(old)
    assert env == {
        "RUNTIME_DIRECTORY": "/run/web/sub",
        "STATE_DIRECTORY": "/var/lib/web",
        "CACHE_DIRECTORY": "/var/cache/web",
        "LOGS_DIRECTORY": "/var/log/web",
        "CONFIGURATION_DIRECTORY": "/etc/web",
    }
    runtime = tmp_path / "run/web/sub"
    assert mode(runtime) == 0o2750 and (runtime.stat().st_uid, runtime.stat().st_gid) == (
        65534,
        65534,
    )
    assert mode(tmp_path / "run/web") == 0o755 and (tmp_path / "run/web").stat().st_uid == 0
    for path in ("var/lib/web", "var/cache/web", "var/log/web"):
        assert (tmp_path / path).stat().st_uid == 65534 and mode(tmp_path / path) == 0o755
    assert (tmp_path / "etc/web").stat().st_uid == 0  # ConfigurationDirectory=: root's


def test_an_existing_directory_gets_its_mode_again(tmp_path: Path) -> None:
    (tmp_path / "run/web").mkdir(parents=True)
    os.chmod(tmp_path / "run/web", 0o777)
    prepare_directories(service("RuntimeDirectory=web\n"), -1, -1, str(tmp_path))
    assert mode(tmp_path / "run/web") == 0o755


def test_a_file_in_the_way_is_an_error_with_systemds_status(tmp_path: Path) -> None:
    (tmp_path / "var/lib").mkdir(parents=True)
    (tmp_path / "var/lib/web").write_text("x")
    with pytest.raises(DirectoryError) as caught:
        prepare_directories(service("StateDirectory=web\n"), -1, -1, str(tmp_path))
    assert caught.value.exit_code == 238
    assert str(caught.value).startswith("cannot set up StateDirectory=web (/var/lib/web): ")


def test_removal_takes_the_tree_but_never_follows_a_link_or_removes_a_file(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("precious")
    run = tmp_path / "run"
    (run / "web/deep").mkdir(parents=True)
    (run / "web/deep/file").write_text("x")
    os.symlink(outside, run / "linked")
    (run / "afile").write_text("not ours")
    svc = service("RuntimeDirectory=web linked afile\n")
    assert remove_runtime_directories(svc, str(tmp_path)) == []
    assert not (run / "web").exists()
    assert not (run / "linked").is_symlink() and (outside / "keep").read_text() == "precious"
    assert (run / "afile").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_a_directory_of_another_owner_is_given_to_the_user_with_its_contents(
    tmp_path: Path,
) -> None:
    state = tmp_path / "var/lib/web"
    (state / "sub").mkdir(parents=True)
    (state / "sub/data").write_text("x")
    outside = tmp_path / "outside"
    outside.write_text("not the unit's")
    os.symlink(outside, state / "link")
    prepare_directories(service("StateDirectory=web\n"), 65534, 65534, str(tmp_path))
    for path in (state, state / "sub", state / "sub/data"):
        assert (path.stat().st_uid, path.stat().st_gid) == (65534, 65534), path
    assert os.lstat(state / "link").st_uid == 65534  # the link itself...
    assert outside.stat().st_uid == 0  # ...never what it points to
    # Owned right already: nothing inside is touched again.
    os.chown(state / "sub/data", 0, 0)
    prepare_directories(service("StateDirectory=web\n"), 65534, 65534, str(tmp_path))
    assert (state / "sub/data").stat().st_uid == 0
