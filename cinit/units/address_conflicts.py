"""Socket-address collisions: listeners the kernel would refuse to bind, and proxies that
would connect to a socket cinit itself listens on.

Pure code: the loaded socket units in, (unit, directive, message) findings out; the
cross-unit checks (`cross_checks`) turn them into diagnostics.
"""

from __future__ import annotations

import posixpath

from cinit.units.model import ActivationMode, ListenAddress, ListenKind, SocketSection, Unit

# A finding: the socket unit, the directive it is about, and what is wrong.
Conflict = tuple[Unit, str, str]

# Where a listener binds: a bucket (protocol and port, one unix path, or one abstract
# name) and a scope in it: "*" (every address of the family) or one normalized address.
# Two binds in one bucket collide when their scopes are equal or either one is "*".
# Keys are plain strings, joined with NUL (which no path or address contains), so that
# indexing thousands of listeners creates no objects the garbage collector must track.
_ANY = "*"
_SEP = "\0"


def _inet_scopes(host: str, ipv6_only: bool) -> list[tuple[str, str]]:
    """(family, scope) pairs a bind to `host` occupies, as the kernel sees it.

    A bare port and [::] bind dual-stack (unless BindIPv6Only=ipv6-only), so they also
    take every IPv4 address; [::ffff:a.b.c.d] is the IPv4 address a.b.c.d.
    """
    if not host:
        return [("6", _ANY)] if ipv6_only else [("4", _ANY), ("6", _ANY)]
    import ipaddress  # only socket units with a host need it: off the boot path

    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return [("name", host.lower())]  # not an address: compare as written
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped
        if mapped is not None:
            return [("4", _ANY if mapped.is_unspecified else str(mapped))]
        if ip.is_unspecified:
            return [("6", _ANY)] if ipv6_only else [("4", _ANY), ("6", _ANY)]
        return [("6", str(ip))]
    return [("4", _ANY if ip.is_unspecified else str(ip))]


def _inet_bucket(directive: str, port: int, family: str) -> str:
    return f"{directive}{_SEP}{port}{_SEP}{family}"


def _bind_keys(
    directive: str,
    address: ListenAddress,
    ipv6_only: bool,
    memo: dict[tuple[str, bool], list[tuple[str, str]]],
) -> list[tuple[str, str]]:
    """(bucket, scope) pairs of one listener.

    Unix paths are files, so stream and datagram share them; ports and abstract names
    are per protocol. Port 0 (the kernel picks a free one) never collides.
    """
    if address.kind is ListenKind.INET:
        if address.port == 0:
            return []
        scopes = memo.get((address.host, ipv6_only))
        if scopes is None:
            scopes = memo[address.host, ipv6_only] = _inet_scopes(address.host, ipv6_only)
        return [(_inet_bucket(directive, address.port, fam), scope) for fam, scope in scopes]
    if address.kind is ListenKind.UNIX:
        return [(_unix_bucket(address.path), _ANY)]
    return [(_abstract_bucket(directive, address.path), _ANY)]


def _unix_bucket(path: str) -> str:
    return "unix" + _SEP + posixpath.normpath(path)


def _abstract_bucket(directive: str, name: str) -> str:
    return f"{directive}{_SEP}@{name}"


class _Index:
    """Listener numbers by key; almost every key has one listener, stored as a bare int."""

    def __init__(self) -> None:
        self.first: dict[str, int] = {}
        self.more: dict[str, list[int]] = {}

    def add(self, key: str, number: int) -> None:
        if self.first.setdefault(key, number) != number:
            self.more.setdefault(key, []).append(number)

    def get(self, key: str) -> list[int]:
        first = self.first.get(key)
        if first is None:
            return []
        return [first, *self.more.get(key, ())]


class _Listeners:
    """Every ListenStream=/ListenDatagram= of the sockets, numbered, and where each binds."""

    def __init__(self) -> None:
        self.units: list[Unit] = []
        self.directives: list[str] = []
        self.addresses: list[ListenAddress] = []
        self.by_bucket = _Index()
        self.by_scope = _Index()  # key: bucket + NUL + scope

    def describe(self, number: int) -> str:
        return f"{self.directives[number]}={self.addresses[number].render()}"

    def whose(self, number: int, asker: Unit) -> str:
        """`number` described for a message about `asker`, naming its file when another's."""
        unit = self.units[number]
        if unit is asker:
            return f"its own {self.describe(number)}"
        return f"{self.describe(number)} of {unit.name} ({unit.path})"


