"""Benchmark cinit's proxy relay against systemd-socket-proxyd, side by side in one run.

Run as root from the repository: `python bench/proxy.py [--runs 5] [--bulk-gib 2]
[--wrk-seconds 5]`. Everything runs on loopback; rows:
  direct         clients talk to the server itself (the ceiling);
  cinit-pid1     real cinit as PID 1 (`unshare --pid --fork --mount-proc`, same network
                 namespace) with a `.socket` ActivationMode=proxy whose ProxyTarget= is the
                 server the other rows use (its .service is a placeholder started on demand);
  cinit          cinit's relay engine alone (cinit.io.proxy.ProxyRelay) in a process of its
                 own (this file run with --engine), splice on;
  cinit-copy     the same with splice off (bulk only: what splice buys);
  proxyd         systemd-socket-proxyd --connections-max 4096, extracted from Debian's `systemd`
                 and `libsystemd-shared` packages (`apt-get download` + `dpkg -x` into
                 $CINIT_BENCH_CACHE or ~/.cache/cinit-bench; nothing installed), given its
                 listener at fd 3 with LISTEN_FDS/LISTEN_PID as systemd would.
Measures: one bulk stream (Gbit/s, to a sink that acknowledges the last byte); wrk -t2 -c50
against nginx-light serving a 612-byte file (req/s and p99 latency); half-close correctness
both ways (tests/programs/proxy_backend.py COUNT and SPEAK); 1,000 concurrent connections
echoed byte-exact. Also the relay process's CPU time (utime+stime) per GiB and per request:
steadier than throughput on a shared, noisy machine. Prints medians over --runs (runs
interleaved) and ratios against proxyd. `CINIT_BIN` selects the cinit build.
`--json PATH` also writes the medians, ratios and targets for bench/report.py.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._util import (
    PROGRAMS,
    UNSHARE,
    add_json_option,
    children,
    cinit_command,
    fmt,
    median,
    print_table,
    ratio,
    result_row,
    write_json,
)

HERE = Path(__file__).resolve()
SMALL_FILE = b"<!DOCTYPE html>\n" + b"x" * 596  # 612 bytes, like nginx's default page
BACKLOG = 4096


# --- the servers behind the proxies -------------------------------------------------------------


def sink_main() -> None:
    """--sink: accept streams of `8-byte size + payload`; ack b"done" after the last byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(BACKLOG)
    print(server.getsockname()[1], flush=True)
    buffer = bytearray(4 << 20)

    def serve(conn: socket.socket) -> None:
        with conn:
            header = b""
            while len(header) < 8:
                header += conn.recv(8 - len(header))
            left = int.from_bytes(header, "big")
            while left:
                got = conn.recv_into(buffer, min(left, len(buffer)))
                if not got:
                    return
                left -= got
            conn.sendall(b"done")

    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def engine_main(target: str, splice: bool) -> None:
    """--engine TARGET: cinit's relay on 127.0.0.1:<port 0>, printing the port; until killed."""
    from cinit.io.proxy import ProxyRelay
    from cinit.units.addresses import parse_proxy_target

    _raise_nofile()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(BACKLOG)
    relay = ProxyRelay(
        "bench.socket",
        [listener],
        parse_proxy_target(target),
        on_demand=lambda: None,
        on_give_up=lambda reason: print(reason, file=sys.stderr),
        connect_timeout=10,
        use_splice=splice,
    )
    relay.start()
    print(listener.getsockname()[1], flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    relay.stop()


@dataclass
class Server:
    """A process serving on 127.0.0.1:port (or the direct row's stand-in with no process)."""

    name: str
    port: int
    proc: subprocess.Popen[bytes] | None = None
    cpu_pid: int | None = None  # whose CPU time is the relay's (default: proc's)
    workdir: Path | None = None

    def stop(self) -> None:
        if self.cpu_pid is not None and self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(OSError):
                os.kill(self.cpu_pid, signal.SIGTERM)  # cinit as PID 1: its orderly shutdown
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(15)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _port_from_stdout(proc: subprocess.Popen[bytes]) -> int:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.strip():
        raise RuntimeError(f"{proc.args!r} did not start (exit {proc.wait(10)})")
    return int(line)


def start_sink() -> Server:
    proc = subprocess.Popen([sys.executable, str(HERE), "--sink"], stdout=subprocess.PIPE)
    return Server("sink", _port_from_stdout(proc), proc)


def start_backend(workdir: Path) -> Server:
    ready = workdir / "backend-ready"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-I",
            "-S",
            str(PROGRAMS / "proxy_backend.py"),
            "--tcp",
            "127.0.0.1:0",
            "--record",
            str(workdir),
            "--ready",
            str(ready),
        ]
    )
    deadline = time.monotonic() + 10
    while not ready.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("proxy_backend.py did not start")
        time.sleep(0.01)
    return Server("backend", int(ready.read_text()), proc)


