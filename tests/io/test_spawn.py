"""`cinit.io.spawn` on real processes: child state, fd layout, credentials, exec failures."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cinit.io.reaper import ProcessTable
from cinit.io.spawn import DEVNULL, SpawnError, SpawnRequest, exec_candidates, spawn

pytestmark = pytest.mark.timeout(60)

Driver = Callable[..., Any]  # the `driver` fixture (tests/io/conftest.py)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[object] = []

    def tell(self, message: object) -> None:
        self.messages.append(message)


def run_and_capture(request: SpawnRequest) -> tuple[str, object]:
    """Spawn with stdout into a pipe, read it to EOF, reap; returns (output, exit)."""
    table = ProcessTable()
    inbox = Inbox()
    read_end, write_end = os.pipe()
    request.stdout = write_end
    try:
        process = spawn(request, table, inbox)
    finally:
        os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        output = pipe.read().decode()
    _, status = os.waitpid(process.pid, 0)  # pytest's process: reap only this child
    return output, os.waitstatus_to_exitcode(status)


def status_fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def test_child_signal_state_is_clean_even_from_a_thread_with_signals_blocked(
    driver: Driver,
) -> None:
    # The driver blocks signals, ignores SIGHUP (SIGPIPE/SIGXFSZ are ignored by CPython)
    # and spawns from a second thread. A subprocess.Popen child is the control: it shows
    # the inherited mask and ignored signals, so this test can tell the difference.
    result = driver(
        """
        import json, os, signal, subprocess, threading
        from cinit.io.reaper import ProcessTable
        from cinit.io.spawn import SpawnRequest, spawn
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGCHLD, signal.SIGUSR1})
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        out = {}
        def work():
            r, w = os.pipe()
            request = SpawnRequest(["cat", "/proc/self/status"], label="t", stdout=w)
            p = spawn(request, ProcessTable())
            os.close(w)
            out["spawn"] = os.fdopen(r).read()
            os.waitpid(p.pid, 0)
            control = subprocess.run(["cat", "/proc/self/status"], capture_output=True, text=True)
            out["popen"] = control.stdout
        t = threading.Thread(target=work); t.start(); t.join()
        print(json.dumps(out))
        """
    )
    assert result.returncode == 0, result
    spawned = status_fields(result.data["spawn"])
    control = status_fields(result.data["popen"])
    assert int(control["SigBlk"], 16) != 0 and int(control["SigIgn"], 16) != 0, control
    assert spawned["SigBlk"] == "0000000000000000"
    assert spawned["SigIgn"] == "0000000000000000"


def test_only_requested_fds_are_open_and_passed_fds_are_renumbered(tmp_path: Path) -> None:
    first = tmp_path / "first"
    second = tmp_path / "second"
    first.write_text("1")
    second.write_text("2")
    fd_a = os.open(first, os.O_RDONLY)
    fd_b = os.open(second, os.O_RDONLY)
    leak = os.open(first, os.O_RDONLY)
    os.set_inheritable(leak, True)  # an inheritable fd that must still not reach the child
    try:
        # Passed in reverse order, so the layout has to shuffle fds over each other.
        request = SpawnRequest(
            ["sh", "-c", "ls -l /proc/$$/fd"],  # the shell's fds, listed by its child
            label="fds.service",
            pass_fds=[fd_b, fd_a],
        )
        output, code = run_and_capture(request)
    finally:
        for fd in (fd_a, fd_b, leak):
            os.close(fd)
    assert code == 0
    entries = [line.split(" -> ") for line in output.splitlines() if " -> " in line]
    fds = {name.split()[-1]: target for name, target in entries}
    assert sorted(fds, key=int) == ["0", "1", "2", "3", "4"], output
    assert fds["0"] == "/dev/null"
    assert fds["3"] == str(second)
    assert fds["4"] == str(first)


def test_stdin_stdout_stderr_can_be_inherited_or_null(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("from stdin\n")
    errors = tmp_path / "err.txt"
    with open(source, "rb") as stdin, open(errors, "wb") as stderr:
        request = SpawnRequest(
            ["sh", "-c", "cat; echo to-stderr >&2"],
            label="io.service",
            stdin=stdin.fileno(),
            stderr=stderr.fileno(),
        )
        output, code = run_and_capture(request)
    assert (output, code) == ("from stdin\n", 0)
    assert errors.read_text() == "to-stderr\n"

    nothing, code = run_and_capture(SpawnRequest(["cat"], label="null.service", stdin=DEVNULL))
    assert (nothing, code) == ("", 0)


def test_child_leads_a_new_session_or_a_new_group_in_ours() -> None:
    script = "cut -d' ' -f1,5,6 /proc/$$/stat"
    output, _ = run_and_capture(SpawnRequest(["sh", "-c", script], label="s"))
    pid, pgid, sid = output.split()
    assert pid == pgid == sid

    output, _ = run_and_capture(SpawnRequest(["sh", "-c", script], label="g", new_session=False))
    pid, pgid, sid = output.split()
    assert pid == pgid
    assert int(sid) == os.getsid(0)


def test_listen_pid_is_the_childs_own_pid() -> None:
    script = 'echo "$LISTEN_PID $$ $LISTEN_FDS $LISTEN_FDNAMES"'
    r, w = os.pipe()
    try:
        output, _ = run_and_capture(
            SpawnRequest(
                ["sh", "-c", script],
                label="listen.service",
                pass_fds=[r],
                listen_fds=True,
                fd_names=["web"],
                env={"PATH": os.environ["PATH"], "LISTEN_PID": "1"},
            )
        )
    finally:
        os.close(r)
        os.close(w)
    listen_pid, shell_pid, count, names = output.split()
    assert listen_pid == shell_pid
    assert (count, names) == ("1", "web")


def test_stale_listen_variables_are_not_passed_without_listen_fds() -> None:
    output, _ = run_and_capture(
        SpawnRequest(
            ["sh", "-c", 'echo "[$LISTEN_PID][$LISTEN_FDS]"'],
            label="plain.service",
            env={"PATH": os.environ["PATH"], "LISTEN_PID": "1", "LISTEN_FDS": "2"},
        )
    )
    assert output == "[][]\n"


@pytest.mark.skipif(shutil.which("dbus-daemon") is None, reason="dbus-daemon is not installed")
def test_dbus_daemon_accepts_the_listener_through_sd_listen_fds(
    tmp_path: Path, driver: Driver
) -> None:
    # A real sd_listen_fds consumer: dbus-daemon --address=systemd: takes fd 3 only when
    # LISTEN_PID is its own pid. Without listen_fds (the control) it refuses to start.
    result = driver(
        f"""
        import json, os, socket
        from cinit.io.reaper import ProcessTable
        from cinit.io.spawn import SpawnRequest, SpawnError, spawn
        path = {str(tmp_path / "bus")!r}
        server = socket.socket(socket.AF_UNIX); server.bind(path); server.listen(4)
        table = ProcessTable()
        argv = ["dbus-daemon", "--session", "--nofork", "--address=systemd:", "--print-address=1"]
        out = {{}}
        for listen in (True, False):
            r, w = os.pipe()
            p = spawn(SpawnRequest(argv, label="dbus.service", pass_fds=[server.fileno()],
                                   listen_fds=listen, stdout=w, stderr=w), table)
            os.close(w)
            if listen:
                out["address"] = os.read(r, 300).decode()
                client = socket.socket(socket.AF_UNIX); client.settimeout(5); client.connect(path)
                uid_hex = str(os.getuid()).encode().hex().encode()
                client.sendall(b"\\0AUTH EXTERNAL " + uid_hex + b"\\r\\n")
                out["reply"] = client.recv(300).decode()
                p.send_signal(15)
            out[str(listen)] = os.waitstatus_to_exitcode(os.waitpid(p.pid, 0)[1])
            os.close(r)
        print(json.dumps(out))
        """
    )
    assert result.returncode == 0, result
    assert result.data["address"].startswith(f"unix:path={tmp_path / 'bus'}")
    assert result.data["reply"].startswith("OK ")
    assert result.data["False"] != 0  # without LISTEN_PID dbus-daemon has no socket


@pytest.mark.parametrize(
    ("argv", "errno_name", "code"),
    [
        (["/nonexistent/prog"], "ENOENT", 127),
        (["/etc/passwd"], "EACCES", 126),
        (["/etc"], "EACCES", 126),
        (["/etc/passwd/x"], "ENOTDIR", 126),
        (["no-such-program-cinit-test"], "ENOENT", 127),
    ],
)
def test_exec_failure_is_a_spawn_error_and_leaves_no_process(
    argv: list[str], errno_name: str, code: int, driver: Driver
) -> None:
    result = driver(
        f"""
        import json, os, time
        from cinit.io.reaper import ProcessTable
        from cinit.io.spawn import SpawnRequest, SpawnError, spawn
        class Inbox:
            messages = []
            def tell(self, m): self.messages.append(m)
        table, inbox = ProcessTable(), Inbox()
        try:
            spawn(SpawnRequest({argv!r}, label="web.service"), table, inbox)
            print(json.dumps({{"error": None}}))
        except SpawnError as e:
            deadline = time.monotonic() + 5
            while table.reap_all() and time.monotonic() < deadline:
                time.sleep(0.01)
            print(json.dumps({{"error": str(e), "code": e.exit_code, "stage": e.stage,
                               "left": table.reap_all(), "messages": len(inbox.messages),
                               "orphans": table.orphans_reaped, "live": len(table.live())}}))
        """
    )
    data = result.data
    assert data["error"] is not None, result
    assert data["error"].startswith(f"web.service: cannot execute {argv[0]}: ")
    assert data["error"].endswith(f"({errno_name})")
    assert (data["code"], data["stage"]) == (code, "exec")
    # The failed child was reaped silently: no exit message, not counted as an orphan.
    assert (data["left"], data["messages"], data["orphans"], data["live"]) == (False, 0, 0, 0)


def test_path_lookup_skips_unusable_entries_and_reports_eacces(tmp_path: Path) -> None:
    empty, denied, good = tmp_path / "empty", tmp_path / "denied", tmp_path / "good"
    for d in (empty, denied, good):
        d.mkdir()
    (denied / "tool").write_text("#!/bin/sh\necho denied\n")  # not executable
    (good / "tool").write_text("#!/bin/sh\necho good\n")
    (good / "tool").chmod(0o755)
    env = {"PATH": f"{empty}:{denied}:{good}"}
    output, code = run_and_capture(SpawnRequest(["tool"], label="t", env=env))
    assert (output, code) == ("good\n", 0)

    env = {"PATH": f"{empty}:{denied}"}
    with pytest.raises(SpawnError) as caught:
        run_and_capture(SpawnRequest(["tool"], label="t", env=env))
    assert caught.value.exit_code == 126
    assert str(caught.value) == f"t: cannot execute {denied / 'tool'}: Permission denied (EACCES)"
    _reap_failed_children()


def _reap_failed_children() -> None:
    # In pytest's own process: collect the failed spawn's child (it exits right after its
    # report). Other tests' children may still run: poll briefly, never block on them.
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.01)


def test_exec_candidates_use_the_environment_path_or_systemds_default() -> None:
    assert exec_candidates("/bin/true", {}) == ["/bin/true"]
    assert exec_candidates("true", {"PATH": "/a::/b"}) == ["/a/true", "./true", "/b/true"]
    assert exec_candidates("true", {})[0] == "/usr/local/sbin/true"


@pytest.fixture
def fake_root() -> Iterator[tuple[Path, Path]]:
    """An /etc with a user `svc` (uid 4242) in two extra groups, and a world-readable home."""
    root = Path(tempfile.mkdtemp(prefix="cinit-userdb-"))
    home = Path(tempfile.mkdtemp(prefix="cinit-home-"))
    home.chmod(0o755)
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n"
        f"svc:x:4242:4343:Service:{home}:/bin/sh\n"
    )
    (root / "etc/group").write_text(
        "root:x:0:\nsvc:x:4343:\nextra:x:4444:other,svc\nunrelated:x:4545:other\n"
    )
    yield root, home
    shutil.rmtree(root)
    shutil.rmtree(home)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_user_group_supplementary_groups_and_home_directory(fake_root: tuple[Path, Path]) -> None:
    root, home = fake_root
    output, code = run_and_capture(
        SpawnRequest(
            ["sh", "-c", "id -u; id -g; id -G; pwd"],
            label="user.service",
            user="svc",
            cwd="~",
            userdb_root=str(root),
        )
    )
    assert code == 0
    uid, gid, groups, cwd = output.splitlines()
    assert (uid, gid) == ("4242", "4343")
    assert sorted(groups.split()) == ["4343", "4444"]
    assert cwd == str(home)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_group_override_and_unknown_user(fake_root: tuple[Path, Path]) -> None:
    root, _ = fake_root
    output, _ = run_and_capture(
        SpawnRequest(["id", "-G"], label="g", user="svc", group="extra", userdb_root=str(root))
    )
    assert sorted(output.split()) == ["4444"]

    with pytest.raises(SpawnError) as caught:
        spawn(SpawnRequest(["true"], label="x.service", user="ghost", userdb_root=str(root)),
              ProcessTable())
    assert caught.value.exit_code == 217
    assert "x.service: unknown user 'ghost'" in str(caught.value)


@pytest.mark.parametrize(
    ("user", "group", "stage", "status"),
    [
        ("ghost", "", "user", 217),
        ("", "ghosts", "group", 216),
        ("svc", "ghosts", "group", 216),
        ("5000", "", "user", 217),  # a bare uid with no entry needs Group=
    ],
)
def test_a_user_or_group_nobody_has_is_systemds_status_of_that_stage(
    fake_root: tuple[Path, Path], user: str, group: str, stage: str, status: int
) -> None:
    # Issue 13 (3): an unknown Group= was reported as 217/USER. Found before any fork.
    root, _ = fake_root
    request = SpawnRequest(["true"], label="x.service", user=user, group=group,
                           userdb_root=str(root))  # fmt: skip
    with pytest.raises(SpawnError) as caught:
        spawn(request, ProcessTable())
    assert (caught.value.stage, caught.value.exit_code) == (stage, status)
    name = group if stage == "group" else user
    assert f"x.service: unknown {stage} {name!r}" in str(caught.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_working_directory_failure_names_directory_and_errno(fake_root: tuple[Path, Path]) -> None:
    root, home = fake_root
    private = home / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(SpawnError) as caught:
        run_and_capture(
            SpawnRequest(["true"], label="w.service", user="svc", cwd=str(private),
                         userdb_root=str(root))
        )
    assert str(caught.value) == (
        f"w.service: cannot change directory to {private}: Permission denied (EACCES)"
    )
    assert caught.value.exit_code == 200
    _reap_failed_children()
    output, code = run_and_capture(
        SpawnRequest(["pwd"], label="w", cwd="/nonexistent", cwd_optional=True)
    )
    assert code == 0 and output.strip() == os.getcwd()


def test_fork_registration_race_never_loses_an_exit(driver: Driver) -> None:
    # One thread spawns /bin/true as fast as it can while the main thread reaps without
    # pause; every exit must reach its owner, none may be mistaken for an orphan.
    result = driver(
        """
        import json, threading
        from cinit.io.reaper import ProcessTable
        from cinit.io.spawn import SpawnRequest, spawn
        class Inbox:
            def __init__(self): self.messages = []
            def tell(self, m): self.messages.append(m)
        table, inbox, done = ProcessTable(), Inbox(), threading.Event()
        def spawner():
            for i in range(300):
                spawn(SpawnRequest(["/bin/true"], label=f"t{i}"), table, inbox)
            done.set()
        threading.Thread(target=spawner).start()
        while not done.is_set() or table.reap_all():
            table.reap_all()
        codes = [m.code for m in inbox.messages]
        print(json.dumps({"exits": len(codes), "ok": codes.count(0),
                          "orphans": table.orphans_reaped}))
        """,
        timeout=60,
    )
    assert result.data == {"exits": 300, "ok": 300, "orphans": 0}, result


def test_failed_spawn_never_reports_an_exit_even_when_reaped_at_once(driver: Driver) -> None:
    # The failing child exits right after writing its report; the main thread reaps
    # without pause, often before spawn() has read the report. Its exit must still never
    # reach the owner (the caller got a SpawnError instead), while every started process's
    # exit does, exactly once.
    result = driver(
        """
        import json, threading
        from cinit.io.reaper import ProcessTable
        from cinit.io.spawn import SpawnError, SpawnRequest, spawn
        class Inbox:
            def __init__(self): self.messages = []
            def tell(self, m): self.messages.append(m)
        table, inbox, done, errors = ProcessTable(), Inbox(), threading.Event(), []
        def spawner():
            for i in range(150):
                spawn(SpawnRequest(["/bin/true"], label=f"good{i}"), table, inbox)
                try:
                    spawn(SpawnRequest(["/nonexistent"], label=f"bad{i}"), table, inbox)
                except SpawnError as e:
                    errors.append(e.exit_code)
            done.set()
        threading.Thread(target=spawner).start()
        while not done.is_set() or table.reap_all():
            table.reap_all()
        labels = [m.label for m in inbox.messages]
        print(json.dumps({"exits": len(labels), "distinct": len(set(labels)),
                          "bad": sum(l.startswith("bad") for l in labels),
                          "errors": len(errors), "codes": sorted(set(errors)),
                          "orphans": table.orphans_reaped}))
        """,
        timeout=60,
    )
    expected = {"exits": 150, "distinct": 150, "bad": 0, "errors": 150, "codes": [127],
                "orphans": 0}
    assert result.data == expected, result


def test_spawn_does_not_use_subprocess() -> None:
    package = Path(sys.modules[spawn.__module__].__file__ or "").parent
    modules = sorted(package.glob("*.py"))
    assert len(modules) > 1  # the whole package, not one module of it
    for module in modules:
        source = module.read_text()
        assert "subprocess" not in source.replace("`subprocess`", ""), module
        assert "preexec_fn" not in source.replace("`preexec_fn`", ""), module


def test_cinit_modules_on_the_boot_path_import_nothing_heavy() -> None:
    probe = subprocess.run(
        [sys.executable, "-c",
         "import sys; import cinit.cli.run, cinit.boot, cinit.io.spawn, cinit.io.reaper;"
         "print(' '.join(m for m in ('pykka','sortedcontainers','typer','zmq','psutil',"
         "'dataclasses','typing','threading','subprocess') if m in sys.modules))"],
        capture_output=True, text=True, timeout=30,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == ""
