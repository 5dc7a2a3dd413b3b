"""Socket addresses: `ListenStream=`/`ListenDatagram=` values and `ProxyTarget=`.

Parsers raise only `ValueFormError`, with the offending value quoted. `_socket` is imported
lazily to keep validate's start-up cheap.
"""

from __future__ import annotations

from cinit.units._text import (
    LazyPattern,
    check_no_nul,
    fs_length,
    quoted,
    strip_ws,
)
from cinit.units.diagnostics import ValueFormError
from cinit.units.model import (
    ListenAddress,
    ListenKind,
)

# --- socket addresses ---------------------------------------------------------------------

_SUN_PATH_MAX = 107  # sun_path is 108 bytes; systemd keeps room for the terminating NUL
_IPV4_CHARS = LazyPattern(r"[0-9.]+")
_IPV6_CHARS = LazyPattern(r"[0-9A-Fa-f:.]+")
_HOST_NAME = LazyPattern(
    r"(?a)"  # re.ASCII
    r"(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
    r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?"
)


def _canonical_ip(host: str, version: int) -> str | None:
    """`host` in canonical form if it is a numeric IPv4/IPv6 address, else None."""
    import _socket  # lazy, and not `socket`: that module builds enums on import

    pattern = _IPV4_CHARS if version == 4 else _IPV6_CHARS
    if not pattern.fullmatch(host):
        return None
    family = _socket.AF_INET if version == 4 else _socket.AF_INET6
    try:
        return _socket.inet_ntop(family, _socket.inet_pton(family, host))
    except OSError:
        return None


def _parse_port(port: str, text: str, what: str) -> int:
    if not (port.isascii() and port.isdigit()):
        raise ValueFormError(f"invalid {what} {quoted(text)}: port {quoted(port)} is not a number")
    number = int(port) if len(port) < 8 else 0
    if not 1 <= number <= 65535:
        raise ValueFormError(
            f"invalid {what} {quoted(text)}: port {quoted(port)} is not in 1..65535"
        )
    return number


def _unix_address(path: str, text: str, what: str) -> ListenAddress:
    """A file-system socket path: absolute, normalized ("//" and "/./" collapse), no "..",
    short enough for sun_path."""
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ValueFormError(f"invalid {what} {quoted(text)}: socket path must not contain '..'")
    if not parts:
        raise ValueFormError(f"invalid {what} {quoted(text)}: socket path names a directory")
    normalized = "/" + "/".join(parts)
    if fs_length(normalized) > _SUN_PATH_MAX:
        raise ValueFormError(
            f"invalid {what} {quoted(text)}: socket path longer than {_SUN_PATH_MAX} bytes"
        )
    return ListenAddress(ListenKind.UNIX, path=normalized)


def _abstract_address(name: str, text: str, what: str) -> ListenAddress:
    if not name:
        raise ValueFormError(f"invalid {what} {quoted(text)}: abstract socket name is empty")
    if fs_length(name) + 1 > _SUN_PATH_MAX:
        raise ValueFormError(
            f"invalid {what} {quoted(text)}: abstract socket name longer than "
            f"{_SUN_PATH_MAX - 1} bytes"
        )
    return ListenAddress(ListenKind.ABSTRACT, path=name)


def _split_bracketed(text: str, value: str, what: str) -> tuple[str, int]:
    """`[V6ADDR]:PORT` -> (canonical address, port)."""
    close = value.find("]")
    if close < 0 or not value.startswith(":", close + 1):
        raise ValueFormError(f"invalid {what} {quoted(text)}: expected [IPV6ADDRESS]:PORT")
    host = _canonical_ip(value[1:close], 6)
    if host is None:
        raise ValueFormError(
            f"invalid {what} {quoted(text)}: {quoted(value[1:close])} is not an IPv6 address"
        )
    return host, _parse_port(value[close + 2 :], text, what)


