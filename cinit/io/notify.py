"""sd_notify for Type=notify units: one datagram socket per unit, read by one thread.

`NotifyHub.open(unit, owner)` binds a fresh AF_UNIX SOCK_DGRAM socket and returns its
path for the unit's NOTIFY_SOCKET. Every datagram that arrives is split into
newline-separated `KEY=VALUE` fields (malformed lines are ignored; a datagram longer
than systemd's 4096-byte limit is dropped whole) and told to the owner as a
`NotifyMessage` with the sender's pid. The pid comes from SCM_CREDENTIALS (SO_PASSCRED):
the kernel fills it in and only a privileged sender can forge it (a sender outside
cinit's pid namespace shows as pid 0). File descriptors sent along are closed at once:
cinit keeps no fd store (FDSTORE=1), and closing is what completes the BARRIER=1 that
systemd-notify and sd_notify_barrier() send and wait on.

Paths: `<directory>/<token>-<n>-<unit>`, where `token` is random per hub (unique across
cinit instances sharing a directory) and the unit name is cut so that the whole path
fits in sun_path (107 bytes) whatever the unit's name. A `directory` starting with `@`
puts the sockets in Linux's abstract namespace instead (`@cinit/<token>-<n>-<unit>`):
no file at all, nothing stale, no directory to traverse, but reachable only from
cinit's network namespace.

Permissions, and why: services may run as another user (User=), and sending a datagram
needs write permission on the socket file and search permission on every directory
above it. So the hub makes `directory` 0755 and each socket 0666, as systemd does with
/run/systemd/notify. Any local user can therefore send to any unit's socket (socket
paths are not secret either: /proc/net/unix lists them); what makes it safe is that a
message carries its sender's real pid, and the consumer must act only on messages from
the unit's own processes (systemd's NotifyAccess=main accepts the main pid only). Note
that a directory inside cinit's 0700 runtime dir is not reachable by non-root services:
for those, use an abstract `@` directory or one outside the runtime dir. Stale socket
files (their cinit is gone: connecting is refused) are removed when the hub starts.
"""

from __future__ import annotations

import errno
import os
import sys
import threading

from cinit.boot_path import TYPE_CHECKING
from cinit.io.wakeup import Wakeup

if TYPE_CHECKING:
    import selectors
    import socket
    from typing import Any
else:  # the C half of `socket`: its enum wrappers would cost ~2 ms on the boot path
    import _socket as socket

_EVENT_READ = 1  # selectors.EVENT_READ: the module itself loads in the thread

NOTIFY_BUFFER_MAX = 4096  # systemd's limit on one notification datagram
SOCKET_MODE = 0o666
DIRECTORY_MODE = 0o755
_SUN_PATH_MAX = 107  # sun_path is 108 bytes with the terminating NUL
_NAME_MAX = 32  # characters of the unit name kept in a socket's name
_BATCH = 64  # datagrams read from one socket per wake-up (fairness)
_UCRED_SIZE = 12  # struct ucred: pid, uid, gid
_ANCILLARY_SIZE = socket.CMSG_SPACE(_UCRED_SIZE) + socket.CMSG_SPACE(253 * 4)  # SCM_MAX_FD


class NotifyMessage:
    """One notification: the unit's socket it came to, the sender's pid, its fields."""

    __slots__ = ("fields", "sender_pid", "unit")

    def __init__(self, unit: str, sender_pid: int | None, fields: dict[str, str]) -> None:
        self.unit = unit
        self.sender_pid = sender_pid  # None when the kernel gave no credentials
        self.fields = fields

    def __repr__(self) -> str:
        return f"NotifyMessage({self.unit!r}, sender_pid={self.sender_pid}, {self.fields!r})"


def parse_notification(data: bytes) -> dict[str, str]:
    """The `KEY=VALUE` lines of a datagram (later duplicates win). Lines without `=`, with
    an empty or non-alphanumeric key, or with NUL bytes are ignored. Values are UTF-8
    (invalid bytes replaced)."""
    fields: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        key, equals, value = line.partition("=")
        if equals and key.isascii() and key.replace("_", "").isalnum() and "\0" not in value:
            fields[key] = value
    return fields


