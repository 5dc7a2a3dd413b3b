"""Listening sockets of `.socket` units: binding them, and telling actors when they are readable.

`bind_socket_unit` binds every ListenStream=/ListenDatagram= of one unit, in file order, or
none (a failure closes what it bound and raises `BindError` naming the directive, the
address and the errno). Listeners stay blocking and close-on-exec in cinit: the service
inherits a dup (spawn clears close-on-exec on fds 3...), and O_NONBLOCK is shared by every
dup of an open file, so cinit never sets it on a listener it hands over.

Address forms (`cinit.units.addresses`): `PORT` binds `[::]` dual stack (IPv4 `0.0.0.0`
where IPv6 is off), `ADDR:PORT`, `[V6]:PORT`, `/path` (parent directories created 0755;
the node is bound at the declared path itself, so getsockname(), /proc/net/unix and
sd_is_socket_unix() name it; a stale socket node there is removed first, anything else
there is refused; the node is created with at most SocketMode= and then given
SocketUser=/SocketGroup= and exactly SocketMode=; missing parents get DirectoryMode=;
Symlinks= are made to it), `@name` (abstract). Backlog=0 means the kernel maximum
(net.core.somaxconn). SocketProtocol= (IP listeners) is given at socket creation;
PassCredentials=, PassSecurity=, ReceiveBuffer=, SendBuffer= once it is bound (one the
socket refuses is logged, as systemd does, and the socket serves on).

`ReadinessPoller` is one epoll thread for every listener cinit polls. Each fd is watched
one-shot: when it becomes readable the poller tells its target once and stops watching it
until `rearm` (so nothing spins while a service starts and takes the connection).
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import stat
import threading
from collections.abc import Iterable
from typing import Any, Protocol

from cinit.io.userdb import UserDbError, resolve_credentials
from cinit.units._files import file_kind
from cinit.units.model import ListenAddress, ListenKind, SocketSection, Unit

DEFAULT_BACKLOG = 4096  # when /proc/sys/net/core/somaxconn cannot be read


class BindError(Exception):
    """A listener could not be set up; `str()` is the line to log (unit, directive, address)."""


class Tellable(Protocol):
    def tell(self, message: Any) -> None: ...


class Listener:
    """One bound listener of a socket unit."""

    def __init__(
        self, sock: socket.socket, address: ListenAddress, directive: str, name: str, bound: str
    ) -> None:
        self.sock = sock
        self.address = address
        self.directive = directive  # ListenStream or ListenDatagram
        self.name = name  # FileDescriptorName= (the socket unit's name by default)
        self.bound = bound  # as logged (`[::]:8080`, `/run/x.sock`, `@name`)

    def fileno(self) -> int:
        return self.sock.fileno()


def kernel_backlog() -> int:
    """net.core.somaxconn: the largest backlog the kernel grants."""
    try:
        with open("/proc/sys/net/core/somaxconn") as f:
            return max(1, int(f.read().strip()))
    except (OSError, ValueError):
        return DEFAULT_BACKLOG


def describe_os_error(exc: OSError) -> str:
    """`Address already in use (EADDRINUSE)`."""
    err = exc.errno or 0
    if not err:
        return str(exc)
    return f"{os.strerror(err)} ({errno.errorcode.get(err, str(err))})"


def bind_socket_unit(unit: Unit, userdb_root: str = "/") -> list[Listener]:
    """Bind all listeners of socket unit `unit`; all or none. Raises BindError."""
    section = unit.socket
    if section is None:
        raise BindError(f"{unit.name}: not a socket unit")
    name = section.file_descriptor_name or unit.name
    wanted = [("ListenStream", a) for a in section.listen_stream]
    wanted += [("ListenDatagram", a) for a in section.listen_datagram]
    bound: list[Listener] = []
    try:
        for directive, address in wanted:
            datagram = directive == "ListenDatagram"
            try:
                sock, where = _bind_one(address, datagram, section, userdb_root)
            except OSError as exc:
                raise BindError(
                    f"{unit.name}: cannot bind {directive}={address.render()}: "
                    f"{describe_os_error(exc)}"
                ) from None
            except NodeInTheWay as exc:
                raise BindError(
                    f"{unit.name}: cannot bind {directive}={address.render()}: {exc}"
                ) from None
            except UserDbError as exc:  # SocketUser=/SocketGroup= unknown
                raise BindError(
                    f"{unit.name}: cannot set up {directive}={address.render()}: {exc}"
                ) from None
            bound.append(Listener(sock, address, directive, name, where))
            _set_options(unit.name, bound[-1], section)
    except BaseException:
        close_listeners(unit, bound)
        raise
    if section.symlinks:
        _make_symlinks(unit, section, bound)
    return bound


def _make_symlinks(unit: Unit, section: SocketSection, bound: list[Listener]) -> None:
    """Symlinks=: each path a symlink to the unit's one unix socket. A failure is not the
    socket's (systemd.socket(5)): logged, and the socket serves on."""
    from cinit.io.log import log  # only units with Symlinks=

    target = next((b.address.path for b in bound if b.address.kind is ListenKind.UNIX), "")
    if not target:
        log(f"{unit.name}: Symlinks= needs a unix socket (ListenStream=/path); none made")
        return
    for path in section.symlinks:
        try:
            _make_dirs(os.path.dirname(path), section.directory_mode)
            with contextlib.suppress(FileNotFoundError):
                if os.path.islink(path):
                    os.unlink(path)  # an old link of ours (or anyone's): replaced
            os.symlink(target, path)
        except OSError as exc:
            log(f"{unit.name}: cannot create Symlinks={path}: {describe_os_error(exc)}")


