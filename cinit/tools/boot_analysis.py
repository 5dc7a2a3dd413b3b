"""`blame` and `critical-chain` over a boot trace, in the shape of systemd-analyze's.

blame: units by the time their start took (starting -> up, or -> failed), longest first.
critical-chain: from a unit (by default the one that came up last: it decided when boot
was over) back through its After= units, at each step the one that came up last, since
that is the one the unit waited for. `@` is when a unit came up, `+` how long it took.
Both count the boot only (until `boot-settled`); what units did after it is listed apart.
"""

from __future__ import annotations

from cinit.machines.vocabulary import State
from cinit.tools.boot_trace import BootTrace, UnitBoot

# Float noise in ms stamps: an After= unit up "after" its dependent started by less than
# this still counts as waited for.
_EPSILON_MS = 0.5

CHAIN_HEADER = (
    'The time when unit became active or started is printed after the "@" character.\n'
    'The time the unit took to start is printed after the "+" character.\n'
)


def timespan(ms: float) -> str:
    """systemd's style: `512ms`, `1.234s`, `2min 3.500s`."""
    if ms < 1:
        return f"{ms:.1f}ms" if ms > 0 else "0"
    if ms < 1000:
        return f"{ms:.0f}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.3f}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}min {rest:.3f}s"


def blame(trace: BootTrace) -> list[UnitBoot]:
    """Units that started, longest start first (ties by name)."""
    timed = [boot for boot in trace.units.values() if boot.took_ms is not None]
    return sorted(timed, key=lambda boot: (-(boot.took_ms or 0.0), boot.name))


def format_blame(trace: BootTrace) -> str:
    """systemd-analyze blame's lines, then what happened after the boot settled."""
    rows = blame(trace)
    spans = [timespan(boot.took_ms or 0.0) for boot in rows]
    width = max((len(span) for span in spans), default=0)
    lines = []
    for boot, span in zip(rows, spans, strict=True):
        # Failed to start, or came up and failed later (a simple service's main exiting).
        note = " (failed)" if boot.ended_failed_ms is not None else ""
        lines.append(f"{span:>{width}} {boot.name}{note}")
    return "\n".join(lines) + ("\n" if lines else "") + format_after_boot(trace)


# How each state reads in the after-boot list.
_AFTER_WORDS: dict[str, str] = {
    State.STARTING: "started",
    State.ACTIVE: "up",
    State.RELOADING: "reloading",
    State.EXITED: "finished",
    State.FAILED: "failed",
    State.AUTO_RESTART: "restarting",
    State.INACTIVE: "stopped",
    State.CONDITION_SKIPPED: "skipped",
}
_AFTER_SHOWN = 4  # changes listed per unit; the rest are counted


def describe_after(boot: UnitBoot) -> str:
    """`started @7.160s, up @7.172s`: what `boot` did after the boot settled."""
    words = []
    for at, state, result in boot.later:
        word = _AFTER_WORDS.get(state)
        if word is None:
            continue
        if state == State.FAILED and result and result != "success":
            word += f" ({result})"
        words.append(f"{word} @{timespan(at)}")
    shown = ", ".join(words[:_AFTER_SHOWN])
    if len(words) > _AFTER_SHOWN:
        shown += f", … {len(words) - _AFTER_SHOWN} more changes"
    return shown


def after_boot_heading(trace: BootTrace) -> str:
    settled = trace.settled_ms or 0.0
    return f"After the boot settled @{timespan(settled)} (not counted as boot):"


def format_after_boot(trace: BootTrace) -> str:
    """A section naming each unit that did something after the boot settled ("" if none)."""
    later = [(boot.name, describe_after(boot)) for boot in trace.after_boot()]
    later = [(name, text) for name, text in later if text]
    if not later:
        return ""
    lines = ["", after_boot_heading(trace)]
    lines += [f"  {name}: {text}" for name, text in later]
    return "\n".join(lines) + "\n"


def startup_finished(trace: BootTrace) -> tuple[float, UnitBoot] | None:
    """When the boot was over (the settle, else the last unit up) and the last unit up
    during it; None when no unit came up."""
    up = [boot for boot in trace.units.values() if boot.up_ms is not None]
    if not up:
        return None
    last = max(up, key=lambda boot: (boot.up_ms or 0.0, boot.name))
    finished = trace.settled_ms if trace.settled_ms is not None else last.up_ms or 0.0
    return finished, last


def default_chain_unit(trace: BootTrace) -> UnitBoot | None:
    """The unit that came up last (what boot waited for longest); else the last settled."""
    up = [boot for boot in trace.units.values() if boot.up_ms is not None]
    pool = up or [boot for boot in trace.units.values() if boot.settled_ms is not None]
    if not pool:
        return None
    return max(pool, key=lambda boot: (boot.settled_ms or 0.0, boot.name))


def critical_chain(trace: BootTrace, unit: UnitBoot) -> list[UnitBoot]:
    """`unit`, the After= unit it waited for last, the one that one waited for ..."""
    chain = [unit]
    seen = {unit.name}
    current = unit
    while True:
        begin = current.started_ms if current.started_ms is not None else current.settled_ms
        if begin is None:
            break
        waited = [
            trace.units[name]
            for name in current.after
            if name in trace.units
            and name not in seen
            and trace.units[name].settled_ms is not None
            and (trace.units[name].settled_ms or 0.0) <= begin + _EPSILON_MS
        ]
        if not waited:
            break
        current = max(waited, key=lambda boot: (boot.settled_ms or 0.0, boot.name))
        chain.append(current)
        seen.add(current.name)
    return chain


def format_chain(chain: list[UnitBoot]) -> str:
    """systemd-analyze critical-chain's tree for `chain`."""
    lines = [CHAIN_HEADER]
    for depth, boot in enumerate(chain):
        prefix = "" if depth == 0 else "  " * (depth - 1) + "└─"
        line = f"{prefix}{boot.name}"
        if boot.settled_ms is not None:
            line += f" @{timespan(boot.settled_ms)}"
        if boot.took_ms:
            line += f" +{timespan(boot.took_ms)}"
        if boot.outcome in ("failed", "skipped", "starting"):
            line += f" ({boot.outcome})"
        elif boot.outcome == "inactive" and boot.later:
            line += f" (after boot: {describe_after(boot)})"
        lines.append(line)
    return "\n".join(lines) + "\n"
