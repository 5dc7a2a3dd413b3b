"""The boot path's boundary: what cinit may import before its first exec, and why.

PID 1 must exec its main command (`cinit -- CMD`) or its first units quickly: every import
before that delays the container's real work (the bench holds exec -> child exec under
30 ms). So the modules below are the only ones of cinit that run before the first exec,
and none of them imports `typing`, `dataclasses`, pykka, pyzmq or typer (each costs 4 to
100 ms). tests/test_boot_path.py runs cinit up to its first exec and fails on any other.

A module on the boot path (or on the exec probe's, `cinit is-ready`: `cinit.cli.control`,
`cinit.io.control_client`, a ~30 ms budget) that needs names for type hints only writes
`from cinit.boot_path import TYPE_CHECKING` (the flag without importing `typing`, ~4 ms);
modules off them use `from typing import TYPE_CHECKING` as usual.
"""

TYPE_CHECKING = False  # type checkers take it as True (PEP 484); `typing` costs ~4 ms

# `cinit -- CMD` (no unit directory): a tini-like init.
MAIN_COMMAND_PATH = frozenset(
    {
        "cinit",  # PROG and the version
        "cinit.boot_path",  # this boundary, and TYPE_CHECKING
        "cinit.cli",  # the dispatcher: the first word decides the path
        "cinit.cli.args",  # the one argument parser (no argparse, no typer)
        "cinit.cli.run",  # `cinit [run]`'s options
        "cinit.boot",  # the boot sequence
        "cinit.io",
        "cinit.io.log",  # cinit's own lines
        "cinit.io.signals",  # blocked first of all: PID 1 would lose them
        "cinit.signal_policy",  # which signals cinit owns, and their names
        "cinit.io.reaper",  # the process table, reaping every orphan
        "cinit.io.spawn",  # a SpawnRequest -> ChildPlan, launched (the package's __init__)
        "cinit.io.spawn.launch",
        "cinit.io.spawn.plan",  # what a child does before exec
        "cinit.io.spawn.child",  # the child carrying its plan out
        "cinit.io.spawn.fork",  # a fresh fork, its exec errors back through a pipe
    }
)

# A unit directory adds the unit files (read, checked, ordered) and the first wave: the
# units that wait for nothing start before the actors (pykka) are imported.
UNIT_PATH = frozenset(
    {
        "cinit.io.cgroup",
        "cinit.io.environ",
        "cinit.io.conditions",  # the rarer Condition*=/Assert*= checks, when a unit has one
        "cinit.io.notify",  # the notify socket, when a unit is Type=notify
        "cinit.io.output",  # the relay of the services' output
        "cinit.io.spawn.prepared",  # a child forked early, waiting for its command
        "cinit.io.spawn.forker",  # the helper that forks them small, when timers are loaded
        "cinit.io.wakeup",  # an eventfd that wakes a poll loop (output relay, notify)
        "cinit.io.runtime",
        "cinit.io.sweep",
        "cinit.actors",
        "cinit.actors.first_wave",
        "cinit.actors.unit_io",
        "cinit.actors.unit_services",
        "cinit.actors.unit_slot",
        "cinit.actors.unit_runner",  # the one driver of a unit's machine
        "cinit.actors.unit_ports",
        "cinit.actors.scheduler",  # timers as the first wave asks (sortedcontainers comes later)
        "cinit.io.socket_binding",  # every socket unit bound before the first wave
        "cinit.io.exec_dirs",  # RuntimeDirectory= and friends, made before a unit's command
        "cinit.io.host_facts",  # the host's specifiers (%H %m %b ...), read when a unit uses one
        # tmpfiles.d, imported only when it is applied (`--tmpfiles`, `--systemd`, a fresh
        # /run): the directories and sockets of the units must exist before they start.
        "cinit.io.tmpfiles",
        "cinit.io.userdb",  # its users and groups (read from /etc/passwd, /etc/group)
    }
)
# Pure packages (text in, values out; no threads, no OS): any of their modules may be used.
PURE_PACKAGES = ("cinit.units", "cinit.machines")

# What must never be imported before the first exec (a module that needs one of them is
# not on the boot path): typing/dataclasses ~4-10 ms, the third-party ones far more.
FORBIDDEN = frozenset(
    {
        "typing",
        "dataclasses",
        "argparse",
        "subprocess",
        "asyncio",
        "json",
        "logging",
        "inspect",
        "pykka",
        "zmq",
        "typer",
        "click",
        "rich",
        "psutil",
    }
)

# Standard-library modules a unit set of plain words does not import before its first exec
# either (allowed, but each is a few M instructions of PID 1's start): `re` and the unit
# parsers' fifteen patterns ~4 ms (compiled on first use: `cinit.units._text.LazyPattern`;
# unit names and plain command lines are string tests), `signal`'s enums ~1 ms (the C
# `_signal` instead), `contextlib` (try/except) and `math` (a shared library: float("inf")).
# tests/test_boot_path.py checks it for a plain unit.
KEPT_OUT_OF_PLAIN_UNITS = frozenset({"re", "signal", "contextlib", "math"})


def allowed(module: str, units: bool) -> bool:
    """Whether `module` may be imported before the first exec (`units`: a unit directory)."""
    if module.partition(".")[0] in FORBIDDEN:
        return False
    if not module.startswith("cinit"):
        return True  # the standard library's other modules: FORBIDDEN names the costly ones
    if module in MAIN_COMMAND_PATH:
        return True
    return units and (
        module in UNIT_PATH or any(module.startswith(f"{p}.") or module == p for p in PURE_PACKAGES)
    )
