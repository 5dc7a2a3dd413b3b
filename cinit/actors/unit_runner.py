"""`UnitRunner`: the one driver of a unit's state machine, at boot and afterwards.

It feeds events to `cinit.machines.unit_state.step` and carries out the actions that come
back, through the unit's io (`cinit.actors.unit_io`): an action that asks the OS a
question is answered at once (the answer is the next event), a timer is armed on the
scheduler the moment the step asks for it, a transition or report goes to the supervisor's
address. The first wave of boot (`cinit.actors.first_wave`) runs it in the main thread
before pykka is imported; the unit's actor (`cinit.actors.unit`) runs it afterwards on the
same `UnitSlot`, which holds everything that must outlive either of them.

A plain class, no pykka: the boot path reaches the first service's exec with it.
"""

from __future__ import annotations

from cinit.actors.unit_io import UnitSpawnError
from cinit.boot_path import TYPE_CHECKING
from cinit.io.log import log
from cinit.io.reaper import ProcessExit
from cinit.machines import unit_events as ev
from cinit.machines.record import Record
from cinit.machines.unit_model import ExitInfo, State
from cinit.machines.unit_start import first_command
from cinit.machines.unit_state import monotonic_usec, step
from cinit.machines.vocabulary import FRESH_START_STATES, NO_PROCESS_STATES

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeGuard

    from cinit.actors.unit_ports import Launching, Scheduling, Tellable
    from cinit.actors.unit_slot import UnitSlot
    from cinit.io.notify import NotifyMessage
    from cinit.units.model import Unit


class UnitReport(Record):
    """From a unit's runner to the supervisor: a Transition, Notice, ReportSettled,
    ReportStopped, RequestOnFailure or RequestContainerExit of unit `unit`."""

    unit: str
    item: ev.Action


class Redefined(Record):
    """daemon-reload: `unit` is the unit's new definition. A running unit keeps its
    processes and what it runs with; the new definition takes over once nothing of it
    runs (at rest, or waiting to restart): its next start uses it (systemd's semantics)."""

    unit: Unit


class Retire(Record):
    """daemon-reload removed the unit and it is at rest: its actor ends."""


class PrepareStart(Record):
    """A start of the unit is near (its timer elapses soon): ready its first command."""


class StartNotBefore(Record):
    """The start requested next runs no process before `at` (time.monotonic()): a timer's
    precise elapse, decided a moment ahead of it (`UnitIO.start_not_before`)."""

    at: float


# What the supervisor asks of a unit: fed to its machine as they are.
SUPERVISOR_EVENTS = (
    ev.StartRequested,
    ev.DependenciesSettled,
    ev.DependencyFailed,
    ev.StopRequested,
    ev.ReloadRequested,
    ev.KillRequested,
    ev.SignalRequested,
    ev.ResetFailed,
    ev.CannotStart,
)


