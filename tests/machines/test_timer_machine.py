"""The timer machine (issue 17) with an injected clock: both clocks are plain numbers here,
so a wall clock that jumps (which a real test must not do to the host) is proved here."""

from __future__ import annotations

from cinit.machines import timer_machine as tm
from cinit.machines.timer_machine import Now
from cinit.machines.unit_events import Notice, Transition
from cinit.machines.unit_model import State
from cinit.units.loader import parse_unit


def config(body: str, name: str = "t.timer", boot_mono: float = 0.0) -> tm.TimerConfig:
    unit, diags = parse_unit(name, "[Timer]\n" + body)
    assert unit is not None and not [d for d in diags if d.severity.value == "error"], diags
    return tm.config_of(unit, boot_mono)


def step(model: tm.TimerModel, event: tm.TimerEvent, now: Now) -> tm.Step:
    """`tm.step`, then `PlanNext` fed back for a `PlanLater`, as the keeper does."""
    model, actions = tm.step(model, event, now)
    if any(isinstance(a, tm.PlanLater) for a in actions):
        assert isinstance(actions[-1], tm.PlanLater), actions  # after all the others
        model, later = tm.step(model, tm.PlanNext(), now)
        actions = actions[:-1] + later
    return model, actions


def events(actions: list[object], name: str) -> list[object]:
    return [a for a in actions if isinstance(a, Notice) and a.event == name]


def arm_of(actions: list[object]) -> tm.Arm:
    arms = [a for a in actions if isinstance(a, tm.Arm)]
    assert len(arms) == 1, actions
    return arms[0]


def starts(actions: list[object]) -> list[tm.StartService]:
    return [a for a in actions if isinstance(a, tm.StartService)]


EVERY_2S = "OnCalendar=*:*:0/2\nAccuracySec=1ms\n"


def test_a_calendar_timer_arms_fires_and_arms_the_next_elapse() -> None:
    model = tm.initial(config(EVERY_2S))
    model, actions = step(model, tm.Start(), Now(10.0, 1000.5))
    assert next(a for a in actions if isinstance(a, Transition)).new is State.ACTIVE
    arm = arm_of(actions)
    assert arm.elapse == 1002.0 and abs(arm.delay - 1.5) < 0.01
    armed = events(actions, "timer-armed")[0]
    assert isinstance(armed, Notice) and armed.fields["next_elapse"] == 1002.0
    model, actions = step(model, tm.Wake(arm.armed), Now(11.5, 1002.0))
    assert starts(actions) == [tm.StartService("t.timer", "t.service")]
    assert events(actions, "timer-elapsed") and arm_of(actions).elapse == 1004.0
    assert model.phase is tm.Phase.RUNNING


def test_a_wall_clock_set_forward_fires_once_not_once_per_missed_elapse() -> None:
    model = tm.initial(config(EVERY_2S))
    model, actions = step(model, tm.Start(), Now(10.0, 1000.5))
    model, actions = step(model, tm.Wake(arm_of(actions).armed), Now(11.5, 1002.0))
    model, _ = step(model, tm.ServiceFinished(), Now(11.6, 1002.1))
    arm = model.armed
    # An hour forward while it waited: due at its wake, fires once...
    model, actions = step(model, tm.Wake(arm), Now(13.5, 4604.0))
    assert len(starts(actions)) == 1
    # ... and the next elapse counts from now, not from the missed ones.
    assert arm_of(actions).elapse == 4606.0 and arm_of(actions).delay <= 2.0


def test_a_wall_clock_set_back_neither_fires_nor_waits_for_the_old_time() -> None:
    model = tm.initial(config(EVERY_2S))
    model, actions = step(model, tm.Start(), Now(10.0, 1000.5))
    model, actions = step(model, tm.Wake(arm_of(actions).armed), Now(11.5, 1002.0))
    model, _ = step(model, tm.ServiceFinished(), Now(11.6, 1002.1))
    # Set back by ~500 s: the wake (2 s later on the monotonic clock) is early on the wall.
    model, actions = step(model, tm.Wake(model.armed), Now(13.5, 504.0))
    assert not starts(actions)
    arm = arm_of(actions)
    assert arm.elapse == 506.0 and arm.delay <= 2.0  # from now, not 500 s later


def test_a_far_wall_clock_elapse_is_rechecked_within_max_wall_wait() -> None:
    model = tm.initial(config("OnCalendar=daily\n"))
    _, actions = step(model, tm.Start(), Now(0.0, 1_000_000.0))
    assert arm_of(actions).delay == tm.MAX_WALL_WAIT and not arm_of(actions).final


def test_an_elapse_while_the_service_runs_is_skipped_with_an_event() -> None:
    model = tm.initial(config(EVERY_2S))
    model, actions = step(model, tm.Start(), Now(10.0, 1000.5))
    model, actions = step(model, tm.Wake(arm_of(actions).armed), Now(11.5, 1002.0))
    model, _ = step(model, tm.ServiceStarted(), Now(11.51, 1002.01))
    model, actions = step(model, tm.Wake(model.armed), Now(13.5, 1004.0))
    assert not starts(actions)
    skipped = events(actions, "timer-skipped")
    assert len(skipped) == 1 and arm_of(actions).elapse == 1006.0