class _Endpoint:
    __slots__ = ("address", "file", "owner", "sock", "unit")

    def __init__(self, unit: str, owner: Any, sock: socket.socket, address: str, file: str):
        self.unit = unit
        self.owner = owner
        self.sock = sock
        self.address = address  # what NOTIFY_SOCKET says
        self.file = file  # the socket file to remove, "" in the abstract namespace


class NotifyHub:
    """Datagram sockets for Type=notify units (sd_notify protocol), read by one thread."""

    def __init__(self, directory: str) -> None:
        self.directory = directory.rstrip("/") or "/"
        self._abstract = directory.startswith("@")
        self._token = os.urandom(4).hex()
        self._lock = threading.Lock()
        self._count = 0
        self._units: dict[str, _Endpoint] = {}  # unit -> its current endpoint
        self._changes: list[tuple[bool, _Endpoint]] = []  # (add?, endpoint) for the thread
        self._wakeup = Wakeup()
        self._thread: threading.Thread | None = None
        self._prepared = False
        self._stopping = False

    def start(self) -> None:
        """Create the directory, remove stale sockets, start the reading thread."""
        self._prepare()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="cinit-notify", daemon=True)
            self._thread.start()

    def open(self, unit: str, owner: Any) -> str:
        """Bind a fresh socket for `unit` and return its NOTIFY_SOCKET path; datagrams go to
        `owner.tell(NotifyMessage(...))`. Replaces the unit's previous socket, if any.
        Raises OSError when the socket cannot be created (directory too long, no space)."""
        self._prepare()
        with self._lock:
            if self._stopping:
                raise RuntimeError("the notify hub is stopped")
            self._count += 1
            address = self._address(unit, self._count)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            if self._abstract:
                sock.bind("\0" + address[1:])
            else:
                _unlink(address)  # a stale file in the way (bind never replaces one)
                sock.bind(address)
                os.chmod(address, SOCKET_MODE)
        except BaseException:
            sock.close()
            raise
        endpoint = _Endpoint(unit, owner, sock, address, "" if self._abstract else address)
        with self._lock:
            if self._stopping:  # stopped while binding: nobody else knows this socket
                sock.close()
                if endpoint.file:
                    _unlink(endpoint.file)
                raise RuntimeError("the notify hub is stopped")
            previous = self._units.get(unit)
            if previous is not None:
                self._retire_locked(previous)
            self._units[unit] = endpoint
            self._changes.append((True, endpoint))
            self._wakeup.wake()  # under the lock: stop() closes it under the lock too
        return address

    def close(self, unit: str) -> None:
        """Remove the unit's socket (its file at once; datagrams still queued are dropped)."""
        with self._lock:
            endpoint = self._units.get(unit)
            if endpoint is not None:
                self._retire_locked(endpoint)
                self._wakeup.wake()

    def stop(self) -> None:
        """Close every socket, remove their files, end the thread."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            for endpoint in list(self._units.values()):
                self._retire_locked(endpoint)
        thread = self._thread
        if thread is not None:
            self._wakeup.wake()
            thread.join(2.0)
            if thread.is_alive():
                return  # stuck in an owner's tell(): leave it its fds
        else:
            self._apply_changes(None, {})
        with self._lock:
            self._wakeup.close()

    # --- internals --------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Once: create the directory (0755) and remove stale sockets from it."""
        if self._prepared or self._abstract:
            return
        from cinit.io.runtime import ensure_runtime_dir

        ensure_runtime_dir(self.directory, DIRECTORY_MODE)
        _remove_stale_sockets(self.directory)
        self._prepared = True

    def _address(self, unit: str, number: int) -> str:
        base = f"{self.directory}/{self._token}-{number}"
        room = _SUN_PATH_MAX - len(os.fsencode(base)) - 1
        if room < 0:
            raise OSError(
                errno.ENAMETOOLONG,
                f"notify socket directory {self.directory} is too long: socket paths in it "
                f"would exceed {_SUN_PATH_MAX} bytes",
            )
        tag = "".join(c if c.isascii() and (c.isalnum() or c in "._@-") else "_" for c in unit)
        tag = tag[: min(room, _NAME_MAX)]
        return f"{base}-{tag}" if tag else base

    def _retire_locked(self, endpoint: _Endpoint) -> None:
        """Forget `endpoint` (lock held): unlink its file now, let the thread close it."""
        if self._units.get(endpoint.unit) is endpoint:
            del self._units[endpoint.unit]
        if endpoint.file:
            _unlink(endpoint.file)
        self._changes.append((False, endpoint))

    def _run(self) -> None:
        import selectors  # in the thread: off the boot path (~2.5 ms)

        selector = selectors.DefaultSelector()
        selector.register(self._wakeup.fd, _EVENT_READ, None)
        registered: dict[int, _Endpoint] = {}
        try:
            while True:
                self._apply_changes(selector, registered)
                if self._stopping:
                    break
                for key, _events in selector.select():
                    if key.data is None:
                        self._wakeup.drain()
                    else:
                        self._receive(key.data)
        finally:
            self._apply_changes(None, registered)
            for endpoint in registered.values():
                endpoint.sock.close()
            selector.close()

    def _apply_changes(
        self, selector: selectors.BaseSelector | None, registered: dict[int, _Endpoint]
    ) -> None:
        """Register new sockets and close retired ones; only the reading thread (or `stop`
        when there is none) does this, so no fd is closed while it may be read."""
        with self._lock:
            changes, self._changes = self._changes, []
        for add, endpoint in changes:
            fd = endpoint.sock.fileno()
            if add and selector is not None:
                registered[fd] = endpoint
                selector.register(fd, _EVENT_READ, endpoint)
            elif not add:
                if registered.pop(fd, None) is not None and selector is not None:
                    selector.unregister(fd)
                endpoint.sock.close()

    def _receive(self, endpoint: _Endpoint) -> None:
        for _ in range(_BATCH):
            try:
                data, ancillary, flags, _address = endpoint.sock.recvmsg(
                    NOTIFY_BUFFER_MAX, _ANCILLARY_SIZE, socket.MSG_CMSG_CLOEXEC
                )
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                from cinit.io.log import log

                log(f"{endpoint.unit}: notify socket: {exc}")
                return
            sender = _parse_ancillary(ancillary)
            if flags & socket.MSG_TRUNC:
                from cinit.io.log import info

                info(f"{endpoint.unit}: notification over {NOTIFY_BUFFER_MAX} bytes ignored")
                continue
            fields = parse_notification(data)
            if fields:
                try:
                    endpoint.owner.tell(NotifyMessage(endpoint.unit, sender, fields))
                except Exception as exc:  # a dead owner must not end the thread
                    from cinit.io.log import info

                    info(f"{endpoint.unit}: notification not delivered: {exc}")


