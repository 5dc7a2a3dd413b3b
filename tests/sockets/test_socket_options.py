"""Socket options of systemd.socket(5) on real sockets (`cinit.io.sockets`), read back with
getsockopt: SocketProtocol=, PassCredentials= on an IP socket, DirectoryMode=, Symlinks=
(made at bind, removed with RemoveOnStop=, a failure logged and not fatal)."""

from __future__ import annotations

import errno
import os
import socket
import stat
import time
from pathlib import Path

import pytest

from cinit.io.sockets import bind_socket_unit, close_listeners
from cinit.units import parse_unit
from cinit.units.model import Unit

pytestmark = pytest.mark.timeout(30)


def stderr_until(capfd: pytest.CaptureFixture[str], expected: str, seen: str = "") -> str:
    """What fd 2 got (after `seen`) until it holds `expected`, for at most 5 s: cinit's line
    may go through its log writer thread (when an earlier test of the run set it up)."""
    deadline = time.monotonic() + 5
    while expected not in seen and time.monotonic() < deadline:
        seen += capfd.readouterr().err
        if expected not in seen:
            time.sleep(0.02)
    return seen


def unit(text: str) -> Unit:
    parsed, diags = parse_unit("t.socket", "[Socket]\n" + text, environ={})
    assert [d for d in diags if d.severity.value == "error"] == [] and parsed is not None
    return parsed


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_udplite_is_the_protocol_of_the_datagram_socket() -> None:
    port = free_udp_port()
    sock_unit = unit(f"ListenDatagram=127.0.0.1:{port}\nSocketProtocol=udplite\n")
    try:  # UDP-Lite may be missing or switched off (Linux deprecates it)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM, 136) as probe:
            probe.bind(("127.0.0.1", 0))
    except OSError as exc:
        pytest.skip(f"this kernel has no usable UDP-Lite: {errno.errorcode.get(exc.errno or 0)}")
    listeners = bind_socket_unit(sock_unit)
    try:
        [listener] = listeners
        sock = listener.sock
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL) == 136  # IPPROTO_UDPLITE
    finally:
        close_listeners(sock_unit, listeners)


def test_pass_credentials_an_ip_socket_refuses_is_logged_and_the_socket_serves(
    capfd: pytest.CaptureFixture[str],
) -> None:
    # syslog.socket-style options on an IP listener: since Linux 6.x SO_PASSCRED is
    # EOPNOTSUPP there. systemd logs it and serves on; so does cinit.
    port = free_udp_port()
    sock_unit = unit(f"ListenDatagram=127.0.0.1:{port}\nPassCredentials=yes\nReceiveBuffer=1M\n")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            refused = None
        except OSError as exc:
            refused = exc
    listeners = bind_socket_unit(sock_unit)
    try:
        [listener] = listeners
        sock = listener.sock
        if os.geteuid() == 0:  # SO_RCVBUFFORCE passes net.core.rmem_max for root only
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 2 * 1024 * 1024
        err = capfd.readouterr().err
        if refused is None:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED) == 1
            assert "not applied" not in err
        else:
            expected = f"t.socket: PassCredentials= not applied on 127.0.0.1:{port}: "
            assert expected in stderr_until(capfd, expected, err), err
    finally:
        close_listeners(sock_unit, listeners)


def test_directory_mode_and_symlinks_come_and_go_with_the_socket(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "s.sock"
    links = [tmp_path / "l1", tmp_path / "deep" / "l2"]
    old = os.umask(0o077)  # DirectoryMode= whatever the umask
    try:
        sock_unit = unit(
            f"ListenStream={path}\nDirectoryMode=0750\nRemoveOnStop=yes\n"
            f"Symlinks={links[0]} {links[1]}\n"
        )
        listeners = bind_socket_unit(sock_unit)
    finally:
        os.umask(old)
    try:
        assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o750
        assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o750
        for link in links:
            assert os.readlink(link) == str(path)
            with socket.socket(socket.AF_UNIX) as client:
                client.connect(str(link))  # the link reaches the listener
    finally:
        close_listeners(sock_unit, listeners, remove=True)
    assert not path.exists()
    assert not any(os.path.lexists(link) for link in links)


def test_a_symlink_that_cannot_be_made_is_logged_and_the_socket_serves(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.sock"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    sock_unit = unit(f"ListenStream={path}\nSymlinks={blocker}/link\n")
    listeners = bind_socket_unit(sock_unit)
    try:
        assert len(listeners) == 1
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(path))
    finally:
        close_listeners(sock_unit, listeners, remove=True)
    expected = f"t.socket: cannot create Symlinks={blocker}/link: "
    assert expected in stderr_until(capfd, expected), "no such line on stderr"
