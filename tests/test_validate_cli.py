"""`cinit validate` and `cinit --validate` as a user runs them: a real process, real files."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

SEED_DIR = Path(__file__).resolve().parent / "data" / "seed"

SIMPLE = "[Service]\nExecStart=/bin/true\n"


def run(
    cmd: list[str], *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cmd, *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )


def dirs(tmp_path: Path) -> tuple[Path, Path]:
    core, drop = tmp_path / "units", tmp_path / "drop"
    core.mkdir()
    drop.mkdir()
    return core, drop


def test_seed_corpus_is_clean_under_strict(cinit_cmd: list[str]) -> None:
    result = run(
        cinit_cmd,
        "validate",
        "--units",
        str(SEED_DIR / "units"),
        "--drop-in",
        str(SEED_DIR / "container-init.d"),
        "--strict-units",
    )
    assert result.returncode == 0, result.stderr
    assert "10 units (7 services, 3 sockets), 0 overrides, 0 warnings, 0 errors" in result.stdout
    assert "start order: " in result.stdout and result.stdout.rstrip().endswith("ok")
    assert "warning" not in result.stderr and "error" not in result.stderr


def test_seed_form_dash_dash_validate(cinit_cmd: list[str]) -> None:
    result = run(
        cinit_cmd,
        "--units",
        str(SEED_DIR / "units"),
        "--drop-in",
        str(SEED_DIR / "container-init.d"),
        "--validate",
        "--strict-units",
    )
    assert result.returncode == 0, result.stderr
    assert "10 units" in result.stdout


def test_embedded_example(cinit_cmd: list[str]) -> None:
    result = run(cinit_cmd, "validate", "--example", "--strict-units")
    assert result.returncode == 0, result.stderr
    assert "drop-in override: ticker.service replaces " in result.stderr


def test_diagnostics_have_file_line_severity_message(cinit_cmd: list[str], tmp_path: Path) -> None:
    core, drop = dirs(tmp_path)
    (core / "a.service").write_text("[Service]\nExecStart=/bin/true\nRestartSec=5x\n")
    (drop / "b.service").write_text("[Service]\nExecStrat=/bin/true\nExecStart=/bin/true\n")
    result = run(cinit_cmd, "validate", "--units", str(core), "--drop-in", str(drop))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert f"{core}/a.service:3: error: [Service] RestartSec=5x: " in "\n".join(lines)
    assert any(
        line.startswith(f"{drop}/b.service:2: warning: ") and "did you mean ExecStart?" in line
        for line in lines
    )
    assert "1 warnings, 1 errors" in result.stdout and "invalid" in result.stdout


def test_warnings_pass_unless_strict(cinit_cmd: list[str], tmp_path: Path) -> None:
    core, drop = dirs(tmp_path)
    (core / "a.service").write_text(SIMPLE + "Nope=1\n")
    args = ["validate", "--units", str(core), "--drop-in", str(drop)]
    assert run(cinit_cmd, *args).returncode == 0
    strict = run(cinit_cmd, *args, "--strict-units")
    assert strict.returncode == 1 and ":3: error: " in strict.stderr


def test_override_is_logged_in_the_seed_format(cinit_cmd: list[str], tmp_path: Path) -> None:
    core, drop = dirs(tmp_path)
    (core / "web.service").write_text(SIMPLE)
    (drop / "web.service").write_text(SIMPLE)
    result = run(cinit_cmd, "validate", "--units", str(core), "--drop-in", str(drop))
    assert result.returncode == 0
    assert (
        f"cinit: drop-in override: web.service replaces {core}/web.service with {drop}/web.service"
    ) in result.stderr.splitlines()


def test_json_document(cinit_cmd: list[str], tmp_path: Path) -> None:
    core, drop = dirs(tmp_path)
    (core / "a.service").write_text("[Unit]\nRequires=ghost.service\n" + SIMPLE)
    (drop / "a.service").write_text("[Unit]\nRequires=ghost.service\n" + SIMPLE)
    result = run(cinit_cmd, "validate", "--json", "--units", str(core), "--drop-in", str(drop))
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["counts"]["errors"] == 1
    assert doc["overrides"][0]["unit"] == "a.service"
    [diag] = doc["diagnostics"]
    assert diag["severity"] == "error" and diag["line"] == 2 and "ghost.service" in diag["message"]


def test_no_unit_directories_is_an_error(cinit_cmd: list[str], tmp_path: Path) -> None:
    result = run(
        cinit_cmd, "validate", "--units", str(tmp_path / "a"), "--drop-in", str(tmp_path / "b")
    )
    assert result.returncode == 1 and "no unit directories" in result.stderr


def test_usage_errors_exit_2(cinit_cmd: list[str]) -> None:
    assert run(cinit_cmd, "validate", "--no-such-flag").returncode == 2


GARBAGE = [
    b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 8,
    b"[Service]\nExecStart=/bin/true\nDescription=\xc3\x28\n",
    b"[Service]\nExecStart=/bin/" + b"x" * 3_000_000 + b"\n",
    b"[Service\n[[[]]]\n=\n==\n\\\n\\",
    b"[Service]\nExecStart='unterminated\nListenStream=[::1\n",
    b"[Socket]\nListenStream=\xff\xfe\n",
    "[Unit]\nDescription=\u202e\u0000\n".encode(),
]


@pytest.mark.parametrize("data", GARBAGE, ids=range(len(GARBAGE)))
def test_no_traceback_for_any_broken_file(
    cinit_cmd: list[str], tmp_path: Path, data: bytes
) -> None:
    core, drop = dirs(tmp_path)
    (core / "bad.service").write_bytes(data)
    (core / "bad.socket").write_bytes(data)
    (core / "dir.service").mkdir()
    result = run(cinit_cmd, "validate", "--units", str(core), "--drop-in", str(drop))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert f"{core}/bad.service" in result.stderr
    assert f"{core}/dir.service: error: is a directory" in result.stderr


def test_unreadable_file_is_reported(cinit_cmd: list[str], tmp_path: Path) -> None:
    core, drop = dirs(tmp_path)
    (core / "a.service").symlink_to(tmp_path / "missing-target")
    result = run(cinit_cmd, "validate", "--units", str(core), "--drop-in", str(drop))
    assert result.returncode == 1 and f"{core}/a.service: error: cannot read unit file" in (
        result.stderr
    )


def test_a_number_past_the_int_digit_limit_is_a_line_not_a_traceback(
    cinit_cmd: list[str], tmp_path: Path
) -> None:
    # Issue 13: StartLimitBurst= of 4,301 nines was a ValueError traceback (int()'s limit).
    core, drop = dirs(tmp_path)
    (core / "a.service").write_text(SIMPLE + "StartLimitBurst=" + "9" * 4301 + "\n")
    (core / "b.service").write_text(SIMPLE + "RestartSec=5x\n")
    result = run(cinit_cmd, "validate", "--units", str(core), "--drop-in", str(drop))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"{core}/a.service:3: error: [Service] StartLimitBurst=999" in result.stderr
    assert "too large" in result.stderr
    assert f"{core}/b.service:3: error: [Service] RestartSec=5x" in result.stderr
    assert "0 warnings, 2 errors" in result.stdout


def test_a_fifo_named_as_a_unit_is_an_error_and_validate_finishes(
    cinit_cmd: list[str], tmp_path: Path
) -> None:
    # Issue 13: open() of a FIFO waited for a writer, and `cinit validate` never returned.
    core, drop = dirs(tmp_path)
    os.mkfifo(core / "x.service")
    (core / "ok.service").write_text(SIMPLE)
    result = run(cinit_cmd, "validate", "--units", str(core), "--drop-in", str(drop))
    assert result.returncode == 1
    assert f"{core}/x.service: error: is a FIFO (named pipe), not a unit file" in result.stderr
    assert result.stdout.startswith("1 units (1 services, 0 sockets)"), result.stdout


def test_a_unit_linked_to_a_secret_file_does_not_echo_it(
    cinit_cmd: list[str], tmp_path: Path
) -> None:
    # Issue 13: a.service -> /etc/shadow printed every line in its diagnostics. A stand-in
    # with the same form is used here, not the host's file.
    core, drop = dirs(tmp_path)
    hashes = ["$6$saltsaltsaltsalt$" + secret * 86 for secret in "QWXZ"]
    shadow = tmp_path / "shadow"
    shadow.write_text(
        "".join(f"{user}:{hashed}:19000:0:99999:7:::\n" for user, hashed in
                zip(["root", "daemon", "a", "nobody"], hashes, strict=True))
        + "TOKEN=s3cr3t-t0k3n\n"
    )
    (core / "a.service").symlink_to(shadow)
    result = run(cinit_cmd, "validate", "--units", str(core), "--drop-in", str(drop))
    assert result.returncode == 1
    assert f"{core}/a.service:1: error: line outside of any section: 'root:$6$" in result.stderr
    for secret in ("Q" * 3, "W" * 3, "X" * 3, "Z" * 3, "s3cr3t"):
        assert secret not in result.stderr