def test_on_boot_and_on_unit_active_fire_on_schedule() -> None:
    model = tm.initial(config("OnBootSec=1s\nOnUnitActiveSec=2s\nAccuracySec=1ms\n"))
    model, actions = step(model, tm.Start(), Now(0.2, 100.2))
    arm = arm_of(actions)
    assert abs(arm.delay - 0.8) < 1e-6  # boot = cinit's start (mono 0)
    model, actions = step(model, tm.Wake(arm.armed), Now(1.0, 101.0))
    assert starts(actions)
    model, actions = step(model, tm.ServiceStarted(), Now(1.01, 101.01))
    assert abs(arm_of(actions).delay - 2.0) < 1e-6  # OnUnitActiveSec= from the start
    model, _ = step(model, tm.ServiceFinished(), Now(1.2, 101.2))
    assert model.phase is tm.Phase.WAITING
    model, actions = step(model, tm.Wake(model.armed), Now(3.01, 103.01))
    assert starts(actions)  # OnBootSec= is spent; OnUnitActiveSec= keeps it going


def test_a_failing_service_does_not_stop_the_timer() -> None:
    model = tm.initial(config("OnUnitInactiveSec=1s\nOnActiveSec=0\nAccuracySec=1ms\n"))
    model, actions = step(model, tm.Start(), Now(5.0, 105.0))
    for turn in range(3):
        model, actions = step(model, tm.Wake(model.armed), Now(5.0 + 2 * turn, 0.0))
        assert starts(actions), turn
        model, _ = step(model, tm.ServiceStarted(), Now(5.1 + 2 * turn, 0.0))
        model, actions = step(model, tm.ServiceFinished(), Now(5.2 + 2 * turn, 0.0))
        assert model.state is State.ACTIVE and arm_of(actions).delay > 0


def test_persistent_catches_up_a_missed_elapse_at_once_and_writes_the_stamp() -> None:
    cfg = config("OnCalendar=*-*-* 00:00:00 UTC\nPersistent=yes\nAccuracySec=1ms\n")
    now = Now(1.0, 10 * 86400 + 3600.0)  # 01:00, the day after the stamp's day's midnight
    model, actions = step(tm.initial(cfg), tm.Start(stamp=9 * 86400 + 60.0), now)
    assert arm_of(actions).delay == 0.0  # 10*86400 is past: at once
    model, actions = step(model, tm.Wake(model.armed), Now(1.0, now.wall))
    assert len(starts(actions)) == 1 and tm.WriteStamp(now.wall) in actions
    assert arm_of(actions).elapse == 11 * 86400  # once: the next is tomorrow


def test_without_persistent_the_stamp_is_ignored() -> None:
    cfg = config("OnCalendar=*-*-* 00:00:00 UTC\nAccuracySec=1ms\n")
    _, actions = step(tm.initial(cfg), tm.Start(stamp=60.0), Now(1.0, 10 * 86400 + 3600.0))
    assert arm_of(actions).elapse == 11 * 86400


def test_stop_disarms_and_a_stale_wake_is_ignored() -> None:
    model = tm.initial(config(EVERY_2S))
    model, actions = step(model, tm.Start(), Now(10.0, 1000.5))
    stale = arm_of(actions).armed
    model, actions = step(model, tm.Stop(), Now(10.5, 1001.0))
    assert tm.Disarm() in actions and model.state is State.INACTIVE
    model, actions = step(model, tm.Wake(stale), Now(11.5, 1002.0))
    assert actions == []


def test_remain_after_elapse() -> None:
    for remain, shown in (("yes", State.ACTIVE), ("no", State.INACTIVE)):
        body = f"OnActiveSec=1s\nAccuracySec=1ms\nRemainAfterElapse={remain}\n"
        model, actions = step(tm.initial(config(body)), tm.Start(), Now(0.0, 0.0))
        model, actions = step(model, tm.Wake(model.armed), Now(1.0, 1.0))
        assert starts(actions) and model.phase is tm.Phase.RUNNING
        model, actions = step(model, tm.ServiceFinished(), Now(1.5, 1.5))
        assert model.state is shown, remain


def test_accuracy_coalesces_wakeups_of_different_timers() -> None:
    a = tm.initial(config("OnActiveSec=7s\nAccuracySec=1min\n", "a.timer"))
    b = tm.initial(config("OnActiveSec=19s\nAccuracySec=1min\n", "b.timer"))
    _, act_a = step(a, tm.Start(), Now(1000.0, 5000.0))
    _, act_b = step(b, tm.Start(), Now(1000.0, 5000.0))
    assert arm_of(act_a).delay == arm_of(act_b).delay == 20.0  # both at mono 1020


