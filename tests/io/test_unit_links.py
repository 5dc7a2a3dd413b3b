"""`cinit.io.unit_links`: the links of systemctl's unit-file verbs, made below a root only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cinit.io.unit_links import LinkError, apply
from cinit.units.install import Op


def test_links_made_and_removed_with_systemctls_lines(tmp_path: Path) -> None:
    said: list[str] = []
    wants = "/etc/systemd/system/multi-user.target.wants"
    apply(str(tmp_path), [Op(f"{wants}/a.service", "/lib/systemd/system/a.service")], said.append)
    link = tmp_path / wants.lstrip("/") / "a.service"
    assert os.readlink(link) == "/lib/systemd/system/a.service"  # as given: inside the root
    assert oct((tmp_path / "etc/systemd").stat().st_mode & 0o777) == "0o755"
    apply(str(tmp_path), [Op(f"{wants}/a.service", "/dev/null", replace=True)], said.append)
    assert os.readlink(link) == "/dev/null"
    apply(str(tmp_path), [Op(f"{wants}/a.service", None), Op(wants, None, directory=True)],
          said.append)  # fmt: skip
    assert not link.parent.exists()
    shown = f"{tmp_path}{wants}/a.service"
    assert said == [
        f"Created symlink {shown} \u2192 /lib/systemd/system/a.service.",
        f"Created symlink {shown} \u2192 /dev/null.",
        f'Removed "{shown}".',
    ]


def test_a_directory_still_holding_entries_stays(tmp_path: Path) -> None:
    wants = tmp_path / "etc/x.wants"
    wants.mkdir(parents=True)
    (wants / "other.service").symlink_to("/dev/null")
    apply(str(tmp_path), [Op("/etc/x.wants", None, directory=True)], lambda _line: None)
    assert wants.is_dir()


@pytest.mark.parametrize("relative", [False, True])
def test_never_through_a_symlink(tmp_path: Path, relative: bool) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "etc").mkdir(parents=True)
    outside.mkdir()
    os.symlink("../../outside" if relative else str(outside), root / "etc/systemd")
    with pytest.raises(LinkError) as caught:
        apply(str(root), [Op("/etc/systemd/x.service", "/dev/null")], lambda _line: None)
    assert caught.value.filename == f"{root}/etc/systemd/x.service"  # as messages show it
    assert list(outside.iterdir()) == []


def test_dot_dot_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LinkError):
        apply(str(tmp_path), [Op("/etc/../../x.service", "/dev/null")], lambda _line: None)
    assert not (tmp_path.parent / "x.service").exists()