def close_listeners(unit: Unit, listeners: Iterable[Listener], remove: bool = False) -> None:
    """Close cinit's copies; with `remove` (RemoveOnStop=) unlink unix socket nodes too."""
    for listener in listeners:
        with contextlib.suppress(OSError):
            listener.sock.close()
        if remove and listener.address.kind is ListenKind.UNIX:
            with contextlib.suppress(OSError):
                os.unlink(listener.address.path)
    if remove and unit.socket is not None:
        for path in unit.socket.symlinks:  # only links: a file put there is not ours
            if os.path.islink(path):
                with contextlib.suppress(OSError):
                    os.unlink(path)


def _bind_one(
    address: ListenAddress, datagram: bool, section: SocketSection, userdb_root: str
) -> tuple[socket.socket, str]:
    kind = socket.SOCK_DGRAM if datagram else socket.SOCK_STREAM
    if address.kind is ListenKind.UNIX:
        sock = _bind_unix(address.path, kind, section, userdb_root)
        where = address.path
    elif address.kind is ListenKind.ABSTRACT:
        sock = socket.socket(socket.AF_UNIX, kind)
        try:
            sock.bind("\0" + address.path)
        except BaseException:
            sock.close()
            raise
        where = "@" + address.path
    else:
        sock, where = _bind_inet(address, kind, section)
    if not datagram:
        try:
            sock.listen(section.backlog or kernel_backlog())
        except BaseException:
            sock.close()
            raise
    return sock, where


# SocketProtocol= names (systemd.socket(5)); Python's socket module lacks some constants.
_PROTOCOLS = {"udplite": 136, "sctp": 132, "mptcp": 262}
_SO_PASSSEC = getattr(socket, "SO_PASSSEC", 34)
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
_SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)


