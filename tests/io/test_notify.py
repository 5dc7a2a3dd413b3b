"""`cinit.io.notify` with real senders: Python children, systemd-notify, another uid."""

from __future__ import annotations

import os
import queue
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cinit.io.notify import NotifyHub, NotifyMessage, parse_notification
from cinit.io.userdb import UserDbError, lookup_user

pytestmark = pytest.mark.timeout(30)


class Inbox:
    """An owner: collects what the hub tells it."""

    def __init__(self) -> None:
        self.queue: queue.Queue[NotifyMessage] = queue.Queue()

    def tell(self, message: object) -> None:
        assert isinstance(message, NotifyMessage)
        self.queue.put(message)

    def next(self, timeout: float = 5.0) -> NotifyMessage:
        return self.queue.get(timeout=timeout)

    def empty_after(self, seconds: float) -> bool:
        try:
            self.queue.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user can traverse (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="cinit-notify-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def hub(shared_dir: Path) -> Iterator[NotifyHub]:
    hub = NotifyHub(str(shared_dir / "notify"))
    hub.start()
    yield hub
    hub.stop()


SEND = (
    "import os, socket, sys\n"
    "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
    "path = os.environ['NOTIFY_SOCKET']\n"
    "path = '\\0' + path[1:] if path.startswith('@') else path\n"
    "for message in sys.argv[1:]:\n"
    "    s.sendto(message.encode(), path)\n"
    "print(os.getpid())\n"
)


def send(path: str, *messages: str) -> int:
    """Send datagrams from a child process; returns its pid."""
    env = {**os.environ, "NOTIFY_SOCKET": path}
    done = subprocess.run(
        [sys.executable, "-c", SEND, *messages],
        env=env,
        timeout=20,
        text=True,
        capture_output=True,
        check=True,
    )
    return int(done.stdout)


def test_a_child_reports_ready_and_status_with_its_pid(hub: NotifyHub) -> None:
    inbox = Inbox()
    path = hub.open("web.service", inbox)
    pid = send(path, "READY=1\nSTATUS=ok")
    message = inbox.next()
    assert message.unit == "web.service"
    assert message.sender_pid == pid
    assert message.fields == {"READY": "1", "STATUS": "ok"}


def test_several_messages_arrive_in_order(hub: NotifyHub) -> None:
    inbox = Inbox()
    path = hub.open("order.service", inbox)
    texts = [f"STATUS=step {n}" for n in range(50)] + ["MAINPID=4242\nREADY=1", "STOPPING=1"]
    pid = send(path, *texts)
    received = [inbox.next() for _ in texts]
    assert [m.fields for m in received[:50]] == [{"STATUS": f"step {n}"} for n in range(50)]
    assert received[50].fields == {"MAINPID": "4242", "READY": "1"}
    assert received[51].fields == {"STOPPING": "1"}
    assert {m.sender_pid for m in received} == {pid}


def test_systemd_notify_reaches_the_hub(hub: NotifyHub) -> None:
    tool = shutil.which("systemd-notify")
    if tool is None:
        pytest.skip("systemd-notify is not installed (package systemd)")
    inbox = Inbox()
    path = hub.open("tool.service", inbox)
    # systemd-notify speaks for its parent (the shell), as it does in a unit's script.
    script = f'{tool} --ready --status="all good" && {tool} MAINPID=77 && echo $$'
    done = subprocess.run(
        ["/bin/sh", "-c", script],
        env={"NOTIFY_SOCKET": path},
        timeout=20,
        text=True,
        capture_output=True,
        check=True,
    )
    shell_pid = int(done.stdout)
    fields = []
    while True:  # systemd-notify adds BARRIER=1 messages of its own (and waits for them:
        message = inbox.next()  # the fd it sends along must be closed by the receiver)
        if message.fields != {"BARRIER": "1"}:
            assert message.sender_pid == shell_pid
            fields.append(message.fields)
        if message.fields.get("MAINPID"):
            break
    assert fields == [{"READY": "1", "STATUS": "all good"}, {"MAINPID": "77"}]


def test_malformed_lines_are_ignored() -> None:
    assert parse_notification(b"READY=1\nnot a field\n=empty key\nBAD KEY=1\n\nX_1=a=b\n") == {
        "READY": "1",
        "X_1": "a=b",
    }
    assert parse_notification(b"STATUS=\xff\xfe\nNUL=a\x00b") == {"STATUS": "\ufffd\ufffd"}
    assert parse_notification(b"STATUS=one\nSTATUS=two") == {"STATUS": "two"}


def test_a_datagram_of_only_malformed_lines_is_not_delivered(hub: NotifyHub) -> None:
    inbox = Inbox()
    path = hub.open("junk.service", inbox)
    send(path, "garbage", "READY=1")
    assert inbox.next().fields == {"READY": "1"}
    assert inbox.empty_after(0.2)


def test_messages_up_to_the_sd_notify_limit_and_no_further(hub: NotifyHub) -> None:
    inbox = Inbox()
    path = hub.open("big.service", inbox)
    largest = "STATUS=" + "s" * (4096 - len("STATUS="))
    send(path, largest, "STATUS=" + "t" * 4096, "READY=1")
    assert inbox.next().fields == {"STATUS": "s" * (4096 - len("STATUS="))}
    assert inbox.next().fields == {"READY": "1"}  # the oversized one was dropped


def test_fds_sent_along_are_closed(hub: NotifyHub) -> None:
    inbox = Inbox()
    path = hub.open("fds.service", inbox)
    read_end, write_end = os.pipe()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        rights = (socket.SOL_SOCKET, socket.SCM_RIGHTS, write_end.to_bytes(4, sys.byteorder))
        sender.sendmsg([b"FDSTORE=1"], [rights], 0, path)
    os.close(write_end)
    assert inbox.next().fields == {"FDSTORE": "1"}
    # EOF proves the hub closed the copy it received (as sd_notify_barrier relies on).
    assert os.read(read_end, 1) == b""
    os.close(read_end)


def test_a_sender_running_as_another_user_reaches_the_socket(hub: NotifyHub) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to another user")
    try:
        nobody = lookup_user("nobody")
    except UserDbError:
        pytest.skip("no user 'nobody' in /etc/passwd")
    inbox = Inbox()
    path = hub.open("user.service", inbox)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o755
    assert send_as(nobody.uid, nobody.gid, path) == 0
    message = inbox.next()
    assert message.fields == {"READY": "1"}


def send_as(uid: int, gid: int, path: str) -> int:
    """Fork, become uid/gid, send READY=1; returns 0 or the errno of the failure."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            address = "\0" + path[1:] if path.startswith("@") else path
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
                sender.sendto(b"READY=1", address)
            code = 0
        except OSError as exc:
            code = exc.errno or 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_abstract_namespace_sockets_need_no_file_and_reach_any_user() -> None:
    hub = NotifyHub(f"@cinit-test-{os.getpid()}")
    hub.start()
    try:
        inbox = Inbox()
        path = hub.open("abstract.service", inbox)
        assert path.startswith(f"@cinit-test-{os.getpid()}/")
        assert not os.path.exists(path)
        pid = send(path, "READY=1")
        message = inbox.next()
        assert (message.sender_pid, message.fields) == (pid, {"READY": "1"})
        if os.geteuid() == 0:
            assert send_as(65534, 65534, path) == 0
            assert inbox.next().fields == {"READY": "1"}
    finally:
        hub.stop()


def test_paths_are_short_for_255_character_unit_names(hub: NotifyHub) -> None:
    name = "x" * 247 + ".service"
    inbox = Inbox()
    path = hub.open(name, inbox)
    assert len(os.fsencode(path)) <= 107
    send(path, "READY=1")
    assert inbox.next().unit == name


def test_a_directory_too_long_for_sun_path_is_refused_clearly(shared_dir: Path) -> None:
    deep = shared_dir / ("d" * 100)
    hub = NotifyHub(str(deep))
    try:
        with pytest.raises(OSError, match="too long"):
            hub.open("a.service", Inbox())
    finally:
        hub.stop()


def test_two_hubs_sharing_a_directory_never_collide(shared_dir: Path) -> None:
    first, second = NotifyHub(str(shared_dir / "n")), NotifyHub(str(shared_dir / "n"))
    first.start()
    second.start()
    try:
        inbox_a, inbox_b = Inbox(), Inbox()
        path_a = first.open("same.service", inbox_a)
        path_b = second.open("same.service", inbox_b)
        assert path_a != path_b
        send(path_a, "STATUS=a")
        send(path_b, "STATUS=b")
        assert inbox_a.next().fields == {"STATUS": "a"}
        assert inbox_b.next().fields == {"STATUS": "b"}
    finally:
        first.stop()
        second.stop()


def test_close_removes_the_file_and_stop_removes_them_all(shared_dir: Path) -> None:
    hub = NotifyHub(str(shared_dir / "notify"))
    hub.start()
    inbox = Inbox()
    closed = hub.open("a.service", inbox)
    kept = hub.open("b.service", inbox)
    hub.close("a.service")
    assert not os.path.exists(closed) and os.path.exists(kept)
    hub.close("never-opened.service")  # harmless
    hub.stop()
    assert os.listdir(shared_dir / "notify") == []


def test_opening_again_replaces_the_previous_socket(hub: NotifyHub) -> None:
    old_inbox, new_inbox = Inbox(), Inbox()
    old = hub.open("again.service", old_inbox)
    new = hub.open("again.service", new_inbox)
    assert old != new and not os.path.exists(old)
    send(new, "READY=1")
    assert new_inbox.next().fields == {"READY": "1"}
    with pytest.raises(subprocess.CalledProcessError):
        send(old, "READY=1")  # nobody is there any more
    assert old_inbox.empty_after(0.1)


def test_stale_socket_files_are_removed_live_ones_kept(shared_dir: Path) -> None:
    directory = shared_dir / "notify"
    directory.mkdir()
    stale_path = str(directory / "0badc0de-1-old.service")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(stale_path)
    stale.close()  # its file stays: a previous cinit that died
    live = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    live_path = str(directory / "another-instance")
    live.bind(live_path)
    (directory / "not-a-socket").write_text("left alone")
    hub = NotifyHub(str(directory))
    hub.start()
    try:
        assert not os.path.exists(stale_path)
        assert os.path.exists(live_path) and (directory / "not-a-socket").exists()
    finally:
        hub.stop()
        live.close()


def test_a_dead_owner_does_not_stop_delivery_to_others(hub: NotifyHub) -> None:
    class DeadActor:
        def tell(self, message: object) -> None:
            raise RuntimeError("actor is dead")

    inbox = Inbox()
    dead = hub.open("dead.service", DeadActor())
    alive = hub.open("alive.service", inbox)
    send(dead, "READY=1")
    send(alive, "READY=1")
    assert inbox.next().unit == "alive.service"


def test_open_before_start_queues_messages_and_open_after_stop_fails(shared_dir: Path) -> None:
    hub = NotifyHub(str(shared_dir / "notify"))
    inbox = Inbox()
    path = hub.open("early.service", inbox)
    send(path, "READY=1")
    hub.start()
    assert inbox.next().fields == {"READY": "1"}
    hub.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        hub.open("late.service", inbox)


def test_the_directory_is_made_traversable(shared_dir: Path) -> None:
    directory = shared_dir / "notify"
    directory.mkdir(mode=0o700)
    hub = NotifyHub(str(directory))
    hub.start()
    try:
        assert stat.S_IMODE(directory.stat().st_mode) == 0o755
    finally:
        hub.stop()