def address_conflicts(sockets: list[tuple[Unit, SocketSection]]) -> list[Conflict]:
    """Two binds the kernel would refuse (or that would silently share an address), then
    proxies whose target is a listener: in the order the sockets are given."""
    found: list[Conflict] = []
    listeners = _Listeners()
    memo: dict[tuple[str, bool], list[tuple[str, str]]] = {}
    for unit, section in sockets:
        ipv6_only = section.bind_ipv6_only == "ipv6-only"
        for directive, addresses in (
            ("ListenStream", section.listen_stream),
            ("ListenDatagram", section.listen_datagram),
        ):
            for address in addresses:
                number = len(listeners.units)
                listeners.units.append(unit)
                listeners.directives.append(directive)
                listeners.addresses.append(address)
                clashes: list[int] = []
                for bucket, scope in _bind_keys(directive, address, ipv6_only, memo):
                    if scope == _ANY:
                        clashes += listeners.by_bucket.get(bucket)
                    else:
                        clashes += listeners.by_scope.get(bucket + _SEP + scope)
                        clashes += listeners.by_scope.get(bucket + _SEP + _ANY)
                    listeners.by_bucket.add(bucket, number)
                    listeners.by_scope.add(bucket + _SEP + scope, number)
                if not clashes:
                    continue
                for other in sorted(set(clashes) - {number}):
                    message = (
                        f"{listeners.describe(number)} conflicts with "
                        f"{listeners.whose(other, unit)}: both would bind the same address"
                    )
                    found.append((unit, directive, message))
    _check_proxies(sockets, listeners, found)
    return found


def _connect_scopes(target: ListenAddress) -> list[tuple[str, str, bool]]:
    """(family, address, is loopback) a TCP connect to `target` reaches; host names reach none."""
    host = target.host
    if host in ("", "localhost"):
        return [("4", "127.0.0.1", True), ("6", "::1", True)]
    import ipaddress  # only proxy targets with a host need it: off the boot path

    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return []  # a name to resolve: no I/O here
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.is_unspecified:
            return [("6", "::1", True)]  # connecting to :: reaches the local host
    if isinstance(ip, ipaddress.IPv4Address):
        if ip.is_unspecified:
            return [("4", "127.0.0.1", True)]
        return [("4", str(ip), ip.is_loopback)]
    return [("6", str(ip), ip.is_loopback)]


def _check_proxies(
    sockets: list[tuple[Unit, SocketSection]], listeners: _Listeners, found: list[Conflict]
) -> None:
    """A proxy whose target is an address cinit listens on would connect to itself."""
    for unit, section in sockets:
        target = section.proxy_target
        if section.activation_mode is not ActivationMode.PROXY or target is None:
            continue
        reached: list[int] = []
        if target.kind is ListenKind.INET:
            for family, address, loopback in _connect_scopes(target):
                bucket = _inet_bucket("ListenStream", target.port, family)
                reached += listeners.by_scope.get(bucket + _SEP + address)
                # A listener on every address catches loopback connections too.
                if loopback:
                    reached += listeners.by_scope.get(bucket + _SEP + _ANY)
        elif target.kind is ListenKind.UNIX:
            reached += listeners.by_bucket.get(_unix_bucket(target.path))
        else:
            reached += listeners.by_bucket.get(_abstract_bucket("ListenStream", target.path))
        for number in sorted(set(reached)):
            if listeners.directives[number] != "ListenStream":
                continue  # a stream connect cannot reach a datagram socket
            if listeners.units[number] is unit:
                whose = "its own public address"
            else:
                other = listeners.units[number]
                whose = f"a public address of {other.name} ({other.path})"
            message = (
                f"ProxyTarget={target.render()} is {listeners.describe(number)}, {whose}: "
                "the proxy would connect to a socket cinit listens on instead of its service"
            )
            found.append((unit, "ProxyTarget", message))