class UnitRunner:
    """Feeds one unit's machine and carries out its actions; state lives in the slot.

    `reports` is the supervisor's address (a `Postbox` until the supervisor exists),
    `timers` the scheduler (started before the first wave)."""

    def __init__(
        self,
        slot: UnitSlot,
        reports: Tellable,
        timers: Scheduling,
        clock: Callable[[], int] = monotonic_usec,
    ) -> None:
        self.slot = slot
        self.reports = reports
        self.timers = timers
        self.clock = clock
        self.launching: tuple[ev.Spawn, Launching] | None = None

    # ---- messages in ---------------------------------------------------------------------

    def take(self, message: object) -> bool:
        """Turn a message for the unit into events for its machine; False if unknown."""
        slot = self.slot
        if isinstance(message, ProcessExit):
            self._take_exit(message)
        elif isinstance(message, ev.TimerFired):
            slot.timers.pop((message.kind, message.token), None)
            slot.events.append(message)
        elif isinstance(message, SUPERVISOR_EVENTS):
            slot.events.append(message)
        elif isinstance(message, Redefined):
            slot.next_unit = message.unit
        elif isinstance(message, PrepareStart):
            self._prepare_start()
        elif isinstance(message, StartNotBefore):
            slot.io.start_not_before(message.at)
        elif _is_notification(message):
            # Whether the sender is the unit's is the OS's answer; whether it may speak
            # for the unit (NotifyAccess=) is the machine's, against its main pid then.
            in_unit = slot.io.accepts_notification(message.sender_pid)
            slot.events.append(ev.NotifyReceived(message.sender_pid, in_unit, message.fields))
        else:
            return False
        return True

    def _prepare_start(self) -> None:
        """Ready the first command of the next start ahead (`UnitIO.prepare_start`), when
        the unit is at rest with nothing under way: a start then runs that command."""
        slot = self.slot
        model = slot.model
        if model.state not in FRESH_START_STATES or slot.actions or slot.next_unit is not None:
            return
        service = model.unit.service
        first = first_command(service) if service is not None else None
        if first is not None:
            slot.io.prepare_start(*first, model.main_pid)

    def _take_exit(self, message: ProcessExit) -> None:
        if self.slot.io.take_exit(message):
            exit_info = ExitInfo(message.code, message.signal, message.core_dumped)
            self.slot.events.append(ev.ProcessExited(message.pid, exit_info))

    # ---- the loop ------------------------------------------------------------------------

    def run(self, *, launch: bool = False) -> None:
        """Perform queued actions, feed queued events, until both queues are empty.

        With `launch`, a Spawn only starts its command and the run stops there, until
        `finish_launch` (the first wave hands every command out before waiting for one)."""
        slot = self.slot
        while self.launching is None:
            if slot.actions:
                action = slot.actions.popleft()
                slot.current = action
                if launch and isinstance(action, ev.Spawn):
                    self._launch(action)
                    continue
                answer = self.perform(action)
                self._answered(answer)
            elif slot.events:
                if slot.next_unit is not None and slot.model.state in NO_PROCESS_STATES:
                    self._redefine(slot.next_unit)
                event = slot.events.popleft()
                slot.model, actions = step(slot.model, event, self.clock())
                slot.actions.extend(actions)
            else:
                return

    def _redefine(self, unit: Unit) -> None:
        """Take on the unit's new definition (daemon-reload) between two runs."""
        slot = self.slot
        slot.next_unit = None
        slot.model = slot.model.replace(unit=unit)
        slot.io.redefine(unit)

    def _answered(self, answer: ev.Event | None) -> None:
        slot = self.slot
        slot.current = None
        slot.retried = False
        if answer is not None:
            slot.events.append(answer)

    def _launch(self, action: ev.Spawn) -> None:
        try:
            launching = self.slot.io.launch(action.role, action.index, self.slot.model.main_pid)
            launching.start()
        except UnitSpawnError as exc:
            self._answered(ev.SpawnFailed(action.role, action.index, exc.exit_code))
            return
        self.launching = (action, launching)

    def finish_launch(self) -> None:
        """Wait for the exec of the command `run(launch=True)` started; feed the answer."""
        if self.launching is None:
            return
        action, launching = self.launching
        self.launching = None
        try:
            pid = launching.finish()
        except UnitSpawnError as exc:
            self._answered(ev.SpawnFailed(action.role, action.index, exc.exit_code))
        else:
            self._answered(ev.Spawned(action.role, action.index, pid))

    def resume(self) -> None:
        """After an actor broke: feed what was left unfinished, then carry on."""
        slot = self.slot
        culprit, slot.current = slot.current, None
        if culprit is not None:
            if isinstance(culprit, _REPEATABLE) and not slot.retried:
                slot.retried = True  # once: a deterministic failure must not loop forever
                slot.actions.appendleft(culprit)
            else:
                answer = failure_answer(culprit)
                if answer is not None:
                    slot.events.append(answer)
        for exit_message in slot.io.pending_exits():
            self._take_exit(exit_message)
        self.run()

    # ---- actions -------------------------------------------------------------------------

    def perform(self, action: ev.Action) -> ev.Event | None:
        """Carry out one action; the answer, for those that ask something."""
        slot = self.slot
        io = slot.io
        if isinstance(action, ev.Log):
            io.say(action.text)
        elif isinstance(action, ev.CheckConditions):
            unmet = io.unmet_condition()
            return ev.ConditionChecked(unmet, io.failed_assertion() if unmet is None else None)
        elif isinstance(action, ev.Spawn):
            try:
                pid = io.spawn(action.role, action.index, slot.model.main_pid)
            except UnitSpawnError as exc:
                return ev.SpawnFailed(action.role, action.index, exc.exit_code)
            return ev.Spawned(action.role, action.index, pid)
        elif isinstance(action, ev.StartTimer):
            message = ev.TimerFired(action.kind, action.token)
            timer = self.timers.call_later(action.delay_usec / 1e6, slot, message)
            slot.timers[(action.kind, action.token)] = timer
        elif isinstance(action, ev.CancelTimer):
            cancelled = slot.timers.pop((action.kind, action.token), None)
            if cancelled is not None:
                self.timers.cancel(cancelled)
        elif isinstance(action, _OS_ACTIONS):
            return self._perform_os(action)
        else:  # Transition and the reports: for the supervisor
            if isinstance(action, ev.Transition) and _cancels_start(action):
                io.discard_prepared()  # skipped or cancelled: no command will run
            self.reports.tell(UnitReport(slot.name, action))
        return None

    def _perform_os(self, action: ev.Action) -> ev.Event | None:
        """Signals and lookups; an OSError is logged and answered as a failure."""
        io = self.slot.io
        try:
            if isinstance(action, ev.SignalMain):
                io.signal_main(action.pid, action.signo)
            elif isinstance(action, ev.SignalUnit):
                io.signal_unit(action.signo)
            elif isinstance(action, ev.KillUnit):
                io.kill_unit()
            elif isinstance(action, ev.CheckEmpty):
                return ev.GroupChecked(io.unit_empty())
            elif isinstance(action, ev.RemoveRuntimeDirectories):
                io.remove_runtime_directories()
            elif isinstance(action, ev.FindMainPid):
                found = io.find_main_pid(action.hint, action.pid_file, action.guess)
                if isinstance(found, int):
                    return ev.MainPidFound(found)
                return ev.MainPidMissing(found)
        except OSError as exc:
            log(f"{self.slot.name}: {type(action).__name__} failed: {exc}")
            return failure_answer(action)
        return None


