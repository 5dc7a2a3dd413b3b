"""`cinit.io.sockets` on real sockets: every address form, options, unix nodes, the poller."""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cinit.io.sockets import (
    BindError,
    ListenerRegistry,
    ReadinessPoller,
    bind_socket_unit,
    close_listeners,
    kernel_backlog,
)
from cinit.units.addresses import parse_listen_address
from cinit.units.model import SocketSection, Unit, UnitKind

pytestmark = pytest.mark.timeout(30)


def free_port() -> int:
    with socket.socket(socket.AF_INET6) as probe:
        probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        probe.bind(("::", 0))
        return int(probe.getsockname()[1])


def socket_unit(
    name: str = "t.socket",
    stream: tuple[str, ...] = (),
    datagram: tuple[str, ...] = (),
    **kw: object,
) -> Unit:
    section = SocketSection(
        listen_stream=tuple(parse_listen_address(a) for a in stream),
        listen_datagram=tuple(parse_listen_address(a) for a in datagram),
        file_descriptor_name=str(kw.pop("file_descriptor_name", name)),
        **kw,  # type: ignore[arg-type]
    )
    return Unit(name=name, path=f"/x/{name}", kind=UnitKind.SOCKET, socket=section)


@contextlib.contextmanager
def bound(unit: Unit) -> Iterator[list]:  # type: ignore[type-arg]
    listeners = bind_socket_unit(unit)
    try:
        yield listeners
    finally:
        close_listeners(unit, listeners, remove=True)


def connects(family: int, address: tuple[object, ...] | str) -> bool:
    with socket.socket(family, socket.SOCK_STREAM) as client:
        client.settimeout(2)
        try:
            client.connect(address)
        except OSError:
            return False
        return True


def test_port_alone_is_dual_stack() -> None:
    port = free_port()
    with bound(socket_unit(stream=(str(port),))) as listeners:
        assert [item.bound for item in listeners] == [f"[::]:{port}"]
        assert connects(socket.AF_INET, ("127.0.0.1", port))
        assert connects(socket.AF_INET6, ("::1", port))


def test_bind_ipv6_only_refuses_ipv4_clients() -> None:
    port = free_port()
    with bound(socket_unit(stream=(str(port),), bind_ipv6_only="ipv6-only")) as listeners:
        sock = listeners[0].sock
        assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
        assert connects(socket.AF_INET6, ("::1", port))
        assert not connects(socket.AF_INET, ("127.0.0.1", port))


def test_ipv4_and_ipv6_addresses_bind_only_there() -> None:
    port4, port6 = free_port(), free_port()
    unit = socket_unit(stream=(f"127.0.0.1:{port4}", f"[::1]:{port6}"))
    with bound(unit) as listeners:
        assert [item.bound for item in listeners] == [f"127.0.0.1:{port4}", f"[::1]:{port6}"]
        assert listeners[0].sock.family == socket.AF_INET
        assert listeners[1].sock.family == socket.AF_INET6
        assert connects(socket.AF_INET6, ("::1", port6))
        assert not connects(socket.AF_INET, ("127.0.0.1", port6))


def test_blocking_close_on_exec_and_listening_with_the_kernel_backlog() -> None:
    port = free_port()
    with bound(socket_unit(stream=(f"127.0.0.1:{port}",))) as listeners:
        sock = listeners[0].sock
        assert sock.getblocking()
        assert not os.get_inheritable(sock.fileno())
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        listing = subprocess.run(
            ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=False
        )
        if listing.returncode != 0 or not listing.stdout.strip():
            pytest.skip("ss (iproute2) cannot show the backlog here")
        assert int(listing.stdout.split()[2]) == kernel_backlog()  # Send-Q of a listener


