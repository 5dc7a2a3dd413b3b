"""bench/footprint.py on the standalone build: the sizes it prints and the rows it hands to
bench/report.py (docs/benchmarks.md). Sizes are exact, so its numbers are checked against
the files themselves; whether the targets are met is the bench's to say, not this test's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "bin" / "cinit.dist"
MIB = 1024 * 1024

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, dict[str, object]]]:
    if not (BUNDLE / "libexec" / "cinit").exists():
        pytest.skip("no standalone build in bin/ (make standalone)")
    out = tmp_path_factory.mktemp("footprint") / "footprint.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "footprint.py"), "--dist", "/nonexistent",
         "--json", str(out)],
        capture_output=True, text=True, timeout=100, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = {row["metric"].strip(): row for row in json.loads(out.read_text())["rows"]}
    return done.stdout, rows


def test_it_prints_each_size_beside_its_target_and_whether_it_is_met(
    measured: tuple[str, dict[str, dict[str, object]]],
) -> None:
    printed, rows = measured
    for label, metric in (("on disk (sum of file sizes)", "standalone on disk"),
                          ("gzip'd tar (opt/cinit + links)", "standalone gzip'd tar")):  # fmt: skip
        (line,) = [text for text in printed.splitlines() if text.startswith(label)]
        row = rows[metric]
        assert f"{row['cinit']:.2f} MiB" in line
        assert str(row["target"]) in line
        assert line.rstrip().endswith("met" if row["met"] else "not met")
    assert "Largest parts" in printed and "libpython" in printed


def test_the_disk_size_is_the_sum_of_the_bundle_files(
    measured: tuple[str, dict[str, dict[str, object]]],
) -> None:
    _, rows = measured
    files = [p for p in BUNDLE.rglob("*") if p.is_file() and not p.is_symlink()]
    total = sum(p.stat().st_size for p in files) / MIB
    assert rows["standalone on disk"]["cinit"] == pytest.approx(total)
    assert rows["standalone on disk"]["target"] == "<= 16 MiB"
    assert rows["standalone on disk"]["met"] == (total <= 16)


def test_the_gzip_size_is_that_of_the_installed_layout(
    measured: tuple[str, dict[str, dict[str, object]]],
) -> None:
    _, rows = measured
    gzipped = float(rows["standalone gzip'd tar"]["cinit"])  # type: ignore[arg-type]
    on_disk = float(rows["standalone on disk"]["cinit"])  # type: ignore[arg-type]
    # The bundle once, compressed: below the files' sum, above a fifth of it.
    assert on_disk / 5 < gzipped < on_disk
    assert rows["standalone gzip'd tar"]["target"] == "<= 8 MiB"
    assert rows["standalone gzip'd tar"]["met"] == (gzipped <= 8)
    sys.path.insert(0, str(ROOT))
    from bench.footprint import gzip_tar_bytes

    assert gzip_tar_bytes(BUNDLE) / MIB == pytest.approx(gzipped)  # deterministic (mtime 0)
