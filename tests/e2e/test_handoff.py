"""`cinit --then-exec PATH [ARGS...]`: boot the oneshots, then hand PID 1 over (issue 7 §4).

Run as a real PID 1 (the e2e `boot` fixture): the program handed off to is
tests/programs/handoff_probe.py (it reports its pid, fds, signal mask, the other processes,
and owns SIGTERM: exit 42), or grep reading its own /proc status (grep touches no
signal, unlike CPython, which ignores SIGPIPE itself, or dash, which clears the mask).
The lifecycle part of the handoff is checked as pure transitions at the end.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from e2e_support import (
    PROGRAMS,
    PYTHON,
    UNSHARE,
    Boot,
    cinit_line,
    shell_script,
    wait_until,
    write_units,
)

from cinit.machines import lifecycle as lc

pytestmark = [pytest.mark.timeout(60)]

Booter = Callable[..., Boot]


def oneshot_units(tmp_path: Path, first_delay: float = 0.3) -> dict[str, str]:
    """first.service and second.service (After=first), each stamping `<name> done <ns>`
    into its own file, and a long-running svc.service that says goodbye on SIGTERM."""
    first = shell_script(
        tmp_path / "first.sh",
        f"""
        sleep {first_delay}
        echo "first done $(date +%s%N)" > {tmp_path / "first.done"}
        """,
    )
    second = shell_script(
        tmp_path / "second.sh",
        f"""
        test -f {tmp_path / "first.done"} || exit 9
        echo "second done $(date +%s%N)" > {tmp_path / "second.done"}
        """,
    )
    svc = shell_script(
        tmp_path / "svc.sh",
        """
        trap 'echo svc says goodbye; exit 0' TERM
        echo svc says hello
        while :; do sleep 0.05; done
        """,
    )
    return {
        "first.service": f"[Service]\nType=oneshot\nExecStart={first}\n",
        "second.service": (
            f"[Unit]\nAfter=first.service\n[Service]\nType=oneshot\nExecStart={second}\n"
        ),
        "svc.service": f"[Service]\nExecStart={svc}\n",
    }


def probe_argv(*expect: Path) -> list[str]:
    argv = ["--then-exec", PYTHON, "-I", "-S", str(PROGRAMS / "handoff_probe.py")]
    for path in expect:
        argv += ["--expect", str(path)]
    return argv


def probe_value(run: Boot, key: str) -> str:
    return run.wait_out(rf"^probe {key}=(.*)$").group(1)


@pytest.mark.pid1
def test_program_runs_as_pid1_after_the_oneshots_with_fds_0_to_2_and_owns_sigterm(
    boot: Booter, tmp_path: Path
) -> None:
    done = [tmp_path / "first.done", tmp_path / "second.done"]
    trace = tmp_path / "trace.jsonl"
    env = {"CONTAINER_INIT_TRACE": "1", "CONTAINER_INIT_TRACE_FILE": str(trace)}
    run = boot(oneshot_units(tmp_path), options=probe_argv(*done), env=env)
    run.wait_out(r"^probe ready$", timeout=20)

    assert probe_value(run, "pid") == "1 ppid=0", run.report()
    assert probe_value(run, "found") == "first.done:yes,second.done:yes", run.report()
    start_ns = int(probe_value(run, "start_ns"))
    first_ns = int((tmp_path / "first.done").read_text().split()[2])
    second_ns = int((tmp_path / "second.done").read_text().split()[2])
    assert first_ns < second_ns < start_ns, "the probe started before the oneshots finished"
    assert probe_value(run, "fds") == "0,1,2", run.report()
    assert int(probe_value(run, "sigblk"), 16) == 0, run.report()
    # svc.service was stopped before the handoff: nothing of cinit's is left running,
    # and what it wrote (also on its way out) was relayed before the exec.
    assert probe_value(run, "others") == "", run.report()
    out = run.stdout()
    assert re.search(r"^svc\.service: svc says hello$", out, re.MULTILINE), run.report()
    goodbye = re.search(r"^svc\.service: svc says goodbye$", out, re.MULTILINE)
    assert goodbye and goodbye.start() < out.index("probe pid="), run.report()

    # The trace was completed before the exec: the stop that led to the handoff says so.
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    shutdown = [(r["event"], r.get("handoff")) for r in records if r["unit"] is None]
    assert ("shutdown-started", True) in shutdown, shutdown
    assert records[-1]["event"] == "shutdown-finished" and records[-1]["handoff"] is True
    assert ("svc.service", "stopped") in [(r["unit"], r["event"]) for r in records]

    # SIGTERM is the probe's own now: cinit (exit 0 or 143) is gone.
    run.run.send(signal.SIGTERM)
    assert run.finish() == 42, run.report()
    assert "probe got SIGTERM" in run.stdout()


@pytest.mark.pid1
def test_handed_off_program_starts_with_no_blocked_and_no_ignored_signals(
    boot: Booter, tmp_path: Path
) -> None:
    grep = shutil.which("grep")
    assert grep is not None
    status_fields = r"^(Pid|SigBlk|SigIgn):"
    options = ["--then-exec", grep, "-E", status_fields, "/proc/self/status"]
    run = boot(oneshot_units(tmp_path, first_delay=0), options=options)
    assert run.finish() == 0, run.report()
    fields = dict(re.findall(r"^(\w+):\s+(\S+)$", run.stdout(), re.MULTILINE))
    assert fields.get("Pid") == "1", run.report()
    # cinit blocks its signals and CPython ignores SIGPIPE and SIGXFSZ: none of it leaks.
    assert int(fields["SigBlk"], 16) == 0, run.report()
    assert int(fields["SigIgn"], 16) == 0, run.report()


@pytest.mark.pid1
def test_shell_handed_off_to_is_pid_1_and_its_sleep_ignores_sigterm_as_an_init_does(
    boot: Booter, tmp_path: Path
) -> None:
    script = (
        'echo "pid=$$"; echo "fds=$(ls /proc/self/fd | tr "\\n" " ")"; '
        'grep -E "SigBlk|SigIgn" /proc/self/status; echo sleeping; exec sleep 30'
    )
    run = boot(
        oneshot_units(tmp_path, first_delay=0), options=["--then-exec", "/bin/sh", "-c", script]
    )
    run.wait_out(r"^sleeping$", timeout=20)
    out = run.stdout()
    assert re.search(r"^pid=1$", out, re.MULTILINE), run.report()
    assert re.search(r"^fds=0 1 2 3 $", out, re.MULTILINE), run.report()  # 3: ls's own listing
    assert re.search(r"^SigIgn:\s+0+$", out, re.MULTILINE), run.report()
    # sleep as PID 1 has no handler: the kernel drops SIGTERM (cinit would have exited 0).
    run.run.send(signal.SIGTERM)
    with pytest.raises(AssertionError, match="did not exit"):
        run.run.wait(1.0)
    run.run.send(signal.SIGKILL)
    run.finish()  # killed: only reaped here (unshare's status for it varies)


@pytest.mark.pid1
def test_a_program_that_cannot_be_found_ends_cinit_with_127_after_the_boot(
    boot: Booter, tmp_path: Path
) -> None:
    missing = tmp_path / "no" / "such-init"
    run = boot(oneshot_units(tmp_path, first_delay=0), options=["--then-exec", str(missing)])
    assert run.finish() == 127, run.report()
    assert (tmp_path / "second.done").exists(), run.report()
    assert f"cinit: cannot hand off to {missing}: No such file or directory" in run.stderr()
    assert "svc says goodbye" in run.stdout(), "svc.service was not stopped before the exec"


@pytest.mark.pid1
def test_a_program_that_is_not_executable_ends_cinit_with_126(boot: Booter, tmp_path: Path) -> None:
    not_executable = tmp_path / "plain-file"
    not_executable.write_text("not a program\n")
    not_executable.chmod(0o644)
    run = boot({}, options=["--then-exec", str(not_executable)])
    assert run.finish() == 126, run.report()
    assert f"cinit: cannot hand off to {not_executable}: Permission denied" in run.stderr()


@pytest.mark.pid1
def test_sigterm_during_the_boot_stops_cinit_without_handing_off(
    boot: Booter, tmp_path: Path
) -> None:
    marker = tmp_path / "handed-off"
    slow = shell_script(
        tmp_path / "slow.sh", f"echo slow started > {tmp_path / 'slow.started'}\nexec sleep 30\n"
    )
    units = {"slow.service": f"[Service]\nType=oneshot\nExecStart={slow}\n"}
    touch = ["--then-exec", "/bin/sh", "-c", f"echo handed off > {marker}"]
    run = boot(units, options=touch)
    wait_until((tmp_path / "slow.started").exists, 20, "slow.service to start")
    assert run.terminate() == 0, run.report()
    assert not marker.exists(), "cinit handed off although it was asked to stop"


@pytest.mark.pid1
def test_without_units_the_handoff_is_immediate(boot: Booter, tmp_path: Path) -> None:
    run = boot({}, options=probe_argv())
    run.wait_out(r"^probe ready$", timeout=20)
    assert probe_value(run, "pid") == "1 ppid=0", run.report()
    assert probe_value(run, "fds") == "0,1,2", run.report()
    run.run.send(signal.SIGTERM)
    assert run.finish() == 42, run.report()


@pytest.mark.pid1
def test_a_failed_oneshot_does_not_prevent_the_handoff_unless_it_exits_the_container(
    boot: Booter, tmp_path: Path
) -> None:
    units = {
        "broken.service": "[Service]\nType=oneshot\nExecStart=/bin/false\n",
    }
    run = boot(units, options=["--then-exec", "/bin/sh", "-c", "echo handed off; exit 5"])
    assert run.finish() == 5, run.report()
    assert run.count_err(cinit_line("broken.service", r"failed.*")) >= 1, run.report()
    assert "handed off" in run.stdout()

    units["broken.service"] += "ExitContainerOnFailure=yes\n"
    fatal = boot(units, name="fatal", options=["--then-exec", "/bin/sh", "-c", "echo handed off"])
    assert fatal.finish() == 1, fatal.report()
    assert "handed off" not in fatal.stdout()


@pytest.mark.pid1
def test_without_a_console_the_lines_go_to_kmsg_and_the_program_gets_dev_null(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    # Run by hand (the `boot` fixture gives pipes); `boot` only skips where it cannot run.
    kmsg = tmp_path / "kmsg"
    kmsg.touch()
    report = tmp_path / "report"
    units = write_units(tmp_path / "units", oneshot_units(tmp_path, first_delay=0))
    probe = [*probe_argv(tmp_path / "second.done")[1:], "--report", report, "--exit-now"]
    argv = [
        *UNSHARE, "/bin/sh", "-c", 'exec "$@" <&- >&- 2>&-', "no-console",
        *cinit_cmd, "--units", units, "--drop-in", tmp_path / "none",
        "--runtime-dir", tmp_path / "run", "--then-exec", *probe,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINIT_")}
    env["CINIT_KMSG_PATH"] = str(kmsg)  # auto: no fd 2, so the kmsg target
    done = subprocess.run([str(a) for a in argv], env=env, timeout=30, capture_output=True)
    assert done.returncode == 0, done
    lines = report.read_text()
    assert "probe pid=1 ppid=0" in lines and "probe found=second.done:yes" in lines, lines
    assert "probe fds=0,1,2" in lines and "probe stdio=/dev/null,/dev/null,/dev/null" in lines
    records = kmsg.read_text().splitlines()
    started = r"<6>cinit: second\.service: started \(pid \d+\)"
    assert any(re.fullmatch(started, r) for r in records), records
    assert all(r.startswith("<6>cinit: ") for r in records), records


# ---- the lifecycle of a handoff, as pure transitions ----------------------------------

TIMEOUTS = lc.Timeouts(stop_timeout=5.0, kill_grace=1.0)


def drive(model: lc.RootModel, *events: lc.Event) -> tuple[lc.RootModel, list[lc.Action]]:
    actions: list[lc.Action] = []
    for event in events:
        model, more = lc.step(model, event, TIMEOUTS)
        actions += [a for a in more if not isinstance(a, lc.PhaseEntered)]
    return model, actions


def test_boot_settled_stops_the_units_and_ends_in_handoff() -> None:
    model, actions = drive(lc.initial(False, handoff=True), lc.Booted(units=True))
    assert model.phase is lc.Phase.RUNNING and actions == []
    model, actions = drive(model, lc.BootSettled())
    assert model.phase is lc.Phase.STOPPING and model.handing_off
    assert any(isinstance(a, lc.StopUnits) for a in actions)
    model, actions = drive(model, lc.UnitsStopped(), lc.ChildrenGone())
    assert model.phase is lc.Phase.EXITED
    assert any(isinstance(a, lc.HandOff) for a in actions)
    assert not any(isinstance(a, lc.Finish) for a in actions)


def test_boot_settled_without_then_exec_changes_nothing() -> None:
    model, _ = drive(lc.initial(False), lc.Booted(units=True))
    assert drive(model, lc.BootSettled()) == (model, [])


def test_a_stop_signal_during_the_handoff_cancels_it() -> None:
    model, _ = drive(lc.initial(False, handoff=True), lc.Booted(units=True), lc.BootSettled())
    model, _ = drive(model, lc.SignalArrived(signal.SIGTERM))
    assert not model.handing_off
    model, actions = drive(model, lc.UnitsStopped(), lc.ChildrenGone())
    assert [a for a in actions if isinstance(a, lc.Finish | lc.HandOff)] == [lc.Finish(0)]


def test_without_units_the_handoff_begins_at_boot() -> None:
    model, actions = drive(lc.initial(False, handoff=True), lc.Booted(units=False))
    assert model.handing_off and model.phase is lc.Phase.DRAINING
    model, actions = drive(model, lc.ChildrenGone())
    assert actions == [lc.HandOff()]


def test_an_exit_request_during_the_handoff_cancels_it_and_keeps_its_status() -> None:
    model, _ = drive(lc.initial(False, handoff=True), lc.Booted(units=True), lc.BootSettled())
    model, _ = drive(model, lc.ExitRequested(3, "x.service failed"))
    model, actions = drive(model, lc.UnitsStopped(), lc.ChildrenGone())
    assert [a for a in actions if isinstance(a, lc.Finish | lc.HandOff)] == [lc.Finish(3)]


def test_a_frozen_cinit_hands_off_the_environment_it_was_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cinit.io.handoff import program_environment

    bootloader = {
        "HOME": "/root",
        "_PYI_ARCHIVE_FILE": "/bin/cinit",
        "_PYI_PARENT_PROCESS_LEVEL": "1",
        "LD_LIBRARY_PATH": "/bin/cinit.dist/_internal",
    }
    assert program_environment(bootloader) == bootloader  # not frozen: untouched
    monkeypatch.setattr("sys.frozen", True, raising=False)
    assert program_environment(bootloader) == {"HOME": "/root"}
    with_original = {**bootloader, "LD_LIBRARY_PATH_ORIG": "/opt/lib"}
    assert program_environment(with_original) == {"HOME": "/root", "LD_LIBRARY_PATH": "/opt/lib"}
