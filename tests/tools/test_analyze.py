"""`cinit analyze blame|critical-chain|plot` on trace files, run as a user runs them."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from trace_files import TraceWriter, sample_boot

from cinit.tools.boot_plot import grid_step
from cinit.tools.boot_trace import read_trace

pytestmark = pytest.mark.timeout(60)
SVG = "{http://www.w3.org/2000/svg}"


def analyze(cinit_cmd: list[str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cinit_cmd, "analyze", *map(str, args)], capture_output=True, text=True, timeout=30
    )


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    return sample_boot().write(tmp_path / "trace.jsonl")


def test_blame_lists_units_by_start_time_taken_longest_first(
    cinit_cmd: list[str], trace: Path
) -> None:
    done = analyze(cinit_cmd, "blame", trace)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "400ms db.service",
        "303ms web.service",
        "174ms worker.service",  # first starting -> active, across its restart
        "120ms base.service",  # a oneshot: starting -> exited
        " 55ms flaky.service (failed)",
        " 54ms cache.service",
        " 14ms probe.service",
    ]
    # A skipped unit took no time and is not blamed.
    assert "optional.service" not in done.stdout


def test_critical_chain_follows_after_back_from_the_last_unit_up(
    cinit_cmd: list[str], trace: Path
) -> None:
    done = analyze(cinit_cmd, "critical-chain", trace)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert '"@"' in lines[0] and '"+"' in lines[1]
    # web waited for db (up at 526 ms) rather than cache (up at 180 ms).
    assert lines[3:] == [
        "probe.service @845ms +14ms",
        "└─web.service @830ms +303ms",
        "  └─db.service @526ms +400ms",
        "    └─base.service @125ms +120ms",
    ]


def test_critical_chain_of_a_named_unit_and_of_an_unknown_one(
    cinit_cmd: list[str], trace: Path
) -> None:
    done = analyze(cinit_cmd, "critical-chain", trace, "cache.service")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[3:] == [
        "cache.service @180ms +54ms",
        "└─base.service @125ms +120ms",
    ]
    missing = analyze(cinit_cmd, "critical-chain", trace, "nope.service")
    assert missing.returncode == 4
    assert "nope.service not found" in missing.stderr and str(trace) in missing.stderr


def test_times_above_a_second_read_like_systemd_analyze(
    tmp_path: Path, cinit_cmd: list[str]
) -> None:
    writer = TraceWriter().loaded(0, "slow.service").loaded(0, "next.service", ("slow.service",))
    writer.service("slow.service", 10, 20, 2510)
    writer.service("next.service", 2511, 2512, 63_011)
    path = writer.write(tmp_path / "t.jsonl")
    assert analyze(cinit_cmd, "blame", path).stdout.splitlines() == [
        "1min 0.500s next.service",
        "     2.500s slow.service",
    ]
    chain = analyze(cinit_cmd, "critical-chain", path).stdout.splitlines()[3:]
    assert chain == ["next.service @1min 3.011s +1min 0.500s", "└─slow.service @2.510s +2.500s"]


def test_plot_writes_an_svg_with_a_bar_per_unit_axis_and_legend(
    cinit_cmd: list[str], trace: Path, tmp_path: Path
) -> None:
    out = tmp_path / "boot.svg"
    done = analyze(cinit_cmd, "plot", trace, "-o", out)
    assert done.returncode == 0, done.stderr
    root = ET.parse(out).getroot()
    assert root.tag == f"{SVG}svg"
    texts = [element.text or "" for element in root.iter(f"{SVG}text")]
    # A row per unit that started or was skipped, in start order.
    names = [t for t in texts if t.endswith(".service")]
    assert names == [
        "base.service",
        "flaky.service",
        "optional.service",
        "cache.service",
        "db.service",
        "worker.service",
        "web.service",
        "probe.service",
    ]
    assert "400ms" in texts and "55ms (failed)" in texts and "skipped" in texts
    for label in ("Activating (starting → ready)", "Active", "Failed", "Skipped (condition)"):
        assert label in texts
    assert any(t.startswith("Startup finished in 845ms") for t in texts)
    # Time axis: gridlines with round labels, 0 to past the last unit up.
    assert {"0", "100ms", "800ms"} <= set(texts)
    fills = {rect.get("fill") for rect in root.iter(f"{SVG}rect")}
    assert {"#f4a259", "#5fad56", "#d64545", "#b388d9", "#c8ccd0"} <= fills
    # The failed unit's bar is red, db's activating stretch is 400 ms of orange.
    bars = {(rect.findtext(f"{SVG}title") or ""): rect for rect in root.iter(f"{SVG}rect")}
    assert bars["flaky.service: failed from 5ms for 55ms"].get("fill") == "#d64545"
    db = bars["db.service: activating from 126ms for 400ms"]
    assert db.get("fill") == "#f4a259"


def test_plot_to_stdout_without_output_option(cinit_cmd: list[str], trace: Path) -> None:
    done = analyze(cinit_cmd, "plot", trace)
    assert done.returncode == 0
    assert ET.fromstring(done.stdout).tag == f"{SVG}svg"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"seq": 1, "t_ms": 1, "unit": "a", "event": "loaded"}\n{"seq": 2, oops\n',
            ":2: invalid JSON",
        ),
        ("", ": empty trace"),
        ("\n\n", ": empty trace"),
        ("[1, 2]\n", ":1: expected a JSON object, got an array"),
        ('{"seq": 1, "unit": "a.service", "event": "loaded"}\n', ":1: record has no number"),
        ('{"seq": 1, "t_ms": 3, "unit": null, "event": "shutdown-started"}\n', ": no unit events"),
        ('{"seq": 1, "t_ms": 3, "unit": 5, "event": "loaded"}\n', ":1: `unit` must be a string"),
    ],
)
def test_bad_trace_is_a_clear_message_with_file_and_line_and_exit_2(
    cinit_cmd: list[str], tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    for command in (["blame"], ["critical-chain"], ["plot", "-o", str(tmp_path / "x.svg")]):
        done = analyze(cinit_cmd, command[0], path, *command[1:])
        assert done.returncode == 2, (command, done.stderr)
        assert f"{path}{message}" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
        assert done.stdout == ""


def test_missing_trace_file_and_usage_errors_exit_2(cinit_cmd: list[str], tmp_path: Path) -> None:
    missing = analyze(cinit_cmd, "blame", tmp_path / "nope.jsonl")
    assert missing.returncode == 2
    assert f"{tmp_path / 'nope.jsonl'}: no such file" in missing.stderr
    directory = analyze(cinit_cmd, "blame", tmp_path)
    assert directory.returncode == 2 and "is a directory" in directory.stderr
    assert analyze(cinit_cmd).returncode == 2
    assert analyze(cinit_cmd, "frobnicate", "x").returncode == 2
    assert analyze(cinit_cmd, "blame").returncode == 2
    for done in (missing, directory):
        assert "Traceback" not in done.stderr


def test_seed_records_without_t_ms_use_t_start_plus_dt(tmp_path: Path) -> None:
    path = tmp_path / "seed.jsonl"
    records = [
        {
            "phase": "a.service:inactive",
            "t_start_ms": 0,
            "dt_ms": 5,
            "unit": "a.service",
            "event": "starting",
        },
        {
            "phase": "a.service:starting",
            "t_start_ms": 5,
            "dt_ms": 95,
            "unit": "a.service",
            "event": "ready",
        },
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    boot = read_trace(str(path)).units["a.service"]
    assert (boot.started_ms, boot.up_ms, boot.took_ms, boot.outcome) == (5, 100, 95, "active")


def test_grid_steps_are_round() -> None:
    assert grid_step(900) == 100
    assert grid_step(2060) == 200
    assert grid_step(3600) == 500
    assert grid_step(45) == 5
    assert grid_step(12_000) == 1000
    assert grid_step(0.5) == pytest.approx(0.05)


def test_appended_traces_analyse_the_last_run_and_say_so(
    cinit_cmd: list[str], tmp_path: Path
) -> None:
    first = TraceWriter().loaded(0, "old.service")
    first.service("old.service", 1, 2, 900)
    second = TraceWriter().loaded(0, "new.service")
    second.service("new.service", 1, 2, 51)
    path = tmp_path / "t.jsonl"
    lines = [json.dumps(r) + "\n" for r in first.records + second.records]
    path.write_text("".join(lines))
    done = analyze(cinit_cmd, "blame", path)
    assert done.returncode == 0
    assert done.stdout == "50ms new.service\n"
    assert f"holds 2 cinit runs; analysing the last, from line {len(first.records) + 1}" in (
        done.stderr
    )


def test_a_trace_without_boot_settled_counts_everything_until_the_end_as_boot(
    cinit_cmd: list[str], tmp_path: Path
) -> None:
    # container-init's shape: no seq, no t_ms, no boot-settled; a unit failing late.
    path = tmp_path / "container-init.jsonl"
    records = [
        {"phase": "a.service:inactive", "t_start_ms": 0, "dt_ms": 5, "unit": "a.service",
         "event": "starting"},
        {"phase": "a.service:starting", "t_start_ms": 5, "dt_ms": 95, "unit": "a.service",
         "event": "ready"},
        {"phase": "a.service:active", "t_start_ms": 100, "dt_ms": 29_900, "unit": "a.service",
         "event": "failed"},
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    blame = analyze(cinit_cmd, "blame", path)
    assert blame.returncode == 0, blame.stderr
    assert blame.stdout == "95ms a.service (failed)\n"
    plot = analyze(cinit_cmd, "plot", path)
    texts = [e.text or "" for e in ET.fromstring(plot.stdout).iter(f"{SVG}text")]
    assert any(t.startswith("Startup finished in 100ms (last up: a.service)") for t in texts)
    assert not any("after boot" in t.lower() for t in texts)


def test_after_boot_ends_at_shutdown_and_the_boot_chart_ends_at_the_settle(
    cinit_cmd: list[str], tmp_path: Path
) -> None:
    writer = TraceWriter().loaded(0, "a.service").loaded(0, "b.service")
    writer.service("a.service", 1, 2, 50)
    writer.cinit(50, "boot-settled")
    writer.service("b.service", 7_000, 7_001, 7_160)
    writer.cinit(9_000, "shutdown-started")
    writer.change(9_001, "a.service", "stopping", "stopping")
    writer.change(9_002, "a.service", "failed", "failed", result="signal")
    path = writer.write(tmp_path / "t.jsonl")
    blame = analyze(cinit_cmd, "blame", path)
    assert blame.stdout.splitlines() == [
        "49ms a.service",
        "",
        "After the boot settled @50ms (not counted as boot):",
        "  b.service: started @7.000s, up @7.160s",
    ]
    plot = analyze(cinit_cmd, "plot", path)
    texts = [e.text or "" for e in ET.fromstring(plot.stdout).iter(f"{SVG}text")]
    summary = next(t for t in texts if t.startswith("Startup finished"))
    assert summary.startswith("Startup finished in 50ms (last up: a.service) · 1 units, 0 failed")
    assert "7s" not in texts  # the axis covers the boot, not the socket's start at 7 s


def test_critical_chain_takes_unit_and_trace_in_either_order(
    cinit_cmd: list[str], trace: Path, tmp_path: Path
) -> None:
    ours = analyze(cinit_cmd, "critical-chain", trace, "cache.service")
    theirs = analyze(cinit_cmd, "critical-chain", "cache.service", trace)  # systemd-analyze's
    assert ours.returncode == theirs.returncode == 0, theirs.stderr
    assert theirs.stdout == ours.stdout
    assert theirs.stdout.splitlines()[3] == "cache.service @180ms +54ms"
    # A missing trace is still named as the trace, in either order.
    missing = analyze(cinit_cmd, "critical-chain", "cache.service", tmp_path / "gone.jsonl")
    assert missing.returncode == 2 and f"{tmp_path / 'gone.jsonl'}: no such file" in missing.stderr
