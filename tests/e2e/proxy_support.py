"""Helpers of the proxy end-to-end tests: an unmodified nginx-light serving files, raw HTTP
clients, fd counts. nginx runs in the foreground as one process (`master_process off`), so
SIGKILL of its pid is the death of the whole server."""

from __future__ import annotations

import gc
import os
import shutil
import socket
import textwrap
from pathlib import Path

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_missing() -> str | None:
    """Why nginx cannot be used here, or None."""
    if not os.access(NGINX, os.X_OK):
        return "needs nginx (apt package nginx-light, installed by .ci/run)"
    return None


def nginx_site(root: Path, listen: str, files: dict[str, bytes]) -> list[str]:
    """Write an nginx prefix under `root` serving `files` on `listen` (nginx's `listen`
    syntax: `127.0.0.1:8080` or `unix:/path`); the argv that runs it in the foreground."""
    html = root / "html"
    html.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (html / name).write_bytes(body)
    conf = root / "nginx.conf"
    conf.write_text(
        textwrap.dedent(f"""
            user root;
            daemon off;
            master_process off;
            worker_processes 1;
            pid {root}/nginx.pid;
            error_log {root}/error.log;
            events {{ worker_connections 4096; }}
            http {{
                access_log off;
                client_body_temp_path {root}/body;
                proxy_temp_path {root}/proxy;
                fastcgi_temp_path {root}/fastcgi;
                uwsgi_temp_path {root}/uwsgi;
                scgi_temp_path {root}/scgi;
                server {{
                    listen {listen} backlog=4096;
                    root {html};
                }}
            }}
        """).lstrip()
    )
    return [NGINX, "-c", str(conf), "-p", str(root)]


def http_get(address: tuple[str, int], path: str, timeout: float = 20.0) -> tuple[int, bytes]:
    """One `GET path` with `Connection: close`: (status, body), read to the server's EOF."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(1 << 16):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, body


def fd_count(pid: int | str = "self") -> int:
    """Open fds of `pid`; of this process after collecting garbage (stray sockets)."""
    if pid == "self":
        gc.collect()
    return len(os.listdir(f"/proc/{pid}/fd"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
