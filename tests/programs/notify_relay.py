#!/usr/bin/env python3
"""Receive sd_notify datagrams for a shell script: one line on a FIFO per READY=1.

usage: notify_relay.py SOCKET FIFO

Binds the AF_UNIX datagram socket SOCKET (the services' NOTIFY_SOCKET), then opens FIFO
for writing (blocking until the script opens it for reading; datagrams wait in the socket
meanwhile) and writes `ready` + newline to it for every datagram that holds READY=1.
Used by bench/boot.py's shell floor, which cannot read datagrams itself; it runs until
killed.
"""

from __future__ import annotations

import os
import socket
import sys


def main() -> int:
    path, fifo = sys.argv[1], sys.argv[2]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    out = os.open(fifo, os.O_WRONLY)
    while True:
        message = sock.recv(4096)
        if b"READY=1" in message.split(b"\n"):
            os.write(out, b"ready\n")


if __name__ == "__main__":
    sys.exit(main())