def start_nginx(workdir: Path) -> Server:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    root = workdir / "nginx"
    (root / "html").mkdir(parents=True, exist_ok=True)
    (root / "html" / "small.html").write_bytes(SMALL_FILE)
    port = _free_port()
    conf = root / "nginx.conf"
    conf.write_text(
        textwrap.dedent(f"""
        user root;
        worker_processes 1;
        daemon off;
        pid {root}/nginx.pid;
        error_log {root}/error.log;
        events {{ worker_connections 8192; }}
        http {{
            access_log off;
            keepalive_requests 1000000;
            client_body_temp_path {root}/body;
            proxy_temp_path {root}/proxy;
            fastcgi_temp_path {root}/fastcgi;
            uwsgi_temp_path {root}/uwsgi;
            scgi_temp_path {root}/scgi;
            server {{
                listen 127.0.0.1:{port} backlog={BACKLOG};
                root {root}/html;
            }}
        }}
    """)
    )
    proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(root)])
    _wait_port(port, proc)
    return Server("nginx", port, proc)


# --- the proxies --------------------------------------------------------------------------------


def start_engine(target_port: int, splice: bool) -> Server:
    argv = [sys.executable, str(HERE), "--engine", f"127.0.0.1:{target_port}"]
    if not splice:
        argv.append("--no-splice")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE)
    return Server("cinit" if splice else "cinit-copy", _port_from_stdout(proc), proc)


