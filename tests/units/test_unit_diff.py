"""`diff_units`: what a daemon-reload tells (added, removed, changed with directives). Pure."""

from __future__ import annotations

from pathlib import Path

from cinit.units import load_units
from cinit.units.unit_diff import UnitSetDiff, diff_units


def load(tmp_path: Path, name: str, files: dict[str, str]) -> dict:
    units, drop_ins = tmp_path / name / "units", tmp_path / name / "drop-in"
    units.mkdir(parents=True)
    drop_ins.mkdir(parents=True)
    for file, text in files.items():
        (units / file).write_text(text)
    unit_set = load_units(str(units), str(drop_ins))
    assert unit_set.ok, [d.format() for d in unit_set.diagnostics]
    return dict(unit_set.units)


def test_added_removed_and_changed_with_the_directives_that_changed(tmp_path: Path) -> None:
    old = load(
        tmp_path,
        "old",
        {
            "web.service": "[Service]\nExecStart=/bin/sleep 1\n",
            "gone.service": "[Service]\nExecStart=/bin/true\n",
            "same.service": "[Unit]\nDescription=same\n[Service]\nExecStart=/bin/true\n",
            "cond.service": "[Unit]\nConditionPathExists=/a\n[Service]\nExecStart=/bin/true\n",
        },
    )
    new = load(
        tmp_path,
        "new",
        {
            "web.service": "[Unit]\nDescription=web\n[Service]\nType=exec\n"
            "ExecStart=/bin/sleep 2\nExecReload=/bin/true\n",
            "same.service": "[Unit]\nDescription=same\n[Service]\nExecStart=/bin/true\n",
            "cond.service": "[Unit]\nConditionPathExists=/b\nConditionFileNotEmpty=/c\n"
            "[Service]\nExecStart=/bin/true\n",
            "new.service": "[Service]\nExecStart=/bin/true\n",
        },
    )
    diff = diff_units(old, new)
    assert diff.added == ("new.service",) and diff.removed == ("gone.service",)
    assert diff.changed == {
        "cond.service": ("ConditionFileNotEmpty", "ConditionPathExists"),
        "web.service": ("Description", "ExecReload", "ExecStart", "Type"),
    }
    assert diff.lines() == [
        "~ cond.service: ConditionFileNotEmpty, ConditionPathExists",
        "- gone.service",
        "+ new.service",
        "~ web.service: Description, ExecReload, ExecStart, Type",
    ]
    assert not diff.empty and diff_units(new, new) == UnitSetDiff() and UnitSetDiff().empty