def test_randomized_delay_fixed_is_stable_per_name() -> None:
    body = "OnActiveSec=10s\nAccuracySec=1us\nRandomizedDelaySec=100s\nFixedRandomDelay=yes\n"
    delays = set()
    for start in (0.0, 50.0):
        _, actions = step(tm.initial(config(body)), tm.Start(), Now(start, start))
        delays.add(round(arm_of(actions).delay, 3))
    assert len(delays) == 1 and 10 <= delays.pop() < 110
    _, other = step(tm.initial(config(body, "x.timer")), tm.Start(), Now(0.0, 0.0))
    assert 10 <= arm_of(other).delay < 110


def test_every_phase_event_pair_is_in_the_table() -> None:
    for phase in tm.Phase:
        for kind in (tm.Start, tm.Wake, tm.ServiceStarted, tm.ServiceFinished, tm.Stop):
            assert (phase, kind) in tm.TABLE


def test_an_elapsed_timer_arms_again_when_its_service_starts() -> None:
    model = tm.initial(config("OnBootSec=1s\nOnUnitActiveSec=2s\nAccuracySec=1ms\n"))
    model, _ = step(model, tm.Start(), Now(0.2, 0.2))
    model, _ = step(model, tm.Wake(model.armed), Now(1.0, 1.0))
    model, _ = step(model, tm.ServiceFinished(), Now(1.01, 1.01))  # nothing left: elapsed
    assert model.phase is tm.Phase.ELAPSED
    model, actions = step(model, tm.ServiceStarted(), Now(1.02, 1.02))
    assert model.phase is tm.Phase.WAITING and arm_of(actions).delay > 1.9
    model, _ = step(model, tm.ServiceFinished(), Now(1.5, 1.5))
    model, actions = step(model, tm.Wake(model.armed), Now(3.02, 3.02))
    assert starts(actions)


def test_a_timer_whose_condition_fails_is_skipped_and_an_assertion_fails_it() -> None:
    model = tm.initial(config(EVERY_2S))
    skipped, actions = step(model, tm.Start(unmet="ConditionVirtualization=!container"),
                               Now(0.0, 0.0))  # fmt: skip
    assert skipped.state is State.CONDITION_SKIPPED and not [
        a for a in actions if isinstance(a, tm.Arm)
    ]
    again, actions = step(skipped, tm.Start(), Now(1.0, 1.0))  # holds now: armed
    assert again.state is State.ACTIVE and arm_of(actions)
    failed, _ = step(model, tm.Start(failed="AssertPathExists=/x"), Now(0.0, 0.0))
    assert failed.state is State.FAILED


def test_an_elapse_tells_the_start_first_and_plans_the_next_elapse_after() -> None:
    """The start is the first action of an elapse; the next elapse (a calendar search) is
    planned only when the keeper feeds PlanNext back, after the start is told."""
    model = tm.initial(config(EVERY_2S))  # AccuracySec=1ms
    model, actions = tm.step(model, tm.Start(), Now(10.0, 1000.5))
    arm = arm_of(actions)
    assert arm.precise and arm.final  # AccuracySec=1ms: a wake on time
    model, actions = tm.step(model, tm.Wake(arm.armed), Now(11.5, 1002.0))
    assert actions[0] == tm.StartService("t.timer", "t.service")
    assert isinstance(actions[-1], tm.PlanLater)
    assert not [a for a in actions if isinstance(a, tm.Arm)]
    stale, nothing = tm.step(model, tm.Wake(arm.armed), Now(11.6, 1002.1))
    assert nothing == [] and stale == model  # the spent wait cannot fire twice
    model, actions = tm.step(model, tm.PlanNext(), Now(11.6, 1002.1))
    assert arm_of(actions).elapse == 1004.0
    _, again = tm.step(model, tm.PlanNext(), Now(11.7, 1002.2))
    assert not [a for a in again if isinstance(a, tm.StartService)]


def test_default_accuracy_waits_are_not_precise() -> None:
    model = tm.initial(config("OnCalendar=*:*:0/2\n"))  # AccuracySec=1min
    _, actions = tm.step(model, tm.Start(), Now(10.0, 1000.5))
    assert not arm_of(actions).precise


def test_plan_next_is_moot_once_the_services_news_planned_the_next_elapse() -> None:
    model = tm.initial(config("OnActiveSec=5s\nOnUnitActiveSec=5s\nAccuracySec=1ms\n"))
    model, actions = tm.step(model, tm.Start(), Now(100.0, 10_000.0))
    model, actions = tm.step(model, tm.Wake(arm_of(actions).armed), Now(105.0, 10_005.0))
    assert isinstance(actions[-1], tm.PlanLater)
    model, actions = tm.step(model, tm.ServiceStarted(), Now(105.01, 10_005.01))
    assert arm_of(actions).elapse == 10_010.01  # OnUnitActiveSec= from the service's start
    same, nothing = tm.step(model, tm.PlanNext(), Now(105.02, 10_005.02))
    assert nothing == [] and same == model