def start_cinit_pid1(target_port: int) -> Server:
    """cinit as PID 1 of a new PID namespace (same network namespace) with one proxy socket
    to the target; its service is a placeholder (the target already runs), started by the
    first connection as a proxied service would be."""
    workdir = Path(tempfile.mkdtemp(prefix="cinit-bench-pid1-"))
    units = workdir / "units"
    units.mkdir()
    port = _free_port()
    (units / "bench.socket").write_text(
        f"[Socket]\nListenStream=127.0.0.1:{port}\nActivationMode=proxy\n"
        f"ProxyTarget=127.0.0.1:{target_port}\n"
    )
    (units / "bench.service").write_text("[Service]\nExecStart=/bin/sleep infinity\n")
    argv = [
        *UNSHARE, *cinit_command(), "--units", str(units), "--drop-in", str(workdir / "none"),
        "--runtime-dir", str(workdir / "run"),
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not (found := children(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.01)
    server = Server("cinit-pid1", port, proc, found[0] if found else None, workdir)
    _wait_port(port, proc)
    return server


def proxyd_binary() -> tuple[Path, Path]:
    """(systemd-socket-proxyd, its library dir), extracted once into the cache dir."""
    cache = Path(os.environ.get("CINIT_BENCH_CACHE", Path.home() / ".cache" / "cinit-bench"))
    tree = cache / "systemd-root"
    binary = tree / "lib" / "systemd" / "systemd-socket-proxyd"
    libdir = tree / "usr" / "lib" / "x86_64-linux-gnu" / "systemd"
    if not binary.exists():
        downloads = cache / "debs"
        downloads.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["apt-get", "download", "-q", "systemd", "libsystemd-shared"],
            cwd=downloads,
            check=True,
            capture_output=True,
        )
        for deb in sorted(downloads.glob("*.deb")):
            subprocess.run(["dpkg", "-x", str(deb), str(tree)], check=True)
    found = list(tree.glob("usr/lib/*/systemd/libsystemd-shared-*.so"))
    return binary, found[0].parent if found else libdir


def start_proxyd(target_port: int) -> Server:
    binary, libdir = proxyd_binary()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(BACKLOG)
    fd = listener.fileno()
    env = dict(os.environ, LD_LIBRARY_PATH=str(libdir), LISTEN_FDS="1")
    # LISTEN_PID must be proxyd's own pid: the shell's $$, kept across its exec.
    proc = subprocess.Popen(
        [
            "/bin/sh",
            "-c",
            'LISTEN_PID=$$ exec "$@"',
            "sh",
            str(binary),
            "--connections-max",
            "4096",
            f"127.0.0.1:{target_port}",
        ],
        env=env,
        close_fds=False,
        preexec_fn=lambda: os.dup2(fd, 3),
    )
    port = listener.getsockname()[1]
    listener.close()
    return Server("proxyd", port, proc)


# --- measurements -------------------------------------------------------------------------------


def bulk_gbps(port: int, size: int) -> float | None:
    """One stream of `size` bytes to the sink through `port`: Gbit/s to the sink's ack."""
    chunk = memoryview(os.urandom(4 << 20))
    try:
        started = time.perf_counter()
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(size.to_bytes(8, "big"))
            left = size
            while left:
                step = min(left, len(chunk))
                sock.sendall(chunk[:step])
                left -= step
            if sock.recv(4) != b"done":
                return None
        return size * 8 / (time.perf_counter() - started) / 1e9
    except OSError:
        return None


_LATENCY = re.compile(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)


def wrk_run(port: int, seconds: float) -> tuple[float | None, float | None, int, int]:
    """wrk -t2 -c50 for `seconds`: (req/s, p99 ms, non-2xx or socket errors, requests)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None, None, 0, 0
    result = subprocess.run(
        [
            wrk,
            "-t2",
            "-c50",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            f"http://127.0.0.1:{port}/small.html",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    rate = _RATE.search(result.stdout)
    p99 = _LATENCY.search(result.stdout)
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", result.stdout))
    errors += sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", result.stdout))
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    done = re.search(r"^\s*(\d+) requests in", result.stdout, re.MULTILINE)
    return (
        float(rate.group(1)) if rate else None,
        float(p99.group(1)) * scale[p99.group(2)] if p99 else None,
        errors,
        int(done.group(1)) if done else 0,
    )


def _recv_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def half_close_client_to_target(port: int) -> bool:
    """Client shuts down its sending side; the server answers after seeing that EOF."""
    payload = os.urandom(100_000)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"COUNT\n" + payload)
            sock.shutdown(socket.SHUT_WR)
            answer = _recv_all(sock).decode()
    except OSError:
        return False
    return answer == f"{len(payload)} {hashlib.sha256(payload).hexdigest()}\n"


def half_close_target_to_client(port: int, workdir: Path, tag: str) -> bool:
    """The server shuts down its sending side; the client's bytes still reach it afterwards."""
    after = os.urandom(100_000)
    record = workdir / tag
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(f"SPEAK 10000 {tag}\n".encode())
            if len(_recv_all(sock)) != 10000:
                return False
            sock.sendall(after)
            sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + 5
            while not record.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
    except OSError:
        return False
    return record.exists() and record.read_text() == (
        f"{len(after)} {hashlib.sha256(after).hexdigest()}"
    )


def held_connections(port: int, count: int = 1000) -> tuple[int, float]:
    """Open `count` connections at once, echo a unique payload on each: (exact, seconds)."""
    started = time.perf_counter()
    socks: list[socket.socket] = []
    exact = 0
    try:
        for _ in range(count):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=20))
        payloads = [os.urandom(256) + i.to_bytes(4, "big") for i in range(count)]
        for sock, payload in zip(socks, payloads, strict=True):
            sock.sendall(b"ECHO\n" + payload)
        for sock, payload in zip(socks, payloads, strict=True):
            got = b""
            while len(got) < len(payload):
                chunk = sock.recv(len(payload) - len(got))
                if not chunk:
                    break
                got += chunk
            exact += got == payload
    except OSError:
        pass
    finally:
        for sock in socks:
            sock.close()
    return exact, time.perf_counter() - started


