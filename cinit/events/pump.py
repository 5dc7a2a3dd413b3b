"""The `cinit-events` thread (the sketch's EventBus): the one owner of ZeroMQ and the trace.

It takes the stamped events from `cinit.events.hub.EventHub` in seq order and, for
each: updates the status book, answers control requests the event settles, writes the
trace line, and queues the message for the stream. Before ZeroMQ is up (it is imported
once the boot settled, at the latest `hub.zmq_deadline`) the stream's
messages wait in the backlog; after, they are sent without ever blocking (see
`cinit.io.publisher`). A failure in here is logged and ends the stream, never cinit.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import threading
import time
import traceback
from collections import deque
from typing import TYPE_CHECKING, Any

from cinit.events.control_desk import ControlDesk
from cinit.events.status_book import StatusBook
from cinit.io.log import info, log

if TYPE_CHECKING:
    from collections.abc import Callable

    from cinit.events.hub import EventHub  # the hub starts the pump: at run time only that arrow

MAX_BACKLOG = 50_000  # stream messages kept while subscribers are too slow; then dropped
RETRY_MS = 20  # how soon to try again when a subscriber's queue was full
SLOW_GRACE = 0.2  # seconds everyone waits for a subscriber whose queue is full ...
LOSSY_PERIOD = 2.0  # ... before it loses events for this long (then it gets another chance)
DRAIN_CHECK_MS = 100  # while drops wait to be announced: how often subscribers are looked at
NOTICE_TOPIC = b"cinit.events-dropped"


def _inside(endpoint: str, directory: str) -> bool:
    """Whether `endpoint` is an ipc socket in `directory`."""
    if not endpoint.startswith("ipc://"):
        return False
    where = os.path.dirname(os.path.abspath(endpoint[len("ipc://") :]))
    return where == os.path.abspath(directory)


class EventPump:
    """Runs the hub's consumer thread (see module doc)."""

    def __init__(self, hub: EventHub) -> None:
        self.hub = hub
        boot: set[str] = set()
        unit_set = hub.unit_set
        if unit_set is not None:
            boot = {n for n in unit_set.graph.boot_units() if unit_set.units[n].service}
        self.book = StatusBook(boot, hub.started_wall)
        self.desk = ControlDesk(
            self.book, self._command, self._measure, self._log_tail, self._log_read
        )
        self.desk.describe = self._describe
        self.desk.signal = self._signal
        self.desk.environment = lambda: self.hub.environment
        self.trace: Any = None
        self.backlog: deque[tuple[int, bytes, bytes]] = deque()
        self.drop_count = 0
        self.drop_first = 0
        self.drop_last = 0
        # After one lossy send, libzmq skips the subscriber that missed it (its pipe is
        # inactive) without a word until it has read half its queue: until every
        # subscriber has caught up, every event sent is counted as possibly missed.
        self.skipping = False
        self.drained_once = False  # every subscriber had read everything at the last look
        self.notice_queued = False  # an events-dropped notice is on its way (hub or backlog)
        self.blocked_since: float | None = None  # a send failed (a full subscriber) since
        self.lossy_until: float | None = None  # sends go on without the stuck subscriber
        self.zmq: Any = None
        self.context: Any = None
        self.publisher: Any = None
        self.control: Any = None
        self.released = False  # the stream may flow (the hold for a first subscriber ended)
        self.hold_until = 0.0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="cinit-events", daemon=True)
        self._psutil: Any = None

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float) -> None:
        """Deliver what is queued (within `timeout`), then close everything."""
        self.stopping.set()
        self.hub.wakeup.wake()
        self.thread.join(timeout + 1.0)

    # ---- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._open_trace()
            self._before_zmq()
            if not self.stopping.is_set():
                self._bring_up()
            self._with_zmq()
            # Stopped before either loop ran (a handoff right after the boot): the events
            # still go to the trace.
            self._process()
        except BaseException as exc:  # the stream is not worth PID 1: say so and carry on
            text = "".join(traceback.format_exception(exc)).rstrip()
            log(f"internal error in the event stream; events stop here:\n{text}")
            self.hub.accepting = False
            self.hub.take()  # and free what waited
        finally:
            self._close()

    def _open_trace(self) -> None:
        if self.hub.trace_file:
            from cinit.io.trace import TraceWriter, parse_labels

            labels = parse_labels(self.hub.trace_labels)
            self.trace = TraceWriter(self.hub.trace_file, labels, self._snapshot)

    def _before_zmq(self) -> None:
        """Process events (book, trace, backlog) until the boot settled or the zmq deadline."""
        deadline = self.hub.zmq_deadline
        fd = self.hub.wakeup.fd
        while not self.stopping.is_set():
            self._process()
            left = deadline - time.monotonic()
            if self.hub.settled.is_set() or left <= 0:
                return
            readable, _, _ = select.select([fd], [], [], min(left, 0.05))
            if readable:
                self.hub.wakeup.drain()

    def _bring_up(self) -> None:
        import zmq

        from cinit.io.control_server import ControlServer, control_endpoint
        from cinit.io.publisher import Publisher, events_endpoint
        from cinit.io.runtime import control_group_id, ensure_runtime_dir, share_with_group
        from cinit.io.userdb import UserDbError

        self.zmq = zmq
        self.context = zmq.Context(io_threads=1)
        runtime = self.hub.runtime_dir
        gid = None
        try:
            gid = control_group_id(self.hub.control_group)
        except UserDbError as exc:
            log(f"control group: {exc}; the sockets stay root's only")
        endpoint = events_endpoint(self.hub.events_endpoint, runtime)
        trusted = True
        try:
            ensure_runtime_dir(runtime)
            share_with_group(runtime, gid, 0o750)
        except OSError as exc:
            # One line for both sockets; the boot goes on without them.
            which = "control and event sockets" if _inside(endpoint, runtime) else "control socket"
            log(f"not binding the {which} in {runtime}: {exc}")
            trusted = False
        if trusted or not _inside(endpoint, runtime):
            try:
                self.publisher = Publisher(zmq, self.context, endpoint, gid)
            except (zmq.ZMQError, OSError) as exc:
                log(f"events: cannot bind {endpoint}: {exc}; no event stream")
        if trusted:
            try:
                self.control = ControlServer(zmq, self.context, control_endpoint(runtime), gid)
            except (zmq.ZMQError, OSError) as exc:
                log(f"control: cannot bind {control_endpoint(runtime)}: {exc}; no control")
        from cinit.io.publisher import HOLD_SECONDS

        self.hold_until = time.monotonic() + HOLD_SECONDS
        since = (time.monotonic() - self.hub.started_mono) * 1000
        if self.publisher is not None:
            control = f"control in {runtime}" if self.control is not None else "no control"
            info(f"event stream on {endpoint}, {control} ({since:.0f} ms after start)")

    def _with_zmq(self) -> None:
        zmq = self.zmq
        if zmq is None:
            return
        poller = zmq.Poller()
        poller.register(self.hub.wakeup.fd, zmq.POLLIN)
        if self.publisher is not None:
            poller.register(self.publisher.socket, zmq.POLLIN)
            poller.register(self.publisher.monitor, zmq.POLLIN)
        if self.control is not None:
            poller.register(self.control.socket, zmq.POLLIN)
        while not self.stopping.is_set():
            self._process()
            self._flush_stream()
            timeout = None
            if not self.released:
                timeout = max(1, int((self.hold_until - time.monotonic()) * 1000) + 1)
            elif self.backlog:
                timeout = RETRY_MS
            elif self.lossy_until is not None:
                timeout = max(1, int((self.lossy_until - time.monotonic()) * 1000) + 1)
            elif self.drop_count and not self.notice_queued:
                timeout = DRAIN_CHECK_MS  # has everyone caught up, so the notice reaches all?
            ready = dict(poller.poll(timeout))
            if self.hub.wakeup.fd in ready:
                self.hub.wakeup.drain()
            publisher = self.publisher
            arrived = publisher is not None and publisher.socket in ready
            if publisher is not None and publisher.monitor in ready:
                publisher.track_connections()
            if arrived and publisher.poll_subscriptions() and not self.released:
                # A subscriber is here: others starting with it get a moment more.
                self.hold_until = min(self.hold_until, time.monotonic() + 0.03)
            if self.control is not None and self.control.socket in ready:
                self._serve()
        self._process()
        self._finish_stream()

    # ---- events ----------------------------------------------------------------------------

    def _process(self) -> None:
        batch = self.hub.take()
        if not batch:
            return
        for event in batch:
            began = self.book.apply(event)
            if self.trace is not None:
                self.trace.write(event, began)
            unit = event.get("unit")
            topic = f"unit.{unit}.{event['event']}" if unit else f"cinit.{event['event']}"
            payload = json.dumps(event, default=str).encode()
            self.backlog.append((event["seq"], topic.encode(), payload))
            for route, reply in self.desk.after_event(event):
                self._reply(route, reply)
        if self.trace is not None:
            self.trace.flush()
        self._bound_backlog()

    def _bound_backlog(self) -> None:
        while len(self.backlog) > MAX_BACKLOG:
            self._lose(self.backlog.popleft())

    def _lose(self, entry: tuple[int, bytes, bytes]) -> None:
        """Count `entry` as missed: an event, or a notice (what it counted, and its seq)."""
        seq, topic, payload = entry
        if topic == NOTICE_TOPIC:
            self.notice_queued = False
            notice = json.loads(payload)  # our own: count, first_seq, last_seq
            self._count_drops(notice["first_seq"], notice["last_seq"], notice["count"])
        self._count_drops(seq, seq, 1)

    def _count_drops(self, first: int, last: int, count: int) -> None:
        if self.drop_count == 0:
            self.drop_first, self.drop_last = first, last
        self.drop_first = min(self.drop_first, first)
        self.drop_last = max(self.drop_last, last)
        self.drop_count += count

    def _flush_stream(self) -> None:
        if self.publisher is None:
            self.backlog.clear()  # no stream: nothing will ever take them
            return
        if not self.released:
            if time.monotonic() < self.hold_until:
                return
            self.released = True
        # A subscriber whose queue is full holds everyone up for SLOW_GRACE at most; then,
        # for LOSSY_PERIOD, an event it cannot take goes to the others only. From that
        # lossy send on, libzmq skips it silently until it reads again, so every event
        # sent is counted (`skipping`) until every subscriber has caught up; then one
        # `events-dropped` notice with the count goes out, which all can take (it is
        # never sent lossy: one that would be is itself counted, into the next notice).
        now = time.monotonic()
        if self.lossy_until is not None and now >= self.lossy_until:
            self.lossy_until = None
        while self.backlog:
            seq, topic, payload = self.backlog[0]
            if self.publisher.send(topic, payload):
                self.blocked_since = None
                self.backlog.popleft()
                if topic == NOTICE_TOPIC:
                    self.notice_queued = False
                if self.skipping:
                    self._count_drops(seq, seq, 1)  # a skipped subscriber missed it
                continue
            if self.lossy_until is None:
                if self.blocked_since is None:
                    self.blocked_since = now
                if now - self.blocked_since < SLOW_GRACE:
                    return
                self.lossy_until, self.blocked_since = now + LOSSY_PERIOD, None
            entry = self.backlog.popleft()
            if topic != NOTICE_TOPIC:
                self.publisher.send_lossy(topic, payload)
                self.skipping = True
            self._lose(entry)
        self._announce_drops()

    def _announce_drops(self) -> None:
        """Queue the `events-dropped` notice once every subscriber has caught up (read all
        that was sent to it, at two looks in a row: libzmq may be between two writes), so
        that none is skipped any more and each gets it."""
        if not self.drop_count or self.notice_queued:
            return
        if not self.publisher.drained():
            self.drained_once = False
            return
        if not self.drained_once:
            self.drained_once = True
            return
        count, first, last = self.drop_count, self.drop_first, self.drop_last
        self.drop_count, self.notice_queued = 0, True
        self.skipping = self.drained_once = False
        self.hub.emit("events-dropped", None, count=count, first_seq=first, last_seq=last)

    def _finish_stream(self, budget: float = 0.3) -> None:
        """At exit: try to send the rest for a short while; a stuck subscriber loses it."""
        if self.publisher is None:
            return
        deadline = time.monotonic() + budget
        self.released = True
        while time.monotonic() < deadline:
            self._process()
            self._flush_stream()
            if not self.backlog and not self.hub.has_queued():
                break
            time.sleep(0.005)

    # ---- control ---------------------------------------------------------------------------

    def _serve(self) -> None:
        for route, body in self.control.receive():
            self._process()  # the reply reflects every event stamped before it
            try:
                reply = self.desk.request(route, body)
            except Exception as exc:  # a bug must not take the endpoint down
                reply = self.desk.error(f"internal error: {exc!r}", 1)
            if reply is not None:
                self._reply(route, reply)

    def _reply(self, route: Any, reply: dict[str, Any]) -> None:
        if self.control is not None:
            self.control.reply(route, json.dumps(reply, default=str).encode())

    def _log_tail(self, unit: str) -> list[str]:
        tail = self.hub.log_tail
        if tail is None:
            return []
        try:
            return [str(line) for line in tail(unit)]
        except Exception as exc:  # somebody else's buffer: never let it break status
            return [f"(log lines unavailable: {exc!r})"]

    def _log_read(self, *args: Any) -> tuple[list[Any], int]:
        read = self.hub.log_read
        return ([], 0) if read is None else read(*args)

    def _command(self, kind: str, unit: str) -> bool:
        supervisor = self.hub.supervisor
        if supervisor is None:
            return False
        from cinit.machines.requests import (
            DaemonReload,
            LoadInstance,
            ReloadUnit,
            ResetFailedUnit,
            StartUnit,
            StopUnit,
        )

        # The desk's orders -> the supervisor's messages (one row each).
        orders: dict[str, Callable[[str], object]] = {
            "start": StartUnit,
            "stop": StopUnit,
            "restart-stop": lambda name: StopUnit(name, restart=True),
            "reload": ReloadUnit,
            "daemon-reload": lambda _: DaemonReload(apply=False),
            "daemon-reload-apply": lambda _: DaemonReload(apply=True),
            "reset-failed": ResetFailedUnit,
            "instance": LoadInstance,  # an instance of a template, made on demand
        }
        try:
            supervisor.tell(orders[kind](unit))
        except Exception:  # pykka.ActorDeadError: the supervisor is gone (shutting down)
            return False
        return True

    def _describe(self, name: str) -> dict[str, Any]:
        """What a unit's definition says, for systemctl status/show/list-*: see
        `cinit.events.unit_facts`."""
        unit_set = self.hub.unit_set
        if unit_set is None or name not in unit_set.units:
            return {}
        from cinit.events.unit_facts import describe

        facts = describe(unit_set, name)
        facts["cgroup"] = self._cgroup_path(name)
        return facts

    def _cgroup_path(self, name: str) -> str | None:
        root = self.hub.cgroup_root
        if root is None:
            return None
        path = os.path.join(root, name)
        return path if os.path.isdir(path) else None

    def _signal(self, status: dict[str, Any], signo: int, whom: str) -> str | None:
        """systemctl kill: `signo` to the main process (whom=main), or to every process of
        the unit (its cgroup, else the main process and its descendants)."""
        name, pid = status["name"], status.get("main_pid")
        if whom in ("main", "control"):
            if not pid or whom == "control":
                return f"No {whom} process to kill for {name}"
            targets = [int(pid)]
        else:
            path = self._cgroup_path(name)
            if path is not None:
                from cinit.io.cgroup import Cgroup

                for directory, _dirs, _files in os.walk(path):
                    Cgroup(directory).signal(signo)
                return None
            targets = [proc.pid for proc in self._process_tree(int(pid))] if pid else []
        for target in targets:
            with contextlib.suppress(ProcessLookupError):
                os.kill(target, signo)
        return None

    # ---- memory and CPU (psutil, loaded on the first request) --------------------------------

    def _process_tree(self, pid: int) -> list[Any]:
        psutil = self._load_psutil()
        try:
            main = psutil.Process(pid)
            return [main, *main.children(recursive=True)]
        except psutil.Error:
            return []

    def _load_psutil(self) -> Any:
        if self._psutil is None:
            import psutil

            self._psutil = psutil
        return self._psutil

    def _measure(self, units: dict[str, dict[str, Any]]) -> None:
        psutil = self._load_psutil()
        for status in units.values():
            pid = status.get("main_pid")
            if not pid:
                continue
            rss, cpu = 0, 0.0
            for proc in self._process_tree(pid):
                try:
                    rss += proc.memory_info().rss
                    times = proc.cpu_times()
                    cpu += times.user + times.system
                except psutil.Error:
                    continue
            status["memory"], status["cpu"] = rss, round(cpu, 3)

    def _snapshot(self) -> dict[str, Any] | None:
        try:
            psutil = self._load_psutil()
            units: dict[str, int] = {}
            for name, status in self.book.units.items():
                pid = status.get("main_pid")
                if pid:
                    total = 0
                    for proc in self._process_tree(pid):
                        try:
                            total += proc.memory_info().rss
                        except psutil.Error:
                            continue
                    units[name] = total
            return {"cinit_rss": psutil.Process().memory_info().rss, "units": units}
        except Exception as exc:
            log(f"trace: no memory snapshot: {exc!r}")
            return None

    # ---- the end ----------------------------------------------------------------------------

    def _close(self) -> None:
        if self.trace is not None:
            self.trace.close()
        for endpoint_owner in (self.publisher, self.control):
            if endpoint_owner is None:
                continue
            endpoint = endpoint_owner.endpoint
            if endpoint_owner is self.publisher:
                endpoint_owner.close(100)
            else:
                endpoint_owner.close()
            if endpoint.startswith("ipc://"):
                with contextlib.suppress(OSError):
                    os.unlink(endpoint[len("ipc://") :])
        if self.context is not None:
            try:
                self.context.destroy(linger=100)  # closes any socket left, then terminates
            except Exception as exc:
                log(f"events: closing ZeroMQ: {exc!r}")
