"""A control request without pyzmq: ZMTP 3.0 (NULL mechanism) as a REQ, by hand.

`cinit is-ready` is a Kubernetes exec probe, run every few seconds: importing pyzmq alone
costs ~35 ms of a 60 ms budget. A REQ's side of one request/reply exchange with the control
ROUTER is small (ZMTP 3.0, rfc.zeromq.org/spec/23): a 64-byte greeting each way, a READY
command each way, then frames [empty delimiter, body]. This module speaks exactly that
over the ipc endpoint's unix socket, with the standard library only.

Errors are `ControlError`s with a message for the user and the `reason`: "absent" (no
socket: cinit is not running here; also a socket in a directory another user could
change, where cinit never listens: whoever does is not cinit), "denied" (not root / not
cinit's user), "broken" (the peer misbehaved or timed out). The directory is checked
(`cinit.io.runtime.check_trusted_dir`) before connecting.
"""

from __future__ import annotations

import _json  # the C codec: `json` costs ~5 ms of imports (re, enum) on every probe
import _socket  # the C module: `socket` costs ~5 ms of imports (enum, selectors)
import struct

from cinit.boot_path import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

_SIGNATURE = b"\xff" + b"\x00" * 8 + b"\x7f"
_GREETING = _SIGNATURE + b"\x03\x01" + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31
_MORE, _LONG, _COMMAND = 0x01, 0x02, 0x04


class ControlError(Exception):
    """The request could not be made; `reason` is absent, denied or broken."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _frame(body: bytes, flags: int = 0) -> bytes:
    if len(body) > 255:
        return bytes([flags | _LONG]) + struct.pack(">Q", len(body)) + body
    return bytes([flags, len(body)]) + body


def _ready_command() -> bytes:
    name, value = b"Socket-Type", b"REQ"
    body = b"\x05READY" + bytes([len(name)]) + name + struct.pack(">I", len(value)) + value
    return _frame(body, _COMMAND)


class _Reader:
    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ControlError("cinit closed the control connection", "broken")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def frame(self) -> tuple[int, bytes]:
        flags = self.exactly(1)[0]
        size = struct.unpack(">Q", self.exactly(8))[0] if flags & _LONG else self.exactly(1)[0]
        if size > 16 * 1024 * 1024:
            raise ControlError("control reply too large", "broken")
        return flags, self.exactly(size)


def endpoint_path(endpoint: str) -> str:
    if not endpoint.startswith("ipc://"):
        raise ControlError(f"control endpoint {endpoint} is not ipc://", "broken")
    return endpoint[len("ipc://") :]


def _not_running(path: str) -> ControlError:
    return ControlError(f"cinit is not running (no control socket at {path})", "absent")


def _denied(path: str) -> ControlError:
    message = f"permission denied on {path}: only root (cinit's user) may control cinit"
    return ControlError(message, "denied")


def _check_directory(path: str) -> None:
    """Refuse a socket that another user could have put there (see the module doc)."""
    from cinit.io.runtime import UntrustedDirectory, check_trusted_dir

    directory = path.rpartition("/")[0] or "."
    try:
        check_trusted_dir(directory)
    except UntrustedDirectory as exc:
        raise ControlError(
            f"refusing the control socket {path}: {exc}; cinit never listens there", "absent"
        ) from None
    except FileNotFoundError:
        raise _not_running(path) from None
    except PermissionError:
        raise _denied(path) from None
    except OSError as exc:
        raise ControlError(f"cannot use the control socket {path}: {exc}", "broken") from None


def request(path: str, message: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Send `message` to the control socket at `path`; the decoded reply."""
    _check_directory(path)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            raise _not_running(path) from None
        except PermissionError:
            raise _denied(path) from None
        sock.sendall(_GREETING + _ready_command())
        reader = _Reader(sock)
        greeting = reader.exactly(64)
        if greeting[:1] != b"\xff" or greeting[9:10] != b"\x7f" or greeting[10] < 3:
            raise ControlError(f"{path} does not speak ZMTP 3", "broken")
        # libzmq takes messages only after the handshake: wait for its READY first.
        flags, data = reader.frame()
        if not flags & _COMMAND or data[1:6] != b"READY":
            raise ControlError("cinit refused the control connection", "broken")
        body = encode_json(message).encode()
        sock.sendall(_frame(b"", _MORE) + _frame(body))
        parts: list[bytes] = []
        while True:
            flags, data = reader.frame()
            if flags & _COMMAND:
                continue  # a heartbeat: nothing to do for one exchange
            parts.append(data)
            if not flags & _MORE:
                break
        reply = decode_json(parts[-1].decode())
    except TimeoutError:
        raise ControlError(f"no answer from cinit within {timeout:g}s", "broken") from None
    except (OSError, ValueError) as exc:
        raise ControlError(f"control request failed: {exc}", "broken") from None
    finally:
        sock.close()
    if not isinstance(reply, dict):
        raise ControlError("malformed control reply", "broken")
    return reply


class _DecoderSettings:
    """The settings `_json.make_scanner` reads: json.JSONDecoder's defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": -float("inf"), "Infinity": float("inf"), "NaN": float("nan")}.get
    memo: dict[str, str] = {}


_scan = _json.make_scanner(_DecoderSettings())  # type: ignore[arg-type]  # duck-typed settings
_WHITESPACE = " \t\n\r"


def decode_json(text: str) -> Any:
    """`json.loads(text)` through the C scanner alone (ValueError when it is not JSON)."""
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration:
        raise ValueError(f"not JSON at offset {start}") from None
    finally:
        _DecoderSettings.memo.clear()
    if text[end:].strip(_WHITESPACE):
        raise ValueError(f"extra data at offset {end}")
    return value


def _unencodable(value: object) -> object:
    raise TypeError(f"cannot send {type(value).__name__} in a control request")


_encode = _json.make_encoder(
    {}, _unencodable, _json.encode_basestring_ascii, None, ": ", ", ", False, False, True
)


def encode_json(value: object) -> str:
    """`json.dumps(value)` through the C encoder alone."""
    return "".join(_encode(value, 0))
