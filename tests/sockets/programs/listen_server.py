"""A socket-activated test service: takes its listeners the sd_listen_fds way and serves.

It checks LISTEN_PID against its own pid and LISTEN_FDS, writes a JSON report (its pid, the
fds open in /proc/self/fd, LISTEN_* and REMOTE_* variables, the flags of fd 3) to --report,
then answers each connection on every inherited stream listener with
`<greeting> <pid>\\n` and closes it. --exit-after N: exit after N connections (status
--exit-status); --accept-mode connection: fd 3 is one accepted connection (Accept=yes).
Stdlib only (runs with -I -S).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import select
import socket
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--report", required=True)
    parser.add_argument("--greeting", default="hello")
    parser.add_argument("--exit-after", type=int, default=0)
    parser.add_argument("--exit-status", type=int, default=0)
    parser.add_argument("--start-delay", type=float, default=0.0)
    parser.add_argument("--connection", action="store_true")
    args = parser.parse_args()
    if args.start_delay:
        time.sleep(args.start_delay)
    pid = os.getpid()
    count = int(os.environ.get("LISTEN_FDS", "0"))
    fds = sorted(int(name) for name in os.listdir("/proc/self/fd"))
    report = {
        "pid": pid,
        "fds": fds,
        "listen_pid": os.environ.get("LISTEN_PID"),
        "listen_fds": os.environ.get("LISTEN_FDS"),
        "listen_fdnames": os.environ.get("LISTEN_FDNAMES"),
        "remote_addr": os.environ.get("REMOTE_ADDR"),
        "remote_port": os.environ.get("REMOTE_PORT"),
        "cloexec": [
            bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC) for fd in range(3, 3 + count)
        ],
        "nonblock": [
            bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK) for fd in range(3, 3 + count)
        ],
    }
    # /proc/self/fd listed through an fd of its own: drop that one
    report["fds"] = [fd for fd in fds if os.path.exists(f"/proc/self/fd/{fd}")]
    with open(args.report + ".tmp", "w") as f:
        json.dump(report, f)
    os.rename(args.report + ".tmp", args.report)
    if os.environ.get("LISTEN_PID") != str(pid) or count < 1:
        print(f"listen_server: bad LISTEN_PID/LISTEN_FDS: {report}", file=sys.stderr)
        return 3
    if args.connection:
        conn = socket.socket(fileno=3)
        conn.sendall(f"{args.greeting} {pid}\n".encode())
        conn.close()
        return int(args.exit_status)
    listeners = [socket.socket(fileno=fd) for fd in range(3, 3 + count)]
    served = 0
    while True:
        ready, _, _ = select.select(listeners, [], [])
        for listener in ready:
            if listener.type != socket.SOCK_STREAM:
                _, peer = listener.recvfrom(4096)
                listener.sendto(f"{args.greeting} {pid}\n".encode(), peer)
            else:
                conn, _ = listener.accept()
                conn.sendall(f"{args.greeting} {pid}\n".encode())
                conn.close()
            served += 1
            if args.exit_after and served >= args.exit_after:
                return int(args.exit_status)


if __name__ == "__main__":
    sys.exit(main())