# --- the run ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on port {port}")


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < min(hard, 16384):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 16384), hard))


@contextmanager
def proxies(target: Server, modes: list[str]) -> Iterator[dict[str, Server]]:
    started: dict[str, Server] = {}
    try:
        for mode in modes:
            try:
                if mode == "direct":
                    started[mode] = Server("direct", target.port)
                elif mode == "proxyd":
                    started[mode] = start_proxyd(target.port)
                elif mode == "cinit-pid1":
                    started[mode] = start_cinit_pid1(target.port)
                else:
                    started[mode] = start_engine(target.port, splice=mode == "cinit")
                server = started[mode]
                if server.proc is not None:
                    _wait_port(server.port, server.proc)
            except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
                print(f"  {mode}: not measured: {exc}", file=sys.stderr)
                failed = started.pop(mode, None)
                if failed is not None:
                    failed.stop()
        yield started
    finally:
        for server in started.values():
            server.stop()


def _med(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return median(present) if present else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bulk-gib", type=float, default=2.0)
    parser.add_argument("--wrk-seconds", type=float, default=5.0)
    parser.add_argument(
        "--only", default="bulk,wrk,checks", help="comma list of: bulk, wrk, checks (default all)"
    )
    parser.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine", metavar="TARGET", help=argparse.SUPPRESS)
    parser.add_argument("--no-splice", action="store_true", help=argparse.SUPPRESS)
    add_json_option(parser)
    args = parser.parse_args()
    if args.sink:
        sink_main()
        return
    if args.engine:
        engine_main(args.engine, splice=not args.no_splice)
        return
    _raise_nofile()
    workdir = Path(tempfile.mkdtemp(prefix="cinit-bench-proxy-"))
    runs = max(1, args.runs)
    size = int(args.bulk_gib * (1 << 30))
    print(
        f"bench/proxy: {runs} runs; bulk {args.bulk_gib:g} GiB; wrk -t2 -c50 {args.wrk_seconds:g} s"
    )
    only = set(args.only.split(","))
    bulk: dict[str, list[float | None]] = {}
    cpu: dict[str, list[float | None]] = {}
    req_cpu: dict[str, list[float | None]] = {}
    rate: dict[str, list[float | None]] = {}
    p99: dict[str, list[float | None]] = {}
    errors: dict[str, int] = {}
    half: dict[str, tuple[bool, bool]] = {}
    held: dict[str, tuple[int, float]] = {}
    try:
        if "bulk" in only:
            measure_bulk(bulk, cpu, runs, size)
        has_nginx = shutil.which("nginx") or os.access("/usr/sbin/nginx", os.X_OK)
        if "wrk" in only and not (shutil.which("wrk") and has_nginx):
            print("wrk: not measured: needs wrk and nginx (apt packages wrk, nginx-light)")
        elif "wrk" in only:
            measure_wrk(rate, req_cpu, p99, errors, runs, args.wrk_seconds, workdir)
        if "checks" in only:
            measure_checks(half, held, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(bulk, cpu, rate, req_cpu, p99, errors, half, held)
    write_json(
        args.json, "proxy", json_rows(bulk, cpu, rate, req_cpu, p99, half, held),
        notes=["cinit = cinit as PID 1 with a proxy .socket; relay alone = its relay engine in "
               "a process of its own; proxyd = systemd-socket-proxyd; direct = no proxy"],
        params={"runs": runs, "bulk_gib": args.bulk_gib, "wrk_seconds": args.wrk_seconds},
    )  # fmt: skip


def json_rows(
    bulk: dict[str, list[float | None]],
    cpu: dict[str, list[float | None]],
    rate: dict[str, list[float | None]],
    req_cpu: dict[str, list[float | None]],
    p99: dict[str, list[float | None]],
    half: dict[str, tuple[bool, bool]],
    held: dict[str, tuple[int, float]],
) -> list[dict[str, object]]:
    """Report rows: cinit as PID 1 beside its relay alone, systemd-socket-proxyd and direct."""
    columns = {"cinit": "relay alone", "cinit-copy": "relay, no splice", "proxyd": "proxyd",
               "direct": "direct"}  # fmt: skip
    rows = []
    for metric, unit, values, digits, target, better in (
        ("bulk stream through the proxy", "Gbit/s", bulk, 2, ">= 1.10x proxyd", 1.10),
        ("relay CPU time per GiB (bulk)", "s", cpu, 2, "", None),
        ("wrk -t2 -c50, nginx 612-byte page", "req/s", rate, 0, ">= 1.00x proxyd", 1.00),
        ("  wrk p99 latency", "ms", p99, 2, "<= proxyd", -1.0),
        ("  relay CPU time per request", "µs", req_cpu, 1, "", None),
    ):
        if not values:
            continue
        ours = _med(values.get("cinit-pid1", []))
        peers = {name: _med(values[mode]) for mode, name in columns.items() if mode in values}
        peer = peers.get("proxyd")
        met = None
        if better is not None and ours is not None and peer:
            met = ours <= peer if better < 0 else ours / peer >= better
        rows.append(result_row(metric, unit, ours, peers, ratio_to="proxyd", digits=digits,
                               target=target, met=met))  # fmt: skip
    if "cinit-pid1" in half:
        c2t, t2c = half["cinit-pid1"]
        exact, _ = held.get("cinit-pid1", (0, 0.0))
        peers_half = {n: float(sum(half[mode])) for mode, n in columns.items() if mode in half}
        rows.append(result_row("half-close carried, both directions (of 2)", "", float(c2t + t2c),
                               peers_half, digits=0, target="2", met=c2t and t2c))  # fmt: skip
        peers_held = {name: float(held[mode][0]) for mode, name in columns.items() if mode in held}
        rows.append(result_row("1,000 concurrent connections echoed byte-exact", "",
                               float(exact), peers_held, digits=0, target="1000",
                               met=exact == 1000))  # fmt: skip
    return rows


def cpu_seconds(server: Server) -> float | None:
    """utime + stime of the relaying process so far (all its threads), /proc/<pid>/stat."""
    pid = server.cpu_pid or (server.proc.pid if server.proc is not None else None)
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_bulk(
    bulk: dict[str, list[float | None]], cpu: dict[str, list[float | None]], runs: int, size: int
) -> None:
    sink = start_sink()
    try:
        with proxies(sink, ["direct", "cinit-pid1", "cinit", "cinit-copy", "proxyd"]) as started:
            for _ in range(runs):
                for mode, server in started.items():
                    before = cpu_seconds(server)
                    bulk.setdefault(mode, []).append(bulk_gbps(server.port, size))
                    after = cpu_seconds(server)
                    per_gib = None
                    if before is not None and after is not None:
                        per_gib = (after - before) / (size / (1 << 30))
                    cpu.setdefault(mode, []).append(per_gib)
    finally:
        sink.stop()


def measure_wrk(
    rate: dict[str, list[float | None]],
    cpu_us: dict[str, list[float | None]],
    p99: dict[str, list[float | None]],
    errors: dict[str, int],
    runs: int,
    seconds: float,
    workdir: Path,
) -> None:
    nginx = start_nginx(workdir)
    try:
        with proxies(nginx, ["direct", "cinit-pid1", "cinit", "proxyd"]) as started:
            for _ in range(runs):
                for mode, server in started.items():
                    before = cpu_seconds(server)
                    r, p, e, n = wrk_run(server.port, seconds)
                    after = cpu_seconds(server)
                    if before is not None and after is not None and n:
                        cpu_us.setdefault(mode, []).append((after - before) / n * 1e6)
                    rate.setdefault(mode, []).append(r)
                    p99.setdefault(mode, []).append(p)
                    errors[mode] = errors.get(mode, 0) + e
    finally:
        nginx.stop()


def measure_checks(
    half: dict[str, tuple[bool, bool]], held: dict[str, tuple[int, float]], workdir: Path
) -> None:
    backend = start_backend(workdir)
    try:
        with proxies(backend, ["direct", "cinit-pid1", "cinit", "proxyd"]) as started:
            for mode, server in started.items():
                half[mode] = (
                    half_close_client_to_target(server.port),
                    half_close_target_to_client(server.port, workdir, f"speak-{mode}"),
                )
                held[mode] = held_connections(server.port)
    finally:
        backend.stop()


def report(
    bulk: dict[str, list[float | None]],
    cpu: dict[str, list[float | None]],
    rate: dict[str, list[float | None]],
    req_cpu: dict[str, list[float | None]],
    p99: dict[str, list[float | None]],
    errors: dict[str, int],
    half: dict[str, tuple[bool, bool]],
    held: dict[str, tuple[int, float]],
) -> None:
    def yes(flag: bool) -> str:
        return "yes" if flag else "NO"

    def runs(values: list[float | None]) -> str:
        return " ".join(fmt(x, "", 2) for x in values) or "-"

    peer_bulk = _med(bulk.get("proxyd", []))
    peer_cpu = _med(cpu.get("proxyd", []))
    peer_rate = _med(rate.get("proxyd", []))
    peer_p99 = _med(p99.get("proxyd", []))
    peer_req_cpu = _med(req_cpu.get("proxyd", []))
    modes = ["direct", "cinit-pid1", "cinit", "cinit-copy", "proxyd"]
    rows = []
    for mode in modes:
        b, c = _med(bulk.get(mode, [])), _med(cpu.get(mode, []))
        r, p = _med(rate.get(mode, [])), _med(p99.get(mode, []))
        u = _med(req_cpu.get(mode, []))
        c2t, t2c = half.get(mode, (False, False))
        exact, secs = held.get(mode, (0, 0.0))
        measured_wrk = mode in rate
        tested = mode in half
        rows.append([
            mode,
            fmt(b, "", 2) if mode in bulk else "-",
            ratio(b, peer_bulk) if mode in bulk else "-",
            fmt(c, " s", 2) if c is not None else "-",
            ratio(c, peer_cpu) if c is not None else "-",
            fmt(r, "", 0) if measured_wrk else "-",
            ratio(r, peer_rate) if measured_wrk else "-",
            fmt(p, " ms", 2) if measured_wrk else "-",
            ratio(p, peer_p99) if measured_wrk else "-",
            fmt(u, " us", 1) if u is not None else "-",
            ratio(u, peer_req_cpu) if u is not None else "-",
            str(errors.get(mode, "-")),
            f"{yes(c2t)}/{yes(t2c)}" if tested else "-",
            f"{exact}/1000 ({secs:.2f} s)" if tested else "-",
        ])  # fmt: skip
    print_table(
        "Proxy relay on loopback (medians; ratios vs systemd-socket-proxyd)",
        ["mode", "bulk Gbit/s", "vs proxyd", "relay CPU/GiB", "vs proxyd", "wrk req/s",
         "vs proxyd", "wrk p99", "vs proxyd", "CPU/req", "vs proxyd", "wrk errors",
         "half-close c>t/t>c", "1,000 held byte-exact"],
        rows,
    )  # fmt: skip
    print("\nall runs (bulk Gbit/s | relay CPU s/GiB | wrk req/s | wrk p99 ms | CPU us/req):")
    for mode in modes:
        print(
            f"  {mode:10} {runs(bulk.get(mode, []))} | {runs(cpu.get(mode, []))} | "
            f"{runs(rate.get(mode, []))} | {runs(p99.get(mode, []))} | "
            f"{runs(req_cpu.get(mode, []))}"
        )
    print(
        "\ntargets: bulk >= 1.10x proxyd; wrk req/s >= 1.00x proxyd with p99 <= proxyd's; "
        "half-close correct; 1,000 connections byte-exact"
    )


if __name__ == "__main__":
    main()
