"""Helpers of the socket activation tests (tests/e2e/test_sockets_*.py).

Services are observed from outside the PID namespace: `namespace_processes` maps each
process of a booted cinit's namespace (found through the unshare process's descendants and
the `NSpid:` line of /proc/<pid>/status) to its pid inside the namespace, so a test reads the
service's real fd table (/proc/<host pid>/fd) and environment (/proc/<host pid>/environ).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from e2e_support import PYTHON, TESTS

SOCKET_PROGRAMS = TESTS / "sockets" / "programs"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (and on ::)."""
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        probe.bind(("::", 0))
        return int(probe.getsockname()[1])


def listen_server(report: Path, *args: object) -> str:
    """ExecStart= of tests/sockets/programs/listen_server.py."""
    words = [PYTHON, "-I", "-S", str(SOCKET_PROGRAMS / "listen_server.py"), "--report", str(report)]
    return " ".join([*words, *(str(a) for a in args)])


@dataclass
class NsProcess:
    host_pid: int
    ns_pid: int
    argv: list[str]

    def fds(self) -> list[int]:
        return sorted(int(fd) for fd in os.listdir(f"/proc/{self.host_pid}/fd"))

    def environ(self) -> dict[str, str]:
        raw = Path(f"/proc/{self.host_pid}/environ").read_bytes()
        pairs = [item.partition(b"=") for item in raw.split(b"\0") if item]
        return {k.decode(): v.decode(errors="replace") for k, _, v in pairs}


def namespace_processes(unshare_pid: int) -> list[NsProcess]:
    """Every live process under the unshare process, with its pid in the namespace."""
    found = []
    try:
        children = psutil.Process(unshare_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    for child in children:
        with contextlib.suppress(OSError, psutil.Error):
            status = Path(f"/proc/{child.pid}/status").read_text()
            nspid = next(line for line in status.splitlines() if line.startswith("NSpid:"))
            found.append(NsProcess(child.pid, int(nspid.split()[-1]), child.cmdline()))
    return found


def find_process(unshare_pid: int, needle: str, timeout: float = 10.0) -> NsProcess:
    """The one namespace process whose argv contains `needle` (waits for it)."""
    deadline = time.monotonic() + timeout
    while True:
        matches = [p for p in namespace_processes(unshare_pid) if needle in " ".join(p.argv)]
        if len(matches) == 1:
            return matches[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"expected one process running {needle!r}, found {matches}")
        time.sleep(0.02)


def running(unshare_pid: int, needle: str) -> list[NsProcess]:
    return [p for p in namespace_processes(unshare_pid) if needle in " ".join(p.argv)]


def fetch(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> bytes:
    """Connect, read until the server closes, return what it sent."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as client:
        client.settimeout(timeout)
        client.connect((host, port))
        chunks: list[bytes] = []
        while True:
            data = client.recv(4096)
            if not data:
                return b"".join(chunks)
            chunks.append(data)


def fetch_unix(path: str, timeout: float = 10.0) -> bytes:
    """Read everything the listener at `path` sends. The node appears at bind(), a moment
    before listen() (as under systemd): a refused connect in that moment is tried again."""
    deadline = time.monotonic() + timeout
    while True:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.settimeout(timeout)
        try:
            client.connect(path)
            break
        except ConnectionRefusedError:
            client.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    with client:
        chunks: list[bytes] = []
        while True:
            data = client.recv(4096)
            if not data:
                return b"".join(chunks)
            chunks.append(data)


def tcp_listening(port: int) -> bool:
    """Whether something listens on TCP `port` (any address), without connecting to it."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state = fields[1], fields[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    return True
    return False


def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not tcp_listening(port):
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing listens on port {port} after {timeout} s")
        time.sleep(0.01)
