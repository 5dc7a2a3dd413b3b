"""A small real server to put behind cinit's proxy (stdlib only, one thread per connection).

Usage: proxy_backend.py (--tcp HOST:PORT | --unix PATH) [--record DIR] [--ready FILE]

The first line a client sends picks what the connection does:
  ECHO            every following byte is echoed back; at the client's end of stream the
                  server flushes and closes (so EOF reaching the client proves the client's
                  shutdown(SHUT_WR) reached the server).
  COUNT           the server reads to the client's end of stream, then answers
                  "<byte count> <sha256 hex>\\n" and closes (half-close client -> server,
                  the answer flowing after it).
  SPEAK N TAG     the server sends N pattern bytes and shuts down its sending side, then reads
                  to the client's end of stream and writes "<count> <sha256>" to DIR/TAG
                  (half-close server -> client, the client's bytes flowing after it).
  RESET           the server resets the connection (SO_LINGER 0, close).
  WATCH TAG       like ECHO, but writes "reset" or "eof" to DIR/TAG when the client's side ends.
`--ready FILE` gets the bound port (or `unix`) once the server listens. SO_REUSEADDR lets a
restart take the port.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import struct
import sys
import threading


def pattern(size: int) -> bytes:
    block = bytes(range(256))
    return (block * (size // 256 + 1))[:size]


def read_line(conn: socket.socket) -> tuple[str, bytes]:
    data = b""
    while b"\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    line, _, rest = data.partition(b"\n")
    return line.decode(), rest


def drain(conn: socket.socket, first: bytes) -> tuple[int, str]:
    digest = hashlib.sha256(first)
    count = len(first)
    while True:
        chunk = conn.recv(1 << 16)
        if not chunk:
            return count, digest.hexdigest()
        digest.update(chunk)
        count += len(chunk)


def record(directory: str, tag: str, text: str) -> None:
    path = os.path.join(directory, tag)
    with open(path + ".tmp", "w") as out:
        out.write(text)
    os.replace(path + ".tmp", path)


def echo(conn: socket.socket, first: bytes) -> None:
    if first:
        conn.sendall(first)
    while True:
        chunk = conn.recv(1 << 16)
        if not chunk:
            return
        conn.sendall(chunk)


def serve(conn: socket.socket, record_dir: str) -> None:
    with conn:
        try:
            line, rest = read_line(conn)
            words = line.split()
            command = words[0] if words else ""
            if command == "ECHO":
                echo(conn, rest)
            elif command == "COUNT":
                count, digest = drain(conn, rest)
                conn.sendall(f"{count} {digest}\n".encode())
            elif command == "SPEAK":
                conn.sendall(pattern(int(words[1])))
                conn.shutdown(socket.SHUT_WR)
                count, digest = drain(conn, rest)
                record(record_dir, words[2], f"{count} {digest}")
            elif command == "RESET":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif command == "WATCH":
                try:
                    echo(conn, rest)
                    record(record_dir, words[1], "eof")
                except ConnectionResetError:
                    record(record_dir, words[1], "reset")
        except OSError:
            pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tcp")
    parser.add_argument("--unix")
    parser.add_argument("--record", default=".")
    parser.add_argument("--ready")
    args = parser.parse_args()
    if args.unix:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(args.unix):
            os.unlink(args.unix)
        server.bind(args.unix)
    else:
        host, _, port = args.tcp.rpartition(":")
        server = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((host.strip("[]"), int(port)))
    server.listen(4096)
    if args.ready:  # the port bound (port 0 picks one), or "unix"
        port_text = "unix" if args.unix else str(server.getsockname()[1])
        record(os.path.dirname(args.ready) or ".", os.path.basename(args.ready), port_text)
    threading.stack_size(256 * 1024)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn, args.record), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