def parse_listen_address(text: str) -> ListenAddress:
    """ListenStream=/ListenDatagram=: `PORT` (any address, dual stack), `IPV4:PORT`,
    `[IPV6]:PORT`, `/unix/path` or `@abstract`.

    Addresses must be numeric (host names are refused, as systemd does) and are stored in
    canonical form (`[0:0::1]` becomes `::1`); the port is 1..65535. Unix paths must be
    absolute, are normalized and must fit sun_path (107 bytes).
    """
    what = "listen address"
    value = strip_ws(text)
    check_no_nul(value, what)
    if value.startswith("/"):
        return _unix_address(value, text, what)
    if value.startswith("@"):
        return _abstract_address(value[1:], text, what)
    if value.startswith("["):
        host, port = _split_bracketed(text, value, what)
        return ListenAddress(ListenKind.INET, host=host, port=port)
    if value.isascii() and value.isdigit():
        return ListenAddress(ListenKind.INET, port=_parse_port(value, text, what))
    host, colon, port_text = value.rpartition(":")
    if not colon:
        raise ValueFormError(
            f"invalid {what} {quoted(text)}: "
            "expected PORT, ADDRESS:PORT, [IPV6]:PORT, /path or @name"
        )
    if ":" in host:
        raise ValueFormError(
            f"invalid {what} {quoted(text)}: write IPv6 addresses as [ADDRESS]:PORT"
        )
    canonical = _canonical_ip(host, 4)
    if canonical is None:
        raise ValueFormError(
            f"invalid {what} {quoted(text)}: {quoted(host)} is not a numeric IPv4 address "
            "(host names are not allowed here)"
        )
    return ListenAddress(ListenKind.INET, host=canonical, port=_parse_port(port_text, text, what))


def parse_proxy_target(text: str) -> ListenAddress:
    """ProxyTarget=: `HOST:PORT`, `tcp:HOST:PORT`, `[IPV6]:PORT`, `unix:/path`, `/path`,
    `unix:@abstract` or `@abstract`.

    HOST may be a host name (resolved when connecting), an IPv4 address or a bracketed
    IPv6 address; numeric addresses are stored canonically. `ListenAddress.render()` gives
    text this function reads back to an equal value.
    """
    what = "proxy target"
    value = strip_ws(text)
    check_no_nul(value, what)
    if value.startswith("unix:"):
        rest = value[5:]
        if rest.startswith("@"):
            return _abstract_address(rest[1:], text, what)
        if not rest.startswith("/"):
            raise ValueFormError(f"invalid {what} {quoted(text)}: unix: needs an absolute path")
        return _unix_address(rest, text, what)
    if value.startswith("/"):
        return _unix_address(value, text, what)
    if value.startswith("@"):
        return _abstract_address(value[1:], text, what)
    if value.startswith("tcp:"):
        value = value[4:]
    if value.startswith("["):
        host, port = _split_bracketed(text, value, what)
        return ListenAddress(ListenKind.INET, host=host, port=port)
    host, colon, port_text = value.rpartition(":")
    if not colon or not host:
        raise ValueFormError(
            f"invalid {what} {quoted(text)}: expected HOST:PORT, tcp:HOST:PORT, [IPV6]:PORT, "
            "unix:/path, /path or @name"
        )
    if ":" in host:
        raise ValueFormError(
            f"invalid {what} {quoted(text)}: expected HOST:PORT, tcp:HOST:PORT, unix:/path or "
            "/path (write IPv6 addresses as [ADDRESS]:PORT)"
        )
    if _IPV4_CHARS.fullmatch(host):
        canonical = _canonical_ip(host, 4)
        if canonical is None:
            raise ValueFormError(
                f"invalid {what} {quoted(text)}: {quoted(host)} is not an IPv4 address"
            )
        host = canonical
    elif not _HOST_NAME.fullmatch(host):
        raise ValueFormError(
            f"invalid {what} {quoted(text)}: {quoted(host)} is not a valid host name"
        )
    return ListenAddress(ListenKind.INET, host=host, port=_parse_port(port_text, text, what))