def _parse_ancillary(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    """The sender's pid from SCM_CREDENTIALS; any fds received are closed."""
    pid = None
    for level, kind, data in ancillary:
        if level != socket.SOL_SOCKET:
            continue
        if kind == socket.SCM_CREDENTIALS and len(data) >= _UCRED_SIZE:
            pid = int.from_bytes(data[:4], sys.byteorder, signed=True)
        elif kind == socket.SCM_RIGHTS:
            for start in range(0, len(data) - 3, 4):
                try:  # noqa: SIM105 - contextlib would be one more import on the boot path
                    os.close(int.from_bytes(data[start : start + 4], sys.byteorder, signed=True))
                except OSError:
                    pass
    return pid


def _unlink(path: str) -> None:
    try:  # noqa: SIM105 - contextlib would be one more import on the boot path
        os.unlink(path)
    except FileNotFoundError:
        pass


def _remove_stale_sockets(directory: str) -> None:
    """Remove socket files in `directory` that nobody receives on any more."""
    import stat

    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for name in entries:
        path = os.path.join(directory, name)
        try:
            if not stat.S_ISSOCK(os.lstat(path).st_mode):
                continue
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        except OSError:
            continue
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            _unlink(path)  # bound by nobody: its cinit is gone
        except OSError:
            pass
        finally:
            probe.close()
