"""`cinit logs`'s times and `journalctl`'s command line (issue 16 §3), without cinit."""

from __future__ import annotations

import datetime
import subprocess

import pytest

from cinit.cli.journalctl import JournalUsage, parse_args
from cinit.cli.logs import parse_since

NOW = datetime.datetime(2026, 12, 7, 21, 30, 15).timestamp()
MIDNIGHT = datetime.datetime(2026, 12, 7).timestamp()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1765000000", 1765000000.0),
        ("@1765000000.5", 1765000000.5),
        ("now", NOW),
        ("today", MIDNIGHT),
        ("yesterday", MIDNIGHT - 86400),
        ("-5min", NOW - 300),
        ("5 min ago", NOW - 300),
        ("1h 30min ago", NOW - 5400),
        ("+10s", NOW + 10),
        ("2026-12-07 20:15", MIDNIGHT + 20 * 3600 + 15 * 60),
        ("2026-12-07 20:15:09", MIDNIGHT + 20 * 3600 + 15 * 60 + 9),
        ("2026-12-06", MIDNIGHT - 86400),
        ("08:00", MIDNIGHT + 8 * 3600),
        ("08:00:30", MIDNIGHT + 8 * 3600 + 30),
    ],
)
def test_journalctl_time_forms(text: str, expected: float) -> None:
    assert parse_since(text, NOW) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["someday", "-5 parsecs", "2026-13-01", ""])
def test_bad_times_say_which_forms_are_taken(text: str) -> None:
    with pytest.raises(ValueError, match="not a time"):
        parse_since(text, NOW)


def test_journalctl_options_in_all_their_spellings() -> None:
    parsed = parse_args(
        ["-u", "web", "-udb", "--unit=cache.service", "--unit", "x", "-n", "20", "-f", "-e"]
    )
    assert parsed.units == ["web", "db", "cache.service", "x"]
    assert (parsed.lines, parsed.follow, parsed.end) == (20, True, True)
    assert parse_args(["-n5"]).lines == 5
    assert parse_args(["--lines=7"]).lines == 7
    assert parse_args(["-n"]).lines == 10
    assert parse_args(["-n", "-f"]).lines == 10
    assert parse_args(["-o", "cat"]).output == "cat"
    assert parse_args(["--output=json"]).output == "json"
    assert parse_args(["-ojson"]).output == "json"
    accepted = ["--no-pager", "-b", "-b", "0", "-b-1", "--boot", "-q", "-a", "-x", "--system"]
    quiet = parse_args(accepted)
    assert quiet.quiet and quiet.units == [] and quiet.lines is None
    grouped = parse_args(["-xeu", "nginx", "-fn20"])
    assert (grouped.units, grouped.end, grouped.follow, grouped.lines) == (
        ["nginx"],
        True,
        True,
        20,
    )
    assert parse_args(["-feunginx"]).units == ["nginx"]
    assert parse_args(["-fn", "5"]).lines == 5
    assert parse_args(["-b1", "-ef"]).end
    assert parse_args(["--since", "-1h"]).since is not None
    assert parse_args(["-S", "today"]).since is not None


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--grep", "x"], "unrecognized option '--grep'"),
        (["-k"], "unrecognized option '-k'"),
        (["-xk"], "unrecognized option '-xk'"),
        (["-o", "verbose"], "unknown output format 'verbose'"),
        (["-n", "+5"], "counting from the start"),
        (["--lines=x"], "failed to parse lines"),
        (["-u"], "requires an argument"),
        (["--since=someday"], "failed to parse timestamp"),
        (["_SYSTEMD_UNIT=web.service"], "not supported"),
    ],
)
def test_journalctl_refuses_what_it_does_not_do(args: list[str], words: str) -> None:
    with pytest.raises(JournalUsage, match=words.replace("+", r"\+")):
        parse_args(args)


def test_help_lists_logs_and_journalctl(cinit_cmd: list[str]) -> None:
    done = subprocess.run([*cinit_cmd, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "\n  logs " in done.stdout and "\n  journalctl " in done.stdout
    usage = subprocess.run(
        [*cinit_cmd, "logs", "-n", "x"], capture_output=True, text=True, timeout=60
    )
    assert usage.returncode == 2 and "-n" in usage.stderr
    bad = subprocess.run(
        [*cinit_cmd, "journalctl", "--bogus"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1 and "unrecognized option '--bogus'" in bad.stderr


def test_run_takes_the_ring_bounds_from_options_and_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cinit.cli.args import UsageError
    from cinit.cli.run import parse_args as parse_run

    monkeypatch.delenv("CINIT_LOG_LINES", raising=False)
    monkeypatch.delenv("CINIT_LOG_BYTES", raising=False)
    config = parse_run(["--", "true"]).config
    assert (config.log_lines, config.log_bytes) == (1000, 1 << 20)
    config = parse_run(["--log-lines", "50", "--log-bytes", "512K", "--", "true"]).config
    assert (config.log_lines, config.log_bytes) == (50, 512 * 1024)
    monkeypatch.setenv("CINIT_LOG_LINES", "0")
    monkeypatch.setenv("CINIT_LOG_BYTES", "1.5MiB")
    config = parse_run(["--", "true"]).config
    assert (config.log_lines, config.log_bytes) == (0, 3 << 19)
    assert parse_run(["--log-lines", "7", "--", "true"]).config.log_lines == 7  # option wins
    for bad in (["--log-lines", "many"], ["--log-bytes", "-1"], ["--log-bytes", "1Q"]):
        with pytest.raises(UsageError, match=bad[0]):
            parse_run([*bad, "--", "true"])
    monkeypatch.setenv("CINIT_LOG_LINES", "x")
    with pytest.raises(UsageError, match=r"\$CINIT_LOG_LINES"):
        parse_run(["--", "true"])
