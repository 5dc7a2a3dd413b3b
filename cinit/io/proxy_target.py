"""Where a proxy socket relays to: resolving `ProxyTarget=`, opening connections to it, and the
self-connect guard (a target that is the proxy's own listening address).

`ProxyTarget=` forms, as `cinit.units.addresses.parse_proxy_target` gives them: `HOST:PORT`,
`tcp:HOST:PORT` and `[V6]:PORT` (ListenKind.INET; HOST may be a name, resolved when connecting),
`unix:/path` and `/path` (ListenKind.UNIX), `@name` and `unix:@name` (ListenKind.ABSTRACT).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from typing import Any

from cinit.units.model import ListenAddress, ListenKind

SockAddr = Any  # str | bytes | tuple[str, int] | tuple[str, int, int, int]


def describe(target: ListenAddress) -> str:
    """The target as a user wrote it (`unix:` spelled out for file-system paths)."""
    if target.kind is ListenKind.UNIX:
        return "unix:" + target.path
    return target.render()


class ProxyTarget:
    """Opens non-blocking connections to one target. A host name's addresses are resolved once
    and used in order: after a failed connect the next one is tried, and once all have failed
    the name is resolved again (a restarted service may come back elsewhere)."""

    def __init__(self, address: ListenAddress) -> None:
        self.address = address
        self.text = describe(address)
        self._resolved: list[tuple[int, SockAddr]] = []
        self._current = 0

    def resolve(self) -> tuple[int, SockAddr]:
        """(family, sockaddr) to try now; OSError (socket.gaierror) when a name does not
        resolve."""
        if not self._resolved:
            self._resolved = _resolve_all(self.address)
            self._current = 0
        return self._resolved[self._current]

    def forget(self) -> None:
        """The last connect failed: move on to the next address."""
        self._current += 1
        if self._current >= len(self._resolved):
            self._resolved = []

    def open(self) -> tuple[socket.socket, int]:
        """A new non-blocking socket with its connect started: (socket, errno of the connect).

        0 means connected, EINPROGRESS means wait for writability, anything else failed (the
        socket is still returned; the caller closes it).
        """
        family, sockaddr = self.resolve()
        sock = socket.socket(
            family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
        )
        try:
            return sock, sock.connect_ex(sockaddr)
        except OSError as exc:  # e.g. a unix path too long after all: report, never raise
            return sock, exc.errno or errno.EINVAL


def _resolve_all(address: ListenAddress) -> list[tuple[int, SockAddr]]:
    if address.kind is ListenKind.UNIX:
        return [(socket.AF_UNIX, address.path)]
    if address.kind is ListenKind.ABSTRACT:
        return [(socket.AF_UNIX, b"\0" + address.path.encode())]
    # An ASCII name goes as bytes: a str goes through the "idna" codec, whose import
    # (stringprep, unicodedata) costs time and 1 MiB of the standalone build.
    host: str | bytes = address.host.encode() if address.host.isascii() else address.host
    infos = socket.getaddrinfo(host, address.port, type=socket.SOCK_STREAM)
    return [(family, sockaddr) for family, _, _, _, sockaddr in infos]


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP from a sockaddr host, IPv4-mapped IPv6 folded to IPv4; None if not an IP."""
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _is_local(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether `ip` is an address of this host (network namespace): binding to it works."""
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((str(ip), 0))
        except OSError:
            return False
    return True


def _same_inet(
    listener: socket.socket,
    target_ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
    target_port: int,
) -> bool:
    host, port = listener.getsockname()[:2]
    if port != target_port:
        return False
    bound = _ip(host)
    if bound is None:
        return False
    if not bound.is_unspecified:
        return bound == target_ip
    # A wildcard listener: any local address of its family (and IPv4 on a dual-stack one).
    if bound.version != target_ip.version:
        v6only = listener.family == socket.AF_INET6 and listener.getsockopt(
            socket.IPPROTO_IPV6, socket.IPV6_V6ONLY
        )
        if bound.version == 4 or v6only:
            return False
    return target_ip.is_loopback or target_ip.is_unspecified or _is_local(target_ip)


def _same_unix(listener: socket.socket, target: ListenAddress) -> bool:
    name = listener.getsockname()
    if target.kind is ListenKind.ABSTRACT:
        wanted = b"\0" + target.path.encode()
        return isinstance(name, bytes) and name == wanted
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    if not name or name.startswith("\0"):
        return False
    if os.path.normpath(name) == target.path:
        return True
    try:
        return os.path.samefile(name, target.path)
    except OSError:
        return False


def self_connect_reason(listeners: list[socket.socket], target: ListenAddress) -> str | None:
    """Why relaying `listeners` to `target` would connect the proxy to itself, or None.

    A host name that does not resolve now is not judged (it is resolved again when connecting).
    """
    target_ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    if target.kind is ListenKind.INET:
        try:
            found = (_ip(str(sockaddr[0])) for _, sockaddr in _resolve_all(target))
            target_ips = [ip for ip in found if ip is not None]
        except OSError:
            return None
    for listener in listeners:
        try:
            if listener.family == socket.AF_UNIX:
                same = target.kind is not ListenKind.INET and _same_unix(listener, target)
            else:
                same = any(_same_inet(listener, ip, target.port) for ip in target_ips)
            if same:
                return (
                    f"proxy target {describe(target)} is this socket's own listening address "
                    f"({_render_name(listener)}): refusing to relay connections to itself"
                )
        except OSError:
            continue
    return None


def _render_name(listener: socket.socket) -> str:
    name = listener.getsockname()
    if isinstance(name, bytes):
        return (
            "@" + name[1:].decode(errors="replace") if name.startswith(b"\0") else os.fsdecode(name)
        )
    if isinstance(name, str):
        return name
    host, port = name[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
