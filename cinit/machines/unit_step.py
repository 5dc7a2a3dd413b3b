"""One step of a unit's machine: the working copy every handler changes, and its one mutator.

A `UnitStep` holds the model so far and the actions so far. Handlers (`unit_start`,
`unit_run`, `unit_stop`) never build a model themselves: they call `enter` to change the
unit's state or phase (the only code that does; it emits the change's one event: a
`Transition`, or a `PhaseChanged` when only the phase moves), `update` for every other
field, and the small tools below (timers, reports, log lines) for the rest.
"""

from __future__ import annotations

from cinit.machines.restart import Result, seconds_to_usec
from cinit.machines.unit_events import (
    Action,
    CancelTimer,
    Log,
    PhaseChanged,
    RemoveRuntimeDirectories,
    ReportSettled,
    ReportStopped,
    Spawn,
    StartTimer,
    Transition,
)
from cinit.machines.unit_model import Outcome, Phase, Role, State, TimerKind, UnitModel
from cinit.machines.vocabulary import RUN_STATES
from cinit.units.model import Preserve, ServiceSection

# One change of a unit's (state, phase): where it went, and the one event it emitted.
StepChange = tuple[State, Phase, Transition | PhaseChanged]

POLL_USEC = 20_000  # while stopping, how often to look whether the unit's processes are gone
_OWN_FIELDS = frozenset({"state", "phase"})  # written by `enter` alone
# Where a run ends: the unit's processes are gone (RuntimeDirectory= may go with them).
_RUN_ENDS = frozenset({State.INACTIVE, State.FAILED, State.AUTO_RESTART})


class UnitStep:
    """One step's working copy: the model so far, the actions and changes emitted so far."""

    def __init__(self, model: UnitModel, now: int) -> None:
        if model.unit.service is None:
            raise ValueError(f"{model.unit.name} is not a service")
        self.model = model
        self.now = now
        self.actions: list[Action] = []
        self.changes: list[StepChange] = []
        self.svc: ServiceSection = model.unit.service

    # ---- the one mutator of state and phase -------------------------------------------------

    def enter(self, state: State, reason: str, phase: Phase = Phase.NONE) -> None:
        """Move to (`state`, `phase`); a change emits one event, no change emits none."""
        model = self.model
        old_state, old_phase = model.state, model.phase
        if state is old_state and phase is old_phase:
            return
        model = self.model = model.replace(state=state, phase=phase)
        event: Transition | PhaseChanged
        if state is old_state:
            event = PhaseChanged(model.name, state, old_phase, phase)
        else:
            last = model.last_exit
            code, signo = (last.code, last.signal) if last is not None else (None, None)
            event = Transition(
                model.name,
                old_state,
                state,
                reason,
                model.result,
                pid=model.main_pid,
                code=code,
                signal=signo,
                at=self.now / 1e6,
            )
            if old_state in RUN_STATES and state in _RUN_ENDS and self._drops_runtime(state):
                # Before the change is told: whoever sees `inactive` finds the directory gone.
                self.actions.append(RemoveRuntimeDirectories())
            self.actions.append(event)
            if state is not State.STOPPING:
                # The exit is told with the changes it causes, up to where the run ends up;
                # a later change (a new start request, say) is not about it.
                self.model = model.replace(last_exit=None)
        self.changes.append((state, phase, event))

    def _drops_runtime(self, state: State) -> bool:
        """Whether a run ending in `state` removes RuntimeDirectory= (systemd.exec(5):
        `restart` keeps it between automatic restarts, `yes` for good)."""
        svc = self.svc
        if not svc.runtime_directory or svc.runtime_directory_preserve is Preserve.YES:
            return False
        return not (
            svc.runtime_directory_preserve is Preserve.RESTART and state is State.AUTO_RESTART
        )

    def enter_phase(self, phase: Phase) -> None:
        """Move to `phase` inside the current state."""
        self.enter(self.model.state, "", phase)

    def update(self, **fields: object) -> None:
        """Change fields of the model other than its state and phase."""
        if not _OWN_FIELDS.isdisjoint(fields):
            raise ValueError("state and phase change through UnitStep.enter only")
        self.model = self.model.replace(**fields)

    # ---- small tools -------------------------------------------------------------------

    def say(self, text: str) -> None:
        self.actions.append(Log(f"{self.model.name}: {text}"))

    def arm(self, kind: TimerKind, delay_usec: int | None) -> None:
        """(Re)start timer `kind`; None leaves it off (an infinite or disabled timeout)."""
        self.disarm(kind)
        if delay_usec is None:
            return
        token = self.model.next_token
        self.update(timers=(*self.model.timers, (kind, token)), next_token=token + 1)
        self.actions.append(StartTimer(kind, token, delay_usec))
        if kind is TimerKind.START:
            self.update(start_deadline=self.now + delay_usec)

    def disarm(self, *kinds: TimerKind) -> None:
        kept = []
        for kind, token in self.model.timers:
            if kind in kinds:
                self.actions.append(CancelTimer(kind, token))
            else:
                kept.append((kind, token))
        self.update(timers=tuple(kept))
        if TimerKind.START in kinds:
            self.update(start_deadline=None)

    def armed(self, kind: TimerKind) -> bool:
        return any(k is kind for k, _ in self.model.timers)

    def spawn(self, role: Role, index: int) -> None:
        self.update(index=index)
        self.actions.append(Spawn(role, index))

    def settle(self, outcome: Outcome, result: Result = Result.SUCCESS) -> None:
        """Answer the start request under way, if one is (once per request)."""
        if self.model.owes_settled:
            self.update(owes_settled=False)
            self.actions.append(ReportSettled(outcome, result))

    def report_stopped(self) -> None:
        if self.model.owes_stopped:
            self.update(owes_stopped=False)
            self.actions.append(ReportStopped())

    def record(self, result: Result, code: int | None = None) -> None:
        """Note a failure of this run; the first one is the run's result."""
        if self.model.result is Result.SUCCESS and result is not Result.SUCCESS:
            self.update(result=result, failure_code=code if result is Result.EXIT_CODE else None)

    def kill_signal(self) -> int:
        """KillSignal=, or RestartKillSignal= when the stop is a restart's."""
        restart_signal = self.svc.restart_kill_signal
        if self.model.restarting and restart_signal is not None:
            return restart_signal
        return self.svc.kill_signal

    def stop_timeout(self) -> int | None:
        return seconds_to_usec(self.svc.timeout_stop_sec)

    def log_stopping(self) -> None:
        if not self.model.stopping_logged:
            self.update(stopping_logged=True)
            self.say("stopping")
