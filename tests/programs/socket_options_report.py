"""A socket-activated service that reports the options of the listeners it inherited.

For each fd from 3 up to 3 + $LISTEN_FDS: one line `fd N KEY=VALUE ...` with SO_PASSCRED,
SO_PASSSEC, SO_RCVBUF, SO_SNDBUF, SO_TYPE and SO_PROTOCOL read with getsockopt, then
writes the file named by its first argument (the test's "done" marker) and exits.
"""

from __future__ import annotations

import os
import socket
import sys

SO_PASSSEC = getattr(socket, "SO_PASSSEC", 34)


def main() -> None:
    count = int(os.environ.get("LISTEN_FDS", "0"))
    for fd in range(3, 3 + count):
        sock = socket.socket(fileno=fd)
        try:
            opts = {
                "passcred": sock.getsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED),
                "passsec": sock.getsockopt(socket.SOL_SOCKET, SO_PASSSEC),
                "rcvbuf": sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
                "sndbuf": sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
                "type": sock.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE),
                "protocol": sock.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL),
            }
        finally:
            sock.detach()
        print(f"fd {fd} " + " ".join(f"{k}={v}" for k, v in opts.items()), flush=True)
    with open(sys.argv[1], "w") as done:
        done.write("done\n")


if __name__ == "__main__":
    main()
