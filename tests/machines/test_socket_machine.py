"""The socket state table: triggers, the trigger limit, Accept=yes and MaxConnections=,
re-arming after the service, proxy demand, stop/start/restart. Pure.

Driven by `SocketSim` (socket_sim.py): no sockets, a fake clock; the sim checks on every
step that each shown state change emits one chained Transition, that nothing is polled
while it must not be (and everything is once listening again), and MaxConnections=.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from socket_sim import FDS, SocketSim

from cinit.machines import socket_machine as sm
from cinit.machines.restart import Result
from cinit.machines.unit_events import Transition
from cinit.machines.unit_model import State
from cinit.units.model import SocketSection, Unit, UnitKind

P = sm.Phase
M = sm.Mode

# ---- the table ---------------------------------------------------------------------------


def test_every_phase_and_event_pair_is_in_the_table() -> None:
    assert set(sm.TABLE) == {(phase, kind) for phase in P for kind in sm.EVENT_TYPES}
    assert all(phase in sm.SHOWN for phase in P)


def sample_events() -> list[sm.SocketEvent]:
    """One event of each kind, as they could arrive."""
    return [
        sm.ListenerReadable(FDS[0]),
        sm.ServiceUp(),
        sm.ServiceDown(),
        sm.ServiceDown(restarting=True),
        sm.ServiceDown(start_limit_hit=True),
        sm.StopSocket(),
        sm.KillInstances(),
        sm.ProxyDemand(),
        sm.ProxyGaveUp("connection refused"),
        sm.ConnectionAccepted(FDS[0]),
        sm.AcceptFailed(FDS[0]),
        sm.AcceptFailed(FDS[0], "out of memory"),
        sm.AcceptFailed(FDS[0], "not supported", unsupported=True),
        sm.InstanceStarted(FDS[0], "app@9.service"),
        sm.InstanceFailed(FDS[0], "app@9.service"),
        sm.InstanceEnded("app@0.service", ran=True),
        sm.InstanceEnded("app@0.service", ran=False),
        sm.InstanceEnded("other@3.service", ran=True),  # not one of ours
        sm.Bound("/run/app7.sock, /run/app8.sock"),
        sm.BindFailed("app.socket: cannot bind /run/app7.sock: Address already in use"),
        sm.ConditionUnmet("ConditionPathExists=/etc/app"),
    ]


def reach(mode: sm.Mode, phase: sm.Phase) -> SocketSim | None:
    """A sim in `phase` (with a live instance where Accept=yes allows one), or None when
    `mode` never gets there."""
    accept = mode is M.ACCEPT
    sim = SocketSim.of(mode, max_connections=1 if accept else 64)
    if accept and phase is not P.LISTENING:
        sim.ready()  # one instance (app@0.service): full at MaxConnections=1
    if phase is P.SKIPPED:
        return SocketSim.at_rest(State.CONDITION_SKIPPED, mode, max_connections=1)
    if phase is P.LISTENING:
        if accept:
            sim.ready().end_instance()
    elif phase is P.RUNNING:
        if mode is not M.NATIVE:
            return None
        sim.ready()
    elif phase is P.FULL:
        if not accept:
            return None
    elif phase in (P.STOPPING, P.INACTIVE):
        sim.feed(sm.StopSocket())
        if phase is P.INACTIVE and accept:
            sim.end_instance()
        if phase is P.STOPPING and not accept:
            return None  # without instances a stop completes at once
    else:
        sim.feed(sm.ServiceDown(start_limit_hit=True))
        if phase is not P.FAILED:
            sim.feed(sm.StopSocket())
        if phase is P.FAILED_STOPPED and accept:
            sim.end_instance()
        if phase is P.FAILED_STOPPING and not accept:
            return None
    assert sim.phase is phase, (mode, phase, sim.model)
    return sim


@pytest.mark.parametrize("mode", list(M))
@pytest.mark.parametrize("phase", list(P))
def test_every_pair_keeps_the_invariants_and_ignored_pairs_change_nothing(
    mode: sm.Mode, phase: sm.Phase
) -> None:
    for event in sample_events():
        sim = reach(mode, phase)
        if sim is None:
            pytest.skip(f"{mode} never reaches {phase}")
        before = sim.model
        model, actions = sm.step(before, event, sim.now)
        if sm.TABLE[(phase, type(event))] is sm._ignore:
            assert (model, actions) == (before, []), (phase, event)
        if isinstance(event, _ANSWERS):
            continue  # come only right after their action (the tests below)
        if isinstance(event, _VERDICTS) and phase is not P.INACTIVE:
            continue  # may say again what a skipped or failed socket shows (tests below)
        if isinstance(event, sm.ListenerReadable):
            if event.fd not in sim.armed:
                continue  # the poller reports armed fds only
            sim.armed.discard(event.fd)
        sim.clear().feed(event)  # the invariants, checked by the sim


_ANSWERS = (sm.ConnectionAccepted, sm.AcceptFailed, sm.InstanceStarted, sm.InstanceFailed)
_VERDICTS = (sm.BindFailed, sm.ConditionUnmet)


# ---- native, Accept=no -------------------------------------------------------------------


def test_a_trigger_hands_the_listeners_to_the_service_and_polling_resumes_when_it_ends() -> None:
    sim = SocketSim.of().ready(FDS[1])
    assert sim.phase is P.RUNNING and sim.state is State.ACTIVE
    assert sim.of_type(sm.SocketTriggered) == [sm.SocketTriggered("app.socket", "app.service")]
    [notice] = sim.notices()
    assert notice.event == "socket-triggered"
    assert notice.fields == {"service": "app.service", "triggers": 1, "listener": "/run/app8.sock"}
    assert sim.states() == []  # listening and running are both active
    sim.ready(FDS[0])  # not polled: nothing
    assert len(sim.of_type(sm.SocketTriggered)) == 1
    sim.feed(sm.ServiceDown(restarting=True))  # the next run takes the listeners again
    assert sim.phase is P.RUNNING
    sim.feed(sm.ServiceDown())
    assert sim.phase is P.LISTENING and sim.of_type(sm.Rearm) == [sm.Rearm(FDS)]
    sim.ready()
    assert len(sim.of_type(sm.SocketTriggered)) == 2


def test_a_service_started_another_way_stops_the_polling() -> None:
    sim = SocketSim.of().feed(sm.ServiceUp())
    assert sim.phase is P.RUNNING and sim.of_type(sm.Disarm) == [sm.Disarm(FDS)]
    assert not sim.of_type(sm.SocketTriggered)


# ---- the trigger limit -------------------------------------------------------------------


def trigger_and_end(sim: SocketSim, times: int, every: float) -> None:
    for _ in range(times):
        sim.ready()
        sim.advance(every)
        sim.feed(sm.ServiceDown())


def test_one_trigger_past_the_burst_within_the_interval_fails_the_socket() -> None:
    sim = SocketSim.of(trigger_limit_burst=3, trigger_limit_interval_sec=2.0)
    trigger_and_end(sim, 3, 0.5)
    assert len(sim.of_type(sm.SocketTriggered)) == 3
    sim.clear().ready()
    reason = "trigger limit hit: more than 3 triggers within 2s"
    assert sim.phase is P.FAILED
    assert sim.states() == [("active", "failed")]
    [change] = sim.of_type(Transition)
    assert change.result is Result.TRIGGER_LIMIT_HIT and change.reason == reason
    assert sim.of_type(sm.SocketFailed) == [
        sm.SocketFailed("app.socket", Result.TRIGGER_LIMIT_HIT, reason, False)
    ]
    assert [n.fields for n in sim.notices()] == [{"result": "trigger-limit-hit", "reason": reason}]
    assert sim.closed and not sim.of_type(sm.SocketTriggered)
    assert sim.logs() == [f"app.socket: failed (trigger-limit-hit): {reason}"]


def test_triggers_spread_over_more_than_the_interval_are_fine() -> None:
    sim = SocketSim.of(trigger_limit_burst=2, trigger_limit_interval_sec=1.0)
    trigger_and_end(sim, 6, 0.6)
    assert len(sim.of_type(sm.SocketTriggered)) == 6 and sim.phase is P.LISTENING


@pytest.mark.parametrize(
    "settings", [{"trigger_limit_burst": 0}, {"trigger_limit_interval_sec": 0}]
)
def test_a_zero_burst_or_interval_disables_the_limit(settings: dict[str, float]) -> None:
    sim = SocketSim.of(**settings)
    trigger_and_end(sim, 50, 0.0)
    assert len(sim.of_type(sm.SocketTriggered)) == 50


def test_the_trigger_count_is_on_the_notice() -> None:
    sim = SocketSim.of()
    trigger_and_end(sim, 3, 0.1)
    assert [n.fields["triggers"] for n in sim.notices()] == [1, 2, 3]


# ---- Accept=yes and MaxConnections= ------------------------------------------------------


def test_accept_yes_starts_one_numbered_instance_per_connection_and_polls_again() -> None:
    sim = SocketSim.of(M.ACCEPT).ready().ready(FDS[1]).ready()
    assert [a.name for a in sim.of_type(sm.StartInstance)] == [
        "app@0.service",
        "app@1.service",
        "app@2.service",
    ]
    assert sim.model.instances == (("app@0.service", 7), ("app@1.service", 8), ("app@2.service", 7))
    assert not sim.of_type(sm.SocketTriggered)  # the instances are the socket's own
    assert [n.event for n in sim.notices()] == ["socket-triggered"] * 3
    assert (
        sim.of_type(sm.Info)[1].text == "app@0.service: starting for a connection on /run/app7.sock"
    )
    assert sim.of_type(sm.Rearm) == [sm.Rearm((7,)), sm.Rearm((8,)), sm.Rearm((7,))]
    sim.clear().end_instance(1)
    assert [name for name, _ in sim.model.instances] == ["app@0.service", "app@2.service"]
    assert sim.actions == []  # its unit said how it ended


def test_instance_units_run_the_main_command_only() -> None:
    from cinit.units import parse_unit

    text = """[Unit]
