"""`cinit.io.environ`: a unit's environment at start time, and its conditions."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from cinit.io.environ import (
    EnvironmentFileError,
    base_environment,
    unit_environment,
    unmet_condition,
)
from cinit.units import Unit, parse_unit

pytestmark = pytest.mark.timeout(30)


def service(body: str, name: str = "web.service", unit_section: str = "") -> Unit:
    text = f"[Unit]\n{unit_section}\n[Service]\nExecStart=/bin/true\n{body}\n"
    unit, diagnostics = parse_unit(name, text, environ={})
    assert unit is not None, [d.format() for d in diagnostics]
    assert not [d for d in diagnostics if d.severity.value == "error"], diagnostics
    return unit


def conditions(*lines: str) -> Unit:
    return service("", unit_section="\n".join(lines))


# --- environment ----------------------------------------------------------------------------


def test_base_environment_drops_what_describes_cinit_itself() -> None:
    base = {
        "PATH": "/bin",
        "LISTEN_PID": "1",
        "LISTEN_FDS": "2",
        "LISTEN_FDNAMES": "a:b",
        "NOTIFY_SOCKET": "/run/systemd/notify",
        "WATCHDOG_USEC": "1000",
        "WATCHDOG_PID": "1",
        "CINIT_RUNTIME_DIR": "/run/x",
        "CINIT_VERBOSE": "1",
        "CONTAINER_INIT_TRACE": "1",
        "MY_CINIT_SETTING": "kept",
    }
    assert base_environment(base) == {
        "PATH": "/bin",
        "CONTAINER_INIT_TRACE": "1",
        "MY_CINIT_SETTING": "kept",
    }


def test_order_base_then_environment_then_files_then_extra(tmp_path: Path) -> None:
    first = tmp_path / "first.env"
    first.write_text("A=from-file-1\nB=from-file-1\nC=from-file-1\n")
    second = tmp_path / "second.env"
    second.write_text("B=from-file-2\n")
    unit = service(
        'Environment="A=from-env 1" D=from-env\n'
        "Environment=D=from-env-again E=from-env\n"
        f"EnvironmentFile={first}\n"
        f"EnvironmentFile={second}\n"
    )
    base = {"A": "base", "E": "base", "F": "base", "NOTIFY_SOCKET": "/outer", "CINIT_X": "1"}
    env, warnings = unit_environment(unit, base, {"C": "extra", "NOTIFY_SOCKET": "/mine"})
    assert env == {
        "A": "from-file-1",  # files come after Environment=
        "B": "from-file-2",  # later files win
        "C": "extra",  # extra wins over everything
        "D": "from-env-again",  # later Environment= wins
        "E": "from-env",
        "F": "base",
        "NOTIFY_SOCKET": "/mine",
    }
    assert warnings == []


def test_environment_files_are_read_at_call_time(tmp_path: Path) -> None:
    path = tmp_path / "late.env"
    unit = service(f"EnvironmentFile={path}\n")  # the file does not exist at load time
    path.write_text("WRITTEN_BY=an earlier unit\n")
    env, _ = unit_environment(unit, {})
    assert env["WRITTEN_BY"] == "an earlier unit"
    path.write_text("WRITTEN_BY=again\n")
    assert unit_environment(unit, {})[0]["WRITTEN_BY"] == "again"


def test_optional_files_may_be_missing(tmp_path: Path) -> None:
    unit = service(f"EnvironmentFile=-{tmp_path}/absent.env\nEnvironment=X=1\n")
    assert unit_environment(unit, {}) == ({"X": "1"}, [])


def test_a_missing_required_file_names_unit_file_and_errno(tmp_path: Path) -> None:
    path = tmp_path / "absent.env"
    unit = service(f"EnvironmentFile={path}\n")
    with pytest.raises(EnvironmentFileError) as caught:
        unit_environment(unit, {})
    assert str(caught.value) == f"web.service: EnvironmentFile={path}: No such file or directory"
    assert (caught.value.unit, caught.value.path, caught.value.errno) == (
        "web.service",
        str(path),
        errno.ENOENT,
    )


def test_an_unreadable_file_is_an_error_unless_optional(tmp_path: Path) -> None:
    directory = tmp_path / "a-directory.env"
    directory.mkdir()
    with pytest.raises(EnvironmentFileError) as caught:
        unit_environment(service(f"EnvironmentFile={directory}\n"), {})
    assert caught.value.errno == errno.EISDIR
    assert "is a directory, not a regular file" in str(caught.value)
    env, warnings = unit_environment(service(f"EnvironmentFile=-{directory}\n"), {})
    assert env == {}
    assert warnings == [
        f"web.service: EnvironmentFile=-{directory}: is a directory, not a regular file; ignored"
    ]


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "env.fifo"
    os.mkfifo(fifo)  # a blocking open() would wait here for a writer that never comes
    with pytest.raises(EnvironmentFileError) as caught:
        unit_environment(service(f"EnvironmentFile={fifo}\n"), {})
    assert str(caught.value) == (
        f"web.service: EnvironmentFile={fifo}: is a FIFO (named pipe), not a regular file"
    )
    env, warnings = unit_environment(service(f"EnvironmentFile=-{fifo}\n"), {})
    assert env == {} and len(warnings) == 1


def test_an_unreadable_file_as_another_user(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to user nobody")
    secret = tmp_path / "secret.env"
    secret.write_text("X=1\n")
    secret.chmod(0o600)
    tmp_path.chmod(0o755)
    unit = service(f"EnvironmentFile={secret}\n")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(65534)
            os.setuid(65534)
            try:
                unit_environment(unit, {})
                os.write(write_end, b"no error")
            except EnvironmentFileError as exc:
                os.write(write_end, f"{exc.errno}|{exc}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 4096).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert answer == f"{errno.EACCES}|web.service: EnvironmentFile={secret}: Permission denied"


def test_env_file_warnings_are_returned_naming_unit_and_file(tmp_path: Path) -> None:
    path = tmp_path / "odd.env"
    path.write_text("GOOD=1\nexport BAD=2\nno equals sign\n")
    env, warnings = unit_environment(service(f"EnvironmentFile={path}\n"), {})
    assert env == {"GOOD": "1"}
    assert len(warnings) == 2
    assert all(w.startswith(f"web.service: EnvironmentFile={path}: line ") for w in warnings)
    assert "line 2:" in warnings[0] and "export" in warnings[0]
    assert "line 3:" in warnings[1]


def test_a_malformed_required_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.env"
    path.write_text('A="never closed\n')
    with pytest.raises(EnvironmentFileError, match="unterminated double quote") as caught:
        unit_environment(service(f"EnvironmentFile={path}\n"), {})
    assert caught.value.errno is None
    env, warnings = unit_environment(service(f"EnvironmentFile=-{path}\n"), {})
    assert env == {} and "unterminated" in warnings[0]


def test_env_file_syntax_comes_from_the_units_parser(tmp_path: Path) -> None:
    path = tmp_path / "full.env"
    path.write_text(
        '# comment\n; comment\nA = spaced \nB=\'single $quoted\'\nC="dq \\"x\\""\n'
        "D=continued \\\nline\nE=\xe9t\xe9\n"
    )
    env, _ = unit_environment(service(f"EnvironmentFile={path}\n"), {})
    assert env == {
        "A": "spaced",
        "B": "single $quoted",
        "C": 'dq "x"',
        "D": "continued line",
        "E": "\xe9t\xe9",
    }


def test_a_glob_names_every_matching_file_in_order(tmp_path: Path) -> None:
    (tmp_path / "10-a.env").write_text("X=a\nA=1\n")
    (tmp_path / "20-b.env").write_text("X=b\nB=1\n")
    env, _ = unit_environment(service(f"EnvironmentFile={tmp_path}/*.env\n"), {})
    assert env == {"X": "b", "A": "1", "B": "1"}
    assert unit_environment(service(f"EnvironmentFile=-{tmp_path}/*.none\n"), {})[0] == {}
    with pytest.raises(EnvironmentFileError, match="no file matches"):
        unit_environment(service(f"EnvironmentFile={tmp_path}/*.none\n"), {})


def test_a_socket_unit_gets_base_and_extra_only() -> None:
    unit, _ = parse_unit("web.socket", "[Socket]\nListenStream=8080\n", environ={})
    assert unit is not None
    env, warnings = unit_environment(unit, {"A": "1", "LISTEN_FDS": "3"}, {"B": "2"})
    assert (env, warnings) == ({"A": "1", "B": "2"}, [])


# --- conditions -----------------------------------------------------------------------------


def test_no_conditions_hold_trivially() -> None:
    assert unmet_condition(service(""), {}) is None


def test_path_exists_and_negation(tmp_path: Path) -> None:
    present = tmp_path / "present"
    present.touch()
    absent = tmp_path / "absent"
    assert unmet_condition(conditions(f"ConditionPathExists={present}"), {}) is None
    assert (
        unmet_condition(conditions(f"ConditionPathExists={absent}"), {})
        == f"ConditionPathExists={absent}"
    )
    assert unmet_condition(conditions(f"ConditionPathExists=!{absent}"), {}) is None
    assert (
        unmet_condition(conditions(f"ConditionPathExists=!{present}"), {})
        == f"ConditionPathExists=!{present}"
    )


def test_path_exists_is_checked_at_call_time(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    unit = conditions(f"ConditionPathExists={flag}")
    assert unmet_condition(unit, {}) is not None
    flag.touch()
    assert unmet_condition(unit, {}) is None


def test_a_dangling_symlink_does_not_exist(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere")
    assert unmet_condition(conditions(f"ConditionPathExists={link}"), {}) is not None


def test_path_exists_glob(tmp_path: Path) -> None:
    (tmp_path / "app-1.conf").touch()
    assert unmet_condition(conditions(f"ConditionPathExistsGlob={tmp_path}/app-*.conf"), {}) is None
    assert (
        unmet_condition(conditions(f"ConditionPathExistsGlob={tmp_path}/db-*.conf"), {})
        == f"ConditionPathExistsGlob={tmp_path}/db-*.conf"
    )
    assert unmet_condition(conditions(f"ConditionPathExistsGlob=!{tmp_path}/db-?.conf"), {}) is None
    unit = conditions(f"ConditionPathExistsGlob=!{tmp_path}/app-[0-9].conf")
    assert unmet_condition(unit, {}) == f"ConditionPathExistsGlob=!{tmp_path}/app-[0-9].conf"


def test_environment_name_and_name_value() -> None:
    environ = {"MODE": "prod", "EMPTY": ""}
    assert unmet_condition(conditions("ConditionEnvironment=MODE"), environ) is None
    assert unmet_condition(conditions("ConditionEnvironment=EMPTY"), environ) is None
    assert unmet_condition(conditions("ConditionEnvironment=MODE=prod"), environ) is None
    assert (
        unmet_condition(conditions("ConditionEnvironment=MODE=dev"), environ)
        == "ConditionEnvironment=MODE=dev"
    )
    assert unmet_condition(conditions("ConditionEnvironment=EMPTY="), environ) is None
    assert (
        unmet_condition(conditions("ConditionEnvironment=MOD"), environ)
        == "ConditionEnvironment=MOD"
    )
    assert unmet_condition(conditions("ConditionEnvironment=!DEBUG"), environ) is None
    assert (
        unmet_condition(conditions("ConditionEnvironment=!MODE=prod"), environ)
        == "ConditionEnvironment=!MODE=prod"
    )


def test_all_conditions_must_hold_and_the_first_unmet_is_reported(tmp_path: Path) -> None:
    unit = conditions(
        "ConditionEnvironment=A",
        f"ConditionPathExists={tmp_path}",
        "ConditionEnvironment=B",
        "ConditionEnvironment=C",
    )
    assert unmet_condition(unit, {"A": "1"}) == "ConditionEnvironment=B"
    assert unmet_condition(unit, {"A": "1", "B": "1", "C": "1"}) is None


def write_passwd(root: Path, *lines: str) -> str:
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc" / "passwd").write_text("\n".join(lines) + "\n")
    return str(root)


def test_user_by_uid_and_by_name_as_root(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("checks cinit running as root")
    root = write_passwd(tmp_path, "root:x:0:0::/root:/bin/sh", "app:x:1000:1000::/:/bin/sh")
    for value, holds in [
        ("0", True),
        ("1000", False),
        ("root", True),
        ("app", False),
        ("ghost", False),  # unknown names never match
        ("@system", True),
        ("!app", True),
        ("!root", False),
        ("!0", False),
        ("!@system", False),
    ]:
        result = unmet_condition(conditions(f"ConditionUser={value}"), {}, userdb_root=root)
        assert (result is None) == holds, value
        if not holds:
            assert result == f"ConditionUser={value}"


def test_root_matches_uid_0_without_a_passwd_file(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("checks cinit running as root")
    unit = conditions("ConditionUser=root")
    assert unmet_condition(unit, {}, userdb_root=str(tmp_path)) is None


def test_user_conditions_as_another_user() -> None:
    """A forked child becomes uid 1500 (a regular user) or 998 (a system user)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch users")
    shared = Path(tempfile.mkdtemp(prefix="cinit-userdb-"))  # readable by the child
    shared.chmod(0o755)
    root = write_passwd(
        shared,
        "root:x:0:0::/root:/bin/sh",
        "app:x:1500:1500::/:/bin/sh",
        "svc:x:998:998::/:/bin/sh",
    )
    cases = ["app", "1500", "@system", "!@system", "svc", "root", "!root", "0"]

    def evaluate_as(uid: int) -> list[bool]:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.setgid(uid)
                os.setuid(uid)
                answers = [
                    unmet_condition(conditions(f"ConditionUser={c}"), {}, userdb_root=root) is None
                    for c in cases
                ]
                os.write(write_end, "".join("1" if a else "0" for a in answers).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        data = os.read(read_end, 100).decode()
        os.close(read_end)
        os.waitpid(pid, 0)
        return [c == "1" for c in data]

    try:
        assert evaluate_as(1500) == [True, True, False, True, False, False, True, False]
        assert evaluate_as(998) == [False, False, True, False, True, False, True, False]
    finally:
        shutil.rmtree(shared)


def test_condition_user_reads_passwd_at_call_time(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("checks cinit running as root")
    unit = conditions("ConditionUser=admin")
    root = write_passwd(tmp_path, "nobody:x:65534:65534::/:/bin/sh")
    assert unmet_condition(unit, {}, userdb_root=root) == "ConditionUser=admin"
    write_passwd(tmp_path, "admin:x:0:0::/root:/bin/sh")  # an earlier oneshot created it
    assert unmet_condition(unit, {}, userdb_root=root) is None