def _cancels_start(transition: ev.Transition) -> bool:
    """A waiting unit goes anywhere but starting/running: it will not run a command now."""
    return transition.old is State.WAITING and transition.new not in (
        State.STARTING,
        State.RUNNING,
    )


def _is_notification(message: object) -> TypeGuard[NotifyMessage]:
    """A `cinit.io.notify.NotifyMessage` (checked by shape: the hub imports lazily)."""
    return hasattr(message, "fields") and hasattr(message, "sender_pid")


# Actions that may simply be done again after the actor broke while doing them (a
# signal twice is better than none); the others get their failure answer instead.
_REPEATABLE = (
    ev.SignalMain,
    ev.SignalUnit,
    ev.KillUnit,
    ev.CheckEmpty,
    ev.RemoveRuntimeDirectories,
    ev.StartTimer,
    ev.CancelTimer,
    ev.Log,
)

# Actions answered by asking the OS (an OSError is a failure answer, not a crash).
_OS_ACTIONS = (
    ev.SignalMain,
    ev.SignalUnit,
    ev.KillUnit,
    ev.CheckEmpty,
    ev.FindMainPid,
    ev.RemoveRuntimeDirectories,
)


def failure_answer(action: ev.Action) -> ev.Event | None:
    """What to feed the state machine when `action` could not be carried out."""
    if isinstance(action, ev.Spawn):
        return ev.SpawnFailed(action.role, action.index, None)
    if isinstance(action, ev.CheckConditions):
        return ev.ConditionChecked(None)
    if isinstance(action, ev.CheckEmpty):
        return ev.GroupChecked(False)  # look again later (the poll timer)
    if isinstance(action, ev.FindMainPid):
        return ev.MainPidMissing("internal error while looking for it")
    return None