def _set_options(label: str, listener: Listener, section: SocketSection) -> None:
    """PassCredentials=, PassSecurity=, ReceiveBuffer=, SendBuffer= on a bound listener,
    before any service has it. As systemd does, an option the socket refuses (SO_PASSCRED
    on an IP socket: EOPNOTSUPP since Linux 6.x) is logged and the socket serves on."""
    sock = listener.sock
    wanted: list[tuple[str, int, int, int | None]] = []
    if section.pass_credentials:
        wanted.append(("PassCredentials", socket.SO_PASSCRED, 1, None))
    if section.pass_security:
        wanted.append(("PassSecurity", _SO_PASSSEC, 1, None))
    if section.receive_buffer:  # FORCE: as root, past net.core.rmem_max, as systemd
        wanted.append(("ReceiveBuffer", _SO_RCVBUFFORCE, section.receive_buffer, socket.SO_RCVBUF))
    if section.send_buffer:
        wanted.append(("SendBuffer", _SO_SNDBUFFORCE, section.send_buffer, socket.SO_SNDBUF))
    for directive, option, value, fallback in wanted:
        try:
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, value)
            except OSError:
                if fallback is None:
                    raise
                sock.setsockopt(socket.SOL_SOCKET, fallback, value)  # capped by the kernel
        except OSError as exc:
            from cinit.io.log import log  # only on this rare path

            log(f"{label}: {directive}= not applied on {listener.bound}: {describe_os_error(exc)}")


def _bind_inet(
    address: ListenAddress, kind: int, section: SocketSection
) -> tuple[socket.socket, str]:
    host = address.host
    if not host:
        try:
            return _inet_socket(socket.AF_INET6, "::", address.port, kind, section), (
                f"[::]:{address.port}"
            )
        except OSError as exc:
            # IPv6 disabled (no module, or no address): IPv4 any, as systemd falls back.
            if exc.errno not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT):
                raise
        return _inet_socket(socket.AF_INET, "0.0.0.0", address.port, kind, section), (
            f"0.0.0.0:{address.port}"
        )
    if ":" in host:
        where = f"[{host}]:{address.port}"
        return _inet_socket(socket.AF_INET6, host, address.port, kind, section), where
    return _inet_socket(socket.AF_INET, host, address.port, kind, section), f"{host}:{address.port}"


def _inet_socket(
    family: int, host: str, port: int, kind: int, section: SocketSection
) -> socket.socket:
    protocol = _PROTOCOLS.get(section.socket_protocol, 0)
    sock = socket.socket(family, kind, protocol)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if section.reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6 and section.bind_ipv6_only != "default":
            only = 1 if section.bind_ipv6_only == "ipv6-only" else 0
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, only)
        elif family == socket.AF_INET6 and host == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # dual stack
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _bind_unix(path: str, kind: int, section: SocketSection, userdb_root: str) -> socket.socket:
    _make_dirs(os.path.dirname(path), section.directory_mode)
    uid, gid = _owner(section, userdb_root)
    sock = socket.socket(socket.AF_UNIX, kind)
    try:
        # bind() creates the node with the socket inode's mode less the umask: set per
        # socket, so no process-wide umask change races cinit's other threads.
        os.fchmod(sock.fileno(), section.socket_mode)
        try:
            sock.bind(path)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            _remove_stale_node(path)
            sock.bind(path)
        try:
            _set_up_node(path, uid, gid, section.socket_mode)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
    except BaseException:
        sock.close()
        raise
    return sock


class NodeInTheWay(Exception):
    """Something other than a socket node sits at a unix listener's path."""


def _not_a_socket(path: str, mode: int) -> NodeInTheWay:
    return NodeInTheWay(
        f"{path} exists and is {file_kind(mode)}: cinit replaces only a stale socket node there"
    )


