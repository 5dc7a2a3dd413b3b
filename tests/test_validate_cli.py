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
    # The seed's programs and users belong to its image, not to this machine.
    result = run(
        cinit_cmd,
        "validate",
        "--units",
        str(SEED_DIR / "units"),
        "--drop-in",
        str(SEED_DIR / "container-init.d"),
        "--strict-units",
        "--no-host-checks",
    )
    assert result.returncode == 0, result.stderr
    assert "10 units (7 services, 3 sockets), 0 overrides, 0 warnings, 0 errors" in result.stdout
    assert "start order: " in result.stdout and result.stdout.rstrip().endswith("ok")
    assert "warning" not in result.stderr and "error" not in result.stderr


def test_seed_form_dash_dash_validate(cinit_cmd: list[str], tmp_path: Path) -> None:
    # Not --strict-units: this form checks the programs and users on this machine too,
    # and the seed's belong to its image (warnings here).
    seed = ["--units", str(SEED_DIR / "units"), "--drop-in", str(SEED_DIR / "container-init.d")]
    result = run(cinit_cmd, *seed, "--validate")
    assert result.returncode == 0, result.stderr
    assert "10 units" in result.stdout and " 0 errors" in result.stdout
    # --strict-units and the host checks reach this form as well.
    core, drop = dirs(tmp_path)
    (core / "a.service").write_text(f"[Service]\nExecStart={tmp_path}/missing\n")
    dirs_args = ["--units", str(core), "--drop-in", str(drop)]
    result = run(cinit_cmd, *dirs_args, "--validate", "--strict-units")
    assert result.returncode == 1
    assert f"{core}/a.service:2: error: [Service] ExecStart: command {tmp_path}/missing" in (
        result.stderr
    )


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


# --- programs and users looked for on this machine (issue 13) ------------------------------


def test_a_missing_program_and_an_unknown_user_are_warnings(
    cinit_cmd: list[str], tmp_path: Path
) -> None:
    core, drop = dirs(tmp_path)
    missing = tmp_path / "bin" / "doesnotexist"
    (core / "a.service").write_text(
        f"[Service]\nExecStart={missing} --flag\nUser=nosuchuser-cinit-test\n"
    )
    args = ["validate", "--units", str(core), "--drop-in", str(drop)]
    result = run(cinit_cmd, *args)
    assert result.returncode == 0, result.stderr  # warnings: the set is still valid
    assert result.stderr.splitlines() == [
        f"{core}/a.service:2: warning: [Service] ExecStart: command {missing} is not "
        "executable: No such file or directory",
        f"{core}/a.service:3: warning: [Service] User=nosuchuser-cinit-test: unknown user "
        "'nosuchuser-cinit-test' (not in /etc/passwd); starting the unit fails unless "
        "something creates it first",
    ]
    assert "2 warnings, 0 errors" in result.stdout
    strict = run(cinit_cmd, *args, "--strict-units")
    assert strict.returncode == 1 and strict.stderr.count("[--strict-units]") == 2
    skipped = run(cinit_cmd, *args, "--strict-units", "--no-host-checks")
    assert skipped.returncode == 0 and skipped.stderr == ""
    document = json.loads(run(cinit_cmd, *args, "--json").stdout)
    assert [(d["line"], d["directive"]) for d in document["diagnostics"]] == [
        (2, "ExecStart"),
        (3, "User"),
    ]


def test_programs_are_found_as_the_spawn_finds_them(cinit_cmd: list[str], tmp_path: Path) -> None:
    core, drop = dirs(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "tool").write_text("#!/bin/sh\n")
    (bin_dir / "tool").chmod(0o755)
    (bin_dir / "data").write_text("not a program\n")
    (bin_dir / "data").chmod(0o644)
    (core / "ok.service").write_text(
        "[Service]\n"
        f"Environment=PATH={bin_dir}\n"
        "ExecStartPre=tool\n"  # a plain name, found in the unit's PATH
        f"ExecStart={bin_dir}/tool\n"
        f"ExecStop=-{tmp_path}/missing\n"  # '-': systemd's verify skips it too
        "ExecStopPost=/bin/sh -c 'exit 0'\n"
        "User=root\n"
        "Group=0\n"
    )
    (core / "numeric.service").write_text("[Service]\nExecStart=/bin/true\nUser=54321\nGroup=0\n")
    (core / "bad.service").write_text(
        "[Service]\n"
        f"Environment=PATH={bin_dir}\n"
        "ExecStartPre=no-such-tool-cinit\n"
        f"ExecStart={bin_dir}/data\n"
        f"ExecStop={bin_dir}\n"
        "Group=nosuchgroup-cinit-test\n"
    )
    (core / "bad.socket").write_text(
        "[Socket]\nListenStream=/run/x.sock\nService=ok.service\n"
        "SocketUser=nosuchuser-cinit-test\n"
    )
    result = run(cinit_cmd, "validate", "--units", str(core), "--drop-in", str(drop))
    bad = f"{core}/bad.service"
    assert result.stderr.splitlines() == [
        f"{bad}:3: warning: [Service] ExecStartPre: command no-such-tool-cinit is not "
        f"executable: not found in {bin_dir}",
        f"{bad}:4: warning: [Service] ExecStart: command {bin_dir}/data is not executable: "
        "Permission denied",
        f"{bad}:5: warning: [Service] ExecStop: command {bin_dir} is not executable: "
        "Is a directory",
        f"{bad}:6: warning: [Service] Group=nosuchgroup-cinit-test: unknown group "
        "'nosuchgroup-cinit-test' (not in /etc/group); starting the unit fails unless "
        "something creates it first",
        f"{core}/bad.socket:4: warning: [Socket] SocketUser=nosuchuser-cinit-test: unknown "
        "user 'nosuchuser-cinit-test' (not in /etc/passwd); setting up the socket fails unless "
        "something creates it first",
    ]