Requires=db.service
ConditionPathExists=/nowhere
[Service]
Type=notify
ExecStartPre=/bin/prepare
ExecStart=/bin/serve
ExecStartPost=/bin/announce
ExecStop=/bin/halt
Restart=always
WatchdogSec=5
User=nobody
Environment=A=1
"""
    template, _ = parse_unit("echo.service", text, environ={}, hostname="h")
    assert template is not None and template.service is not None
    unit = sm.instance_unit(template, "echo@4.service")
    assert unit.name == "echo@4.service" and unit.stem == "echo@4"
    service = unit.service
    assert service is not None
    assert service.exec_start == template.service.exec_start[:1]
    assert service.exec_start_pre == service.exec_start_post == service.exec_stop == ()
    assert service.type.value == "simple" and service.restart.value == "no"
    assert service.watchdog_sec == 0 and not unit.unit.requires and not unit.unit.conditions
    assert service.user == "nobody" and service.environment == template.service.environment


def test_max_connections_stops_accepting_until_an_instance_exits() -> None:
    sim = SocketSim.of(M.ACCEPT, max_connections=2).ready().ready()
    assert sim.phase is P.FULL and sim.state is State.ACTIVE and not sim.armed
    assert sim.logs() == [
        "app.socket: MaxConnections=2 reached; new connections wait until an instance exits"
    ]
    sim.ready()  # waits in the backlog: not polled
    assert len(sim.of_type(sm.StartInstance)) == 2
    sim.end_instance(0)
    assert sim.phase is P.LISTENING and sim.of_type(sm.Rearm)[-1] == sm.Rearm(FDS)
    sim.ready()
    assert sim.phase is P.FULL and len(sim.of_type(sm.StartInstance)) == 3
    assert len(sim.logs()) == 1  # said once
    assert sim.states() == []


def test_an_instance_that_cannot_start_frees_its_place() -> None:
    sim = SocketSim.of(M.ACCEPT, max_connections=1)
    sim.create_fails = True  # its unit cannot even be created
    sim.ready()
    assert sim.phase is P.LISTENING and not sim.model.instances
    sim.create_fails = False
    sim.ready()
    assert sim.phase is P.FULL
    sim.end_instance(0, ran=False)  # its unit failed before its command ran
    assert sim.phase is P.LISTENING and not sim.model.instances
    assert sim.logs()[0] == "app@0.service: failed to start for a connection on /run/app7.sock"
    assert sim.logs()[-1] == "app@1.service: failed to start for a connection on /run/app7.sock"


def test_a_client_gone_before_the_accept_only_polls_again() -> None:
    sim = SocketSim.of(M.ACCEPT)
    sim.accept_answer = sm.AcceptFailed(FDS[0])
    sim.ready()
    assert not sim.logs() and not sim.of_type(sm.StartInstance | sm.Notice)
    sim.accept_answer = sm.AcceptFailed(FDS[0], "Too many open files")
    sim.ready()
    assert sim.logs() == ["app.socket: cannot accept a connection: Too many open files"]
    assert sim.phase is P.LISTENING


def test_a_listener_that_cannot_accept_fails_the_socket() -> None:
    sim = SocketSim.of(M.ACCEPT)
    sim.accept_answer = sm.AcceptFailed(FDS[0], "Operation not supported", unsupported=True)
    sim.ready()
    [failed] = sim.of_type(sm.SocketFailed)
    assert failed.result is Result.RESOURCES
    assert failed.reason == "Accept=yes cannot accept on ListenStream=/run/app7.sock"


def test_the_trigger_limit_counts_connections_and_starts_no_instance_past_it() -> None:
    sim = SocketSim.of(M.ACCEPT, trigger_limit_burst=2, trigger_limit_interval_sec=5)
    sim.ready().ready().ready()
    assert len(sim.of_type(sm.StartInstance)) == 2 and sim.phase is P.FAILED
    sim.end_instance(0)  # instances outlive the failure
    assert len(sim.model.instances) == 1 and sim.phase is P.FAILED


# ---- proxy -------------------------------------------------------------------------------


def test_proxy_demand_triggers_and_a_target_that_never_accepts_fails_and_stops_it() -> None:
    sim = SocketSim(sm.SocketConfig("p.socket", "p.service", "p", M.PROXY, (), target="[::1]:9"))
    sim.feed(sm.ProxyDemand())
    assert sim.of_type(sm.SocketTriggered) == [sm.SocketTriggered("p.socket", "p.service")]
    assert sim.phase is P.LISTENING and "listener" not in sim.notices()[0].fields
    sim.feed(sm.ServiceDown())
    assert sim.of_type(sm.ProxyServiceStopped) == [sm.ProxyServiceStopped()]
    sim.feed(sm.ProxyGaveUp("connection refused"))
    reason = "proxy target [::1]:9 did not accept: connection refused"
    assert sim.of_type(sm.SocketFailed) == [
        sm.SocketFailed("p.socket", Result.TIMEOUT, reason, True)
    ]


@pytest.mark.parametrize("mode", list(M))
def test_a_service_past_its_start_limit_fails_the_socket(mode: sm.Mode) -> None:
    sim = SocketSim.of(mode).feed(sm.ServiceDown(start_limit_hit=True))
    [failed] = sim.of_type(sm.SocketFailed)
    assert failed.result is Result.SERVICE_START_LIMIT_HIT and not failed.stop_service
    assert failed.reason == "app.service hit its start limit and cannot be started again"
    assert sim.states() == [("active", "failed")]


# ---- stop, start, restart ----------------------------------------------------------------


@pytest.mark.parametrize("reach_phase", [lambda s: s, lambda s: s.ready()])
def test_stop_closes_the_listeners_and_reports_once(reach_phase: Callable[..., SocketSim]) -> None:
    sim = reach_phase(SocketSim.of()).clear().feed(sm.StopSocket())
    assert sim.states() == [("active", "stopping"), ("stopping", "inactive")]
    assert sim.closed and sim.of_type(sm.SocketStopped) == [sm.SocketStopped("app.socket")]
    sim.feed(sm.StopSocket(), sm.ServiceDown(), sm.ProxyDemand())
    assert sim.stopped_reports == 1 and sim.phase is P.INACTIVE


def test_stop_stops_the_instances_units_and_ends_after_the_last() -> None:
    sim = SocketSim.of(M.ACCEPT).ready().ready().clear().feed(sm.StopSocket())
    assert sim.phase is P.STOPPING and sim.states() == [("active", "stopping")]
    assert sim.of_type(sm.StopInstances) == [sm.StopInstances()]  # each unit's own stop
    sim.end_instance(0)
    assert sim.phase is P.STOPPING and not sim.stopped_reports
    sim.end_instance(0)
    assert sim.states()[-1] == ("stopping", "inactive") and sim.stopped_reports == 1


def test_kill_requested_kills_the_instances_in_any_phase() -> None:
    sim = SocketSim.of(M.ACCEPT).ready().feed(sm.KillInstances())
    assert sim.of_type(sm.KillEveryInstance) == [sm.KillEveryInstance()]
    assert sim.phase is P.LISTENING  # the stop that follows ends the socket
    assert SocketSim.of().feed(sm.KillInstances()).of_type(sm.KillEveryInstance) == []


def test_a_failed_socket_stays_failed_through_its_stop() -> None:
    # e2c1049: starting a failed socket stops its actor first (its instances too), then
    # the supervisor binds it anew; no stopping/inactive is shown in between.
    sim = SocketSim.of(M.ACCEPT).ready().feed(sm.ServiceDown(start_limit_hit=True))
    sim.clear().feed(sm.StopSocket())
    assert sim.phase is P.FAILED_STOPPING and sim.state is State.FAILED
    assert not sim.of_type(sm.CloseListeners)  # closed when it failed
    sim.end_instance(0)
    assert sim.phase is P.FAILED_STOPPED and sim.states() == []
    assert sim.of_type(sm.SocketStopped) == [sm.SocketStopped("app.socket")]


def test_restart_is_a_stop_then_a_fresh_machine_listening() -> None:
    sim = SocketSim.of().ready().feed(sm.StopSocket())
    assert sim.phase is P.INACTIVE
    again = SocketSim(sim.config)  # the supervisor binds anew with a new actor
    assert again.phase is P.LISTENING and again.of_type(sm.Listen) == [sm.Listen()]
    assert again.armed == set(FDS)


# ---- binding: the supervisor's steps, before the socket has an actor ------------------------


@pytest.mark.parametrize(
    "shown", [State.INACTIVE, State.CONDITION_SKIPPED, State.FAILED], ids=lambda s: s.value
)
def test_bound_listens_and_says_where_from_whatever_it_showed(shown: State) -> None:
    sim = SocketSim.at_rest(shown).feed(sm.Bound("/run/app7.sock, /run/app8.sock"))
    assert sim.phase is P.LISTENING and sim.armed == set(FDS)
    assert sim.states() == [(shown.value, "active")]
    [change] = sim.of_type(Transition)
    assert change.reason == "listening on /run/app7.sock, /run/app8.sock"
    assert change.result is Result.SUCCESS
    [notice] = sim.notices()
    assert (notice.event, notice.fields) == (
        "socket-bound",
        {
            "listeners": ["/run/app7.sock", "/run/app8.sock"],
            "service": "app.service",
            "mode": "native",
            "accept": False,
        },
    )
    assert sim.actions.index(notice) > sim.actions.index(change)
    said = [a for a in sim.actions if isinstance(a, sm.Info | Transition | sm.Listen)]
    assert said == [
        sm.Info("app.socket: listening on /run/app7.sock, /run/app8.sock"),
        change,
        sm.Listen(),
    ]


def test_a_bind_failure_fails_the_socket_with_result_resources_and_no_listeners() -> None:
    reason = "app.socket: cannot bind /run/app7.sock: Address already in use"
    sim = SocketSim.at_rest().feed(sm.BindFailed(reason))
    assert sim.phase is P.FAILED_STOPPED and sim.state is State.FAILED
    assert sim.logs() == [reason, "app.socket: failed (resources)"]
    [change] = sim.of_type(Transition)
    assert (change.old, change.new, change.reason) == (State.INACTIVE, State.FAILED, reason)
    assert change.result is Result.RESOURCES
    [notice] = sim.notices()
    assert (notice.event, notice.fields) == (
        "socket-failed",
        {"result": "resources", "reason": reason},
    )
    assert not sim.of_type((sm.Listen, sm.CloseListeners, sm.SocketFailed, sm.SocketStopped))
    assert sim.actions.index(change) > sim.actions.index(sim.of_type(sm.Log)[-1])


def test_an_unmet_condition_skips_the_socket_without_binding() -> None:
    sim = SocketSim.at_rest().feed(sm.ConditionUnmet("ConditionPathExists=/etc/app"))
    assert sim.phase is P.SKIPPED and sim.state is State.CONDITION_SKIPPED
    assert sim.logs() == ["app.socket: skipped (ConditionPathExists=/etc/app not met)"]
    assert sim.states() == [("inactive", "condition-skipped")]
    assert sim.of_type(Transition)[0].reason == "ConditionPathExists=/etc/app"
    assert not sim.notices() and not sim.armed


@pytest.mark.parametrize(
    ("shown", "event"),
    [
        (State.FAILED, sm.BindFailed("app.socket: cannot bind /run/app7.sock: busy")),
        (State.CONDITION_SKIPPED, sm.ConditionUnmet("ConditionPathExists=/etc/app")),
    ],
    ids=["failed-again", "skipped-again"],
)
def test_the_same_verdict_at_a_new_start_is_said_again(shown: State, event: sm.SocketEvent) -> None:
    # Each start is news on the stream (its reason), though the state shown stays.
    config = sm.SocketConfig("app.socket", "app.service", "app", M.NATIVE, ())
    model, actions = sm.step(sm.at_rest(config, shown), event, 0.0)
    [change] = [a for a in actions if isinstance(a, Transition)]
    assert change.old is shown and change.new is shown and model.state is shown


def test_a_socket_with_an_actor_takes_no_bind_verdict() -> None:
    for sim in (SocketSim.of(), SocketSim.of().feed(sm.ServiceDown(start_limit_hit=True))):
        for event in (sm.Bound("x"), sm.BindFailed("x"), sm.ConditionUnmet("x")):
            assert sm.step(sim.model, event, sim.now) == (sim.model, [])


def test_at_rest_shows_what_the_socket_showed_before() -> None:
    config = SocketSim.of().config
    for shown in (State.INACTIVE, State.CONDITION_SKIPPED, State.FAILED):
        assert sm.at_rest(config, shown).state is shown


def test_a_socket_that_activates_no_loaded_service_still_has_a_config() -> None:
    section = SocketSection(service="gone.service")
    unit = Unit("lone.socket", "/x/lone.socket", UnitKind.SOCKET, socket=section)
    config = sm.config_of(unit, None)
    assert (config.name, config.service, config.listeners) == ("lone.socket", "?", ())


@pytest.mark.parametrize(
    ("mode", "shown_mode", "accept"),
    [(M.NATIVE, "native", False), (M.ACCEPT, "native", True), (M.PROXY, "proxy", False)],
)
def test_the_bound_notice_names_the_activation_mode(
    mode: sm.Mode, shown_mode: str, accept: bool
) -> None:
    sim = SocketSim.at_rest(State.INACTIVE, mode).feed(sm.Bound("/run/app7.sock"))
    [notice] = sim.notices()
    assert (notice.fields["mode"], notice.fields["accept"]) == (shown_mode, accept)
