"""Generate a realistic, valid unit set of any size for the validate benchmark.

Half services, half sockets. Each socket activates the service of the same stem; the
services form After=/Requires= chains of ten, carry Environment=, ExecStartPre=,
Restart=, conditions and output settings; sockets listen on distinct TCP ports, unix
paths or abstract names, some also on a datagram port, and every tenth is a proxy with a
ProxyTarget=. A slice of the units lives in the drop-in directory: some replace a core
unit of the same filename (overrides), the others are new units (additive).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Fraction of the units written as additive drop-ins, and of the core units overridden.
ADDITIVE_EVERY = 10  # every 10th unit pair lives only in the drop-in directory
OVERRIDE_EVERY = 20  # every 20th core unit pair gets a drop-in replacing it
CHAIN = 10  # services are chained After=/Requires= in runs of this length

ENVIRON = {"APP_USER": "app", "APP_HOME": "/home/app"}  # what ${VAR} expands against


@dataclass(frozen=True)
class UnitTree:
    core: Path
    drop_in: Path
    services: int
    sockets: int
    overrides: int
    files: int


def _service(index: int, overridden: bool) -> str:
    stem = f"svc-{index:05d}"
    lines = [
        "[Unit]",
        f"Description=Benchmark service {index}" + (" (drop-in override)" if overridden else ""),
        f"Requires={stem}.socket",
    ]
    if index % CHAIN:
        previous = f"svc-{index - 1:05d}.service"
        lines += [f"After={previous}", f"Requires={previous}"]
    if index % 7 == 0:
        lines.append("Wants=svc-00000.service" if index else "Wants=")
    lines += [
        "ConditionPathExists=!/etc/cinit-bench/disable-%N",
        "ConditionEnvironment=!CINIT_BENCH_OFF",
        "StartLimitBurst=5",
        "StartLimitIntervalSec=1min 30s",
        "",
        "[Service]",
        "Type=" + ("notify" if index % 5 == 0 else "simple"),
        "User=${APP_USER:-app}",
        "WorkingDirectory=${APP_HOME:-/home/app}",
        f'Environment=PORT={20000 + index} "GREETING=hello world" INSTANCE=%n',
        f"Environment=LOG_LEVEL={'debug' if index % 3 else 'info'}",
        "EnvironmentFile=-/etc/default/%N",
        "ExecStartPre=/usr/bin/install -d -m 0755 /run/%N",
        f"ExecStartPre=-/bin/sh -c 'test -e /run/%N/ready || echo \"starting {index}\"'",
        f"ExecStart=/usr/local/bin/app --name %N --port ${{PORT}} --level $LOG_LEVEL --id {index}",
        "ExecStop=/bin/kill -TERM $MAINPID",
        "Restart=" + ("on-failure" if index % 4 else "always"),
        "RestartSec=500ms",
        "TimeoutStopSec=5s",
        "KillSignal=SIGTERM",
        "SuccessExitStatus=143 SIGTERM",
        "StandardOutput=inherit",
        f"StandardError=append:/var/log/bench/{stem}.log",
    ]
    if index % 5 == 0:
        lines.append("WatchdogSec=30s")
    lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)


def _socket(index: int, overridden: bool) -> str:
    stem = f"svc-{index:05d}"
    lines = [
        "[Unit]",
        f"Description=Benchmark socket {index}" + (" (drop-in override)" if overridden else ""),
        "",
        "[Socket]",
    ]
    proxy = index % 10 == 3
    if index % 3 == 1 and not proxy:
        lines.append(f"ListenStream=/run/bench/{stem}.sock")
        lines += ["SocketMode=0660", "SocketUser=app", "RemoveOnStop=yes"]
    elif index % 3 == 2 and not proxy:
        lines.append(f"ListenStream=@bench-{stem}")
    else:
        host = "127.0.0.1:" if index % 2 else ""
        lines.append(f"ListenStream={host}{10000 + index}")
    if index % 5 == 0 and not proxy:
        lines.append(f"ListenDatagram={40000 + index}")
    if proxy:
        lines += [
            "ActivationMode=proxy",
            f"ProxyTarget=127.0.0.1:{30000 + index}",
            "MaxConnections=256",
        ]
    else:
        lines += ["Backlog=128", "ReusePort=" + ("yes" if index % 2 else "no")]
    lines += [
        "TriggerLimitIntervalSec=2s",
        "TriggerLimitBurst=20",
        "",
        "[Install]",
        "WantedBy=sockets.target",
        "",
    ]
    return "\n".join(lines)


def write_unit_tree(root: Path, units: int) -> UnitTree:
    """Write `units` units (half services, half sockets) under `root`/units and /drop-in."""
    if units % 2 or units > 2 * 20000:  # ports 10000+i, 30000+i and 40000+i stay distinct
        raise ValueError("units must be even and at most 40,000")
    core, drop = root / "units", root / "drop-in"
    core.mkdir(parents=True)
    drop.mkdir(parents=True)
    overrides = files = 0
    for index in range(units // 2):
        additive = index % ADDITIVE_EVERY == ADDITIVE_EVERY - 1
        overridden = not additive and index % OVERRIDE_EVERY == 1
        stem = f"svc-{index:05d}"
        for suffix, render in ((".service", _service), (".socket", _socket)):
            if overridden:
                (core / (stem + suffix)).write_text(render(index, False))
                (drop / (stem + suffix)).write_text(render(index, True))
                overrides += 1
                files += 2
            else:
                (drop if additive else core).joinpath(stem + suffix).write_text(
                    render(index, False)
                )
                files += 1
    return UnitTree(core, drop, units // 2, units // 2, overrides, files)