def test_validate_systemd_reads_the_root_and_prints_the_boot_set(
    cinit_cmd: list[str], tmp_path: Path
) -> None:
    root = tmp_path / "root"
    lib, etc = root / "usr/lib/systemd/system", root / "etc/systemd/system"
    lib.mkdir(parents=True)
    (etc / "multi-user.target.wants").mkdir(parents=True)
    (lib / "web.service").write_text(SIMPLE + "[Install]\nWantedBy=multi-user.target\n")
    (lib / "spare.service").write_text(SIMPLE)
    (lib / "other.path").write_text("[Path]\nPathExists=/x\n")  # a type cinit does not run
    os.symlink("/usr/lib/systemd/system/web.service", etc / "multi-user.target.wants/web.service")
    none = str(tmp_path / "none")
    args = ["validate", "--units", none, "--drop-in", none, "--no-host-checks", "--systemd"]
    result = run(cinit_cmd, *args, "--systemd-root", str(root))
    assert result.returncode == 0, result.stderr
    # multi-user.target (the default without a default.target link), sockets.target and
    # timers.target are defined by no file here: empty, implicit targets.
    assert "5 units (2 services, 0 sockets, 3 targets)" in result.stdout
    assert "boot set: sockets.target timers.target web.service multi-user.target" in result.stdout
    assert "1 unit files of types cinit does not run" in result.stderr
    # The same through the environment, and as JSON.
    result = run(cinit_cmd, *args, "--json", env={"CINIT_SYSTEMD_ROOT": str(root)})
    document = json.loads(result.stdout)
    assert "spare.service" in {u["name"] for u in document["units"]}
    assert "spare.service" not in document["boot_units"]
    assert run(cinit_cmd, *args[:-1], "--systemd-root", str(root)).returncode == 2


def test_validate_names_snippets_and_their_errors_with_file_and_line(
    cinit_cmd: list[str], tmp_path: Path
) -> None:
    core, drop = dirs(tmp_path)
    (core / "web.service").write_text(SIMPLE + "[Install]\nAlias=www.service\n")
    (core / "web.service.d").mkdir()
    (core / "web.service.d" / "10-ok.conf").write_text("[Service]\nEnvironment=A=1\n")
    (drop / "web.service.d").mkdir()
    (drop / "web.service.d" / "20-bad.conf").write_text("[Service]\n\nRestart=sometimes\n")
    (core / "pg@.service").write_text("[Service]\nExecStart=/bin/echo %i\n")
    (core / "pg@15-main.service").symlink_to("pg@.service")
    args = ["validate", "--units", str(core), "--drop-in", str(drop), "--no-host-checks"]
    result = run(cinit_cmd, *args)
    assert result.returncode == 1, result.stderr
    assert f"cinit: unit web.service: applied snippet {core}/web.service.d/10-ok.conf" in (
        result.stderr
    )
    assert f"{drop}/web.service.d/20-bad.conf:3: error: [Service] Restart=sometimes" in (
        result.stderr
    )
    assert "2 units (2 services, 0 sockets)" in result.stdout
    assert "Traceback" not in result.stderr
    document = json.loads(run(cinit_cmd, *args, "--json").stdout)
    by_name = {unit["name"]: unit for unit in document["units"]}
    assert by_name["web.service"]["aliases"] == ["www.service"]
    assert by_name["pg@15-main.service"]["template"] == "pg@.service"
    assert len(by_name["web.service"]["snippets"]) == 2
    assert document["aliases"] == {"www.service": "web.service"}
    assert document["templates"] == ["pg@.service"]
