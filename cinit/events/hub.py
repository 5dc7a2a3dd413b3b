"""The event hub: every event of a cinit run gets its `seq` and timestamps here, once.

Whoever has something to say (the unit supervisor's Transitions and Notices, the root's
shutdown phases, the main loop's orphan counts, the unit loader) calls `EventHub.tell` or
`EventHub.emit` from any thread. Those calls only stamp the event (seq, wall and monotonic
time, under one lock) and queue it: they never block on a subscriber, a file or a socket.

One thread, `cinit-events`, does everything else in order (`EventPump` in
`cinit.events.pump`): it keeps the status book (what `cinit status` shows), writes the
JSONL trace, publishes on ZeroMQ and answers the control endpoint. ZeroMQ is imported
only once the boot has settled (or after `ZMQ_DEFER` seconds): before that, events wait
in the pump's backlog and none is lost.

The mapping of a unit Transition (old -> new) to an event name lives in
`cinit.machines.vocabulary.event_name`, and nowhere else.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from cinit.io.wakeup import Wakeup
from cinit.machines.vocabulary import (
    BOOT_SETTLED_EVENT,
    BUSY_STATES,
    FINAL_EVENT,
    State,
    event_name,
)

if TYPE_CHECKING:
    from cinit.units.loader import UnitSet

TRACE_ENV = "CONTAINER_INIT_TRACE"
TRACE_FILE_ENV = "CONTAINER_INIT_TRACE_FILE"
TRACE_LABELS_ENV = "CONTAINER_INIT_TRACE_LABELS"
DEFAULT_TRACE_FILE = "/tmp/container-init-trace.jsonl"

# BOOT_SETTLED_EVENT is stamped once, right after the change that ended the boot: every
# boot unit came up, finished, failed or was skipped, and no unit is on its way or waiting
# to restart. `cinit analyze` counts what comes after it (socket activations ...) apart.
ZMQ_DEFER = 1.0  # seconds: the latest the stream comes up when the boot does not settle (a
# boot of 30 services takes ~0.7 s here: importing zmq (~60 ms of CPU) must not land in it)

EventDict = dict[str, Any]


def trace_file_from_env(environ: Mapping[str, str]) -> str | None:
    """The trace path when tracing is on (`CONTAINER_INIT_TRACE=1`), else None."""
    if environ.get(TRACE_ENV, "").strip().lower() not in ("1", "true", "yes", "on"):
        return None
    return environ.get(TRACE_FILE_ENV) or DEFAULT_TRACE_FILE


class EventHub:
    """Stamps and queues events; `start` brings up the pump thread (see module doc)."""

    def __init__(
        self,
        *,
        started_mono: float,
        unit_set: UnitSet | None = None,
        runtime_dir: str,
        events_endpoint: str | None = None,
        trace_file: str | None = None,
        trace_labels: str = "",
        control_group: str | None = None,
    ) -> None:
        self.started_mono = started_mono
        self.zmq_deadline = started_mono + ZMQ_DEFER  # the pump brings ZeroMQ up by then
        self.control_group = control_group  # None: $CINIT_CONTROL_GROUP, else root only
        self.started_wall = time.time() - (time.monotonic() - started_mono)
        self.unit_set = unit_set
        self.runtime_dir = runtime_dir
        self.events_endpoint = events_endpoint
        self.trace_file = trace_file
        self.trace_labels = trace_labels
        self._lock = threading.Lock()
        self._seq = 0
        self._queue: deque[EventDict] = deque()
        self.wakeup = Wakeup()  # wakes the pump
        self._busy: set[str] = set()  # units in a BUSY state (boot settledness)
        self._restarting: set[str] = set()  # units in auto-restart (the boot is not over)
        self._boot_over = False  # BOOT_SETTLED_EVENT was stamped
        # Boot units that have not settled once yet: the boot is not over before they have.
        self._boot_pending: set[str] = set()
        if unit_set is not None:
            boot = unit_set.graph.boot_units()
            self._boot_pending = {n for n in boot if unit_set.units[n].service is not None}
        self.settled = threading.Event()  # the boot settled: time to bring ZeroMQ up
        self.supervisor: Any = None  # the UnitSupervisor ref, for control commands
        # unit name -> its last output lines, for `cinit status UNIT` (None: not kept)
        self.log_tail: Callable[[str], list[str]] | None = None
        # `OutputRelay.read_logs`, for `cinit logs` (None: no relay, nothing kept)
        self.log_read: Callable[..., tuple[list[Any], int]] | None = None
        self._pump: Any = None
        self._launch_lock = threading.Lock()
        self._final: tuple[str | None, dict[str, Any]] | None = None  # see `emit`
        self._launcher: threading.Thread | None = None
        self._closed = False
        self.accepting = True  # False once the pump broke: nothing would ever take events

    # ---- producers (any thread) ---------------------------------------------------------

    def tell(self, item: Any) -> None:
        """Take a `Transition` or a `Notice` (the supervisor's `events` sink)."""
        from cinit.machines.unit_events import Notice, Transition
        from cinit.signal_policy import signal_name

        if isinstance(item, Transition):
            old, new = str(item.old), str(item.new)
            fields: dict[str, Any] = {
                "old": old,
                "new": new,
                "reason": item.reason,
                "result": str(item.result),
            }
            for key in ("pid", "code", "signal"):
                value = getattr(item, key, None)
                if value is not None:
                    fields[key] = signal_name(value) if key == "signal" else value
            boot_over = self._track(item.unit, new)
            self._stamp(event_name(old, new), item.unit, fields, item.at)
            if boot_over:
                self._stamp(BOOT_SETTLED_EVENT, None, {}, item.at)
        elif isinstance(item, Notice):
            self.emit(item.event, item.unit or None, **item.fields)

    def emit(self, event: str, unit: str | None = None, **fields: Any) -> int:
        """Stamp and queue one event; returns its seq (0 for `shutdown-finished`, which
        waits for `close`: the main thread may still reap an orphan after the root
        finished, and the stream's last word must be that cinit is done). Never blocks."""
        if event == FINAL_EVENT:
            self._final = (unit, fields)
            return 0
        if event.startswith("shutdown-"):
            with self._lock:
                self._boot_over = True  # a boot cut short by a stop never settled
        return self._stamp(event, unit, fields)

    def _stamp(
        self, event: str, unit: str | None, fields: dict[str, Any], at: float | None = None
    ) -> int:
        """Queue one event; `at` is when it happened (monotonic), if earlier than now."""
        with self._lock:
            self._seq += 1
            seq = self._seq
            now = time.monotonic()
            mono = now if at is None or at > now else at
            record: EventDict = {
                "seq": seq,
                "time": time.time() - (now - mono),
                "mono": mono,
                "t_ms": round((mono - self.started_mono) * 1000.0, 3),
                "unit": unit,
                "event": event,
            }
            record.update(fields)
            if self.accepting:
                self._queue.append(record)
        self.wakeup.wake()
        return seq

    def _track(self, unit: str, new: str) -> bool:
        """Follow `unit` into `new`; True when this change ended the boot (once)."""
        with self._lock:
            if new in BUSY_STATES:
                self._busy.add(unit)
            else:
                self._busy.discard(unit)
                self._boot_pending.discard(unit)
            if new == State.AUTO_RESTART:
                self._restarting.add(unit)
            else:
                self._restarting.discard(unit)
            if self._busy or self._boot_pending:
                return False
            self.settled.set()
            if self._restarting or self._boot_over:
                return False
            self._boot_over = True
            return True

    # ---- the pump's side -----------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._seq

    def has_queued(self) -> bool:
        with self._lock:
            return bool(self._queue)

    def take(self) -> list[EventDict]:
        """Everything queued so far, in seq order (called by the pump only)."""
        with self._lock:
            taken = list(self._queue)
            self._queue.clear()
        return taken

    # ---- lifecycle (main thread) ---------------------------------------------------------

    def emit_loaded(self, unit_set: UnitSet, load_start: float, load_end: float) -> None:
        """`loaded` for each unit and `overridden` for each drop-in override, stamped at
        the end of the load (the first wave's transitions, stamped when they happened,
        come after it)."""
        from cinit.units.unit_diff import unit_summary  # the units are loaded: no cost

        load = {"load_start_ms": round((load_start - self.started_mono) * 1000.0, 3)}
        load["load_ms"] = round((load_end - load_start) * 1000.0, 3)
        for override in unit_set.overrides:
            fields: dict[str, Any] = override.to_event()
            fields.pop("phase", None)
            fields.pop("unit", None)
            fields.update(core=override.core_path, drop_in=override.drop_in_path, **load)
            self._stamp("overridden", override.name, fields, load_end)
        for name in sorted(unit_set.units):
            fields = {**unit_summary(unit_set.units[name], unit_set.graph), **load}
            self._stamp("loaded", name, fields, load_end)

    def start(self) -> None:
        """Start the pump, once the boot settled (or after `ZMQ_DEFER`, or at `close`):
        until then events only queue here, and the pump's modules (status book, control,
        trace, then ZeroMQ) cost the boot nothing."""
        if self.unit_set is None or not self.unit_set.units:
            self.settled.set()  # nothing to boot: nothing to wait for
        self._launcher = threading.Thread(target=self._launch, name="cinit-events-start")
        self._launcher.daemon = True
        self._launcher.start()

    def _launch(self) -> None:
        self.settled.wait(max(0.0, self.zmq_deadline - time.monotonic()))
        with self._launch_lock:
            if not self._closed:
                self._start_pump_locked()

    def _start_pump_locked(self) -> None:
        """Start the pump unless it runs (the caller holds `_launch_lock`)."""
        if self._pump is None:
            from cinit.events.pump import EventPump

            self._pump = EventPump(self)
            self._pump.start()

    def close(self, timeout: float = 0.3) -> None:
        """Deliver what is queued (bounded by `timeout`), close the sockets and the trace."""
        if self._closed:
            return
        if self._final is not None:
            unit, fields = self._final
            self._final = None
            self._stamp(FINAL_EVENT, unit, fields)
        with self._launch_lock:  # exiting before the pump started: start it for the trace
            self._start_pump_locked()
            self._closed = True
        self._pump.stop(timeout)
        self.wakeup.close()