def test_backlog_and_reuse_port_are_applied() -> None:
    port = free_port()
    unit = socket_unit(stream=(f"127.0.0.1:{port}",), backlog=7, reuse_port=True)
    with bound(unit) as listeners:
        sock = listeners[0].sock
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
        listing = subprocess.run(
            ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=False
        )
        if listing.returncode == 0 and listing.stdout.strip():
            assert int(listing.stdout.split()[2]) == 7
        # ReusePort=: a second socket with SO_REUSEPORT binds the same port.
        with socket.socket() as other:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            other.bind(("127.0.0.1", port))


def test_datagram_and_abstract_listeners() -> None:
    port = free_port()
    name = f"cinit-test-{os.getpid()}-{port}"
    unit = socket_unit(stream=(f"@{name}",), datagram=(f"127.0.0.1:{port}",))
    with bound(unit) as listeners:
        assert [item.directive for item in listeners] == ["ListenStream", "ListenDatagram"]
        assert listeners[1].sock.type == socket.SOCK_DGRAM
        assert connects(socket.AF_UNIX, "\0" + name)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.sendto(b"x", ("127.0.0.1", port))
            assert listeners[1].sock.recvfrom(10)[0] == b"x"


def test_unix_node_parents_mode_owner_and_stale_node_replaced(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "app.sock"
    path.parent.mkdir(parents=True)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # the node stays: nobody listens on it
    assert not connects(socket.AF_UNIX, str(path))
    old_umask = os.umask(0o077)
    try:
        deeper = tmp_path / "c" / "d" / "x.sock"
        unit = socket_unit(stream=(str(path), str(deeper)), socket_mode=0o600, socket_group="0")
        with bound(unit):
            assert connects(socket.AF_UNIX, str(path))
            info = os.stat(path)
            assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
            assert info.st_gid == 0
            for directory in (deeper.parent, deeper.parent.parent):
                assert stat.S_IMODE(os.stat(directory).st_mode) == 0o755
            # Bound at the declared path itself: no temporary name anywhere.
            assert sorted(os.listdir(path.parent)) == ["app.sock"]
        assert not path.exists() and not deeper.exists()  # remove=True (RemoveOnStop=)
    finally:
        os.umask(old_umask)


def unix_table_paths() -> list[str]:
    """The bound paths /proc/net/unix lists (its last column, when there is one)."""
    lines = Path("/proc/net/unix").read_text().splitlines()[1:]
    return [words[7] for words in (line.split() for line in lines) if len(words) > 7]


def test_unix_node_is_bound_at_the_declared_path_never_wider_than_socket_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "app.sock"
    seen: list[tuple[str, int]] = []  # (call, the node's mode when it was made)
    real_chown, real_chmod = os.chown, os.chmod

    def chown_spy(target: str, uid: int, gid: int, **kw: object) -> None:
        seen.append(("chown", stat.S_IMODE(os.stat(target).st_mode)))
        real_chown(target, uid, gid, **kw)  # type: ignore[arg-type]

    def chmod_spy(target: str, mode: int, **kw: object) -> None:
        seen.append(("chmod", stat.S_IMODE(os.stat(target).st_mode)))
        real_chmod(target, mode, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "chown", chown_spy)
    monkeypatch.setattr(os, "chmod", chmod_spy)
    old_umask = os.umask(0)  # a umask that takes nothing away: SocketMode= alone limits it
    try:
        unit = socket_unit(stream=(str(path),), socket_mode=0o600, socket_group="0")
        with bound(unit) as listeners:
            assert listeners[0].sock.getsockname() == str(path)
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
            assert os.listdir(tmp_path) == ["app.sock"]
            listed = [p for p in unix_table_paths() if p.startswith(str(tmp_path))]
            assert listed == [str(path)]
    finally:
        os.umask(old_umask)
    assert seen, "the node's owner was never set"
    assert all(mode & ~0o600 == 0 for _, mode in seen), seen


def test_a_live_or_stale_socket_node_is_replaced_but_a_regular_file_is_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "app.sock"
    unit = socket_unit(stream=(str(path),))
    with bound(unit) as first:
        with bound(unit) as second:  # a restart while the old listener lives on elsewhere
            assert second[0].sock.getsockname() == str(path)
            assert connects(socket.AF_UNIX, str(path))
        assert first[0].sock.getsockname() == str(path)
    path.write_text("precious")
    with pytest.raises(BindError, match="exists and is a regular file"):
        bind_socket_unit(unit)
    assert path.read_text() == "precious"
    path.unlink()
    path.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(BindError, match="exists and is a symbolic link"):
        bind_socket_unit(unit)
    assert path.is_symlink()


def test_failures_name_directive_address_and_errno_and_bind_nothing(tmp_path: Path) -> None:
    port = free_port()
    holder = socket.socket()
    holder.bind(("127.0.0.1", port))
    holder.listen()
    first = free_port()
    try:
        unit = socket_unit(stream=(f"127.0.0.1:{first}", f"127.0.0.1:{port}"))
        with pytest.raises(BindError) as caught:
            bind_socket_unit(unit)
        assert str(caught.value) == (
            f"t.socket: cannot bind ListenStream=127.0.0.1:{port}: "
            "Address already in use (EADDRINUSE)"
        )
        assert connects(socket.AF_INET, ("127.0.0.1", first)) is False  # all or nothing
    finally:
        holder.close()
    directory = tmp_path / "dir.sock"
    directory.mkdir()
    with pytest.raises(BindError) as caught:
        bind_socket_unit(socket_unit(stream=(str(directory),)))
    assert str(caught.value) == (
        f"t.socket: cannot bind ListenStream={directory}: {directory} exists and is a "
        "directory: cinit replaces only a stale socket node there"
    )
    assert directory.is_dir()
    with pytest.raises(BindError, match="unknown user 'no-such-user-x'"):
        bind_socket_unit(
            socket_unit(stream=(str(tmp_path / "u.sock"),), socket_user="no-such-user-x")
        )


def test_registry_gives_each_service_its_sockets_listeners_in_socket_name_order() -> None:
    ports = [free_port() for _ in range(3)]
    b = socket_unit("b.socket", stream=(f"127.0.0.1:{ports[0]}",))
    a = socket_unit(
        "a.socket",
        stream=(f"127.0.0.1:{ports[1]}", f"127.0.0.1:{ports[2]}"),
        file_descriptor_name="web",
    )
    with bound(b) as lb, bound(a) as la:
        registry = ListenerRegistry()
        registry.set("b.socket", "svc.service", lb)
        registry.set("a.socket", "svc.service", la)
        fds, names = registry.fds_for("svc.service")
        assert fds == (la[0].fileno(), la[1].fileno(), lb[0].fileno())
        assert names == ("web", "web", "b.socket")
        registry.remove("a.socket")
        assert registry.fds_for("svc.service") == ((lb[0].fileno(),), ("b.socket",))
        assert registry.fds_for("other.service") == ((), ())


class Inbox:
    def __init__(self) -> None:
        self.queue: queue.Queue[object] = queue.Queue()

    def tell(self, message: object) -> None:
        self.queue.put(message)


def test_poller_tells_once_per_arming() -> None:
    port = free_port()
    with bound(socket_unit(stream=(f"127.0.0.1:{port}",))) as listeners:
        poller = ReadinessPoller()
        poller.start()
        inbox = Inbox()
        fd = listeners[0].fileno()
        try:
            poller.watch(fd, inbox, "ready", armed=False)
            client = socket.create_connection(("127.0.0.1", port))
            with pytest.raises(queue.Empty):  # watched but not armed: silent
                inbox.queue.get(timeout=0.3)
            poller.rearm(fd)
            assert inbox.queue.get(timeout=5) == "ready"
            with pytest.raises(queue.Empty):  # one-shot: still readable, but told once
                inbox.queue.get(timeout=0.3)
            poller.rearm(fd)
            assert inbox.queue.get(timeout=5) == "ready"
            poller.disarm(fd)
            with pytest.raises(queue.Empty):
                inbox.queue.get(timeout=0.3)
            poller.forget(fd)
            client.close()
        finally:
            poller.stop()