def _remove_stale_node(path: str) -> None:
    """Unlink the socket node at `path` (as systemd does); refuse anything else."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return  # gone meanwhile: bind again
    if not stat.S_ISSOCK(info.st_mode):
        raise _not_a_socket(path, info.st_mode)
    os.unlink(path)


def _set_up_node(path: str, uid: int, gid: int, mode: int) -> None:
    """Owner, then the final mode, of the node just bound at `path` (never via a symlink)."""
    fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISSOCK(info.st_mode):  # replaced meanwhile
            raise _not_a_socket(path, info.st_mode)
        # The fd's /proc link reaches this very inode; without /proc, the path.
        node = f"/proc/self/fd/{fd}" if os.path.isdir("/proc/self/fd") else path
        if uid >= 0 or gid >= 0:
            os.chown(node, uid, gid)
        if stat.S_IMODE(info.st_mode) != mode:  # the umask took bits away: give them back
            os.chmod(node, mode)
    finally:
        os.close(fd)


def _make_dirs(directory: str, mode: int = 0o755) -> None:
    """Create `directory` and missing parents with `mode` (DirectoryMode=, 0755 by default;
    whatever the umask)."""
    missing = []
    current = directory
    while current and not os.path.isdir(current):
        missing.append(current)
        current = os.path.dirname(current)
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(path)
            os.chmod(path, mode)


def _owner(section: SocketSection, userdb_root: str) -> tuple[int, int]:
    """(uid, gid) for SocketUser=/SocketGroup=; -1 for what is not set."""
    if not section.socket_user and not section.socket_group:
        return -1, -1
    credentials = resolve_credentials(section.socket_user, section.socket_group, userdb_root)
    uid = credentials.uid if section.socket_user else -1
    gid = credentials.gid if section.socket_group else -1
    return uid, gid


class ListenerRegistry:
    """The listeners each natively activated service inherits, keyed by service name.

    Written by the supervisor (bind, socket stop or failure), read by a service's io when
    it spawns ExecStart=: every native socket naming the service, in socket name order.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_socket: dict[str, tuple[str, tuple[int, ...], tuple[str, ...]]] = {}

    def set(self, socket_name: str, service: str, listeners: list[Listener]) -> None:
        fds = tuple(listener.fileno() for listener in listeners)
        names = tuple(listener.name for listener in listeners)
        with self._lock:
            self._by_socket[socket_name] = (service, fds, names)

    def remove(self, socket_name: str) -> None:
        with self._lock:
            self._by_socket.pop(socket_name, None)

    def fds_for(self, service: str) -> tuple[tuple[int, ...], tuple[str, ...]]:
        """(fds, names) `service` gets at 3, 4, ...; empty when no socket names it."""
        fds: list[int] = []
        names: list[str] = []
        with self._lock:
            for socket_name in sorted(self._by_socket):
                owner, socket_fds, socket_names = self._by_socket[socket_name]
                if owner == service:
                    fds.extend(socket_fds)
                    names.extend(socket_names)
        return tuple(fds), tuple(names)


class ReadinessPoller:
    """One epoll thread: `watch(fd, target, message)` tells `target` `message` when fd is
    readable, once; `rearm(fd)` to hear about it again; `forget(fd)` before closing it."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._wake_read, self._wake_write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._epoll.register(self._wake_read, select.EPOLLIN)
        self._lock = threading.Lock()
        self._watched: dict[int, tuple[Tellable, Any]] = {}
        self._thread: threading.Thread | None = None
        self._stopping = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="cinit-sockets", daemon=True)
        self._thread.start()

    def watch(self, fd: int, target: Tellable, message: Any, armed: bool = True) -> None:
        with self._lock:
            self._watched[fd] = (target, message)
            events = select.EPOLLIN | select.EPOLLONESHOT if armed else 0
            self._epoll.register(fd, events)

    def rearm(self, fd: int) -> None:
        with self._lock:
            if fd in self._watched:
                self._epoll.modify(fd, select.EPOLLIN | select.EPOLLONESHOT)

    def disarm(self, fd: int) -> None:
        with self._lock:
            if fd in self._watched:
                self._epoll.modify(fd, 0)

    def forget(self, fd: int) -> None:
        with self._lock:
            if self._watched.pop(fd, None) is not None:
                with contextlib.suppress(OSError):
                    self._epoll.unregister(fd)

    def stop(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"x")
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)

    def _loop(self) -> None:
        while not self._stopping:
            try:
                ready = self._epoll.poll()
            except InterruptedError:
                continue
            for fd, _ in ready:
                if fd == self._wake_read:
                    continue
                with self._lock:
                    found = self._watched.get(fd)
                if found is not None:
                    target, message = found
                    with contextlib.suppress(Exception):  # a dead actor: nothing to tell
                        target.tell(message)
        with contextlib.suppress(OSError):
            self._epoll.close()
        for fd in (self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)
